"""Watching what student code calls, in the child: by name (``Tripwire``) and by operator
(``OperatorRecord``).

"Write max-pooling by hand" cannot be checked by names alone: ``getattr(F, "max_pool2d_with_"
"indices")``, ``F.max_pool3d`` on an unsqueezed input, ``torch.special.expit`` for a sigmoid, a
dictionary of aliases — there is always one more name. Every one of them ends in the same aten
operator, and every operator torch runs passes through its dispatcher: ``OperatorRecord`` is a
``TorchDispatchMode`` that sees each one (``aten::max_pool2d_with_indices``,
``aten::convolution``, ``aten::sigmoid`` …) however it was reached, and records those a check
forbids (glob patterns: ``aten::*max_pool*``).

It also sees autograd at work, for a function that must compute gradients by hand: an operator
that runs inside a backward pass (``torch.autograd.grad``, ``.backward()``, ``torch.func.grad``:
the engine's graph task is set) or that records a graph (grad mode on and an input that requires
grad), and forward-mode AD (a dual level entered).

The name tripwire stays: it can say where in the student's file a forbidden call is, which an
operator cannot. Both run in the student's own process, so code written to switch them off
(torch's private ``_disable_current_modes``, ``_DisableTorchDispatch``, a thread of its own)
escapes them; the static read (``checks.forbidden``) names those private APIs.
"""

from __future__ import annotations

import fnmatch
import importlib
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

BACKWARD_RAN = "a backward pass ran, via torch.autograd.grad, .backward() or torch.func"
GRAPH_BUILT = "a graph was built, an input requiring grad under grad mode"
FORWARD_AD = "forward-mode AD was used, via torch.autograd.forward_ad"


class OperatorRecord(TorchDispatchMode):
    """Records the forbidden operators, and any use of autograd when ``autograd`` is forbidden,
    that run while it is active. It never changes what an operator computes."""

    def __init__(self, forbid: list[str] | None = None, autograd: bool = False) -> None:
        super().__init__()
        self.patterns = list(forbid or [])
        self.forbid_autograd = autograd
        self.operators: list[str] = []
        self.autograd: list[str] = []
        self._verdicts: dict[Any, str | None] = {}

    def _forbidden(self, func: Any) -> str | None:
        verdict = self._verdicts.get(func, False)
        if verdict is False:
            name = func._schema.name
            verdict = name if any(fnmatch.fnmatchcase(name, p) for p in self.patterns) else None
            self._verdicts[func] = verdict
        return verdict  # type: ignore[return-value]

    def _note(self, what: str) -> None:
        if what not in self.autograd:
            self.autograd.append(what)

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        name = self._forbidden(func) if self.patterns else None
        if name is not None and name not in self.operators:
            self.operators.append(name)
        if self.forbid_autograd:
            if torch._C._current_graph_task_id() != -1:
                self._note(BACKWARD_RAN)
            elif torch.is_grad_enabled() and _requires_grad(args, kwargs):
                self._note(GRAPH_BUILT)
            if torch.autograd.forward_ad._current_level >= 0:
                self._note(FORWARD_AD)
        return func(*args, **kwargs)

    def report(self) -> dict[str, list[str]]:
        return {"operators": list(self.operators), "autograd": list(self.autograd)}


def _requires_grad(args: tuple, kwargs: dict) -> bool:
    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.Tensor):
            if value.requires_grad:
                return True
        elif isinstance(value, (list, tuple)):
            if any(isinstance(v, torch.Tensor) and v.requires_grad for v in value):
                return True
    return False


def _resolve(dotted: str) -> tuple[Any, str, Any] | None:
    """``torch.nn.functional.conv2d`` → (the owner object, "conv2d", the function), if it exists."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            owner: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:-1]:
            owner = getattr(owner, attr, None)
            if owner is None:
                return None
        target = getattr(owner, parts[-1], None)
        return (owner, parts[-1], target) if target is not None else None
    return None


class Tripwire:
    """Replaces forbidden callables (by name, and wherever the student's module bound them)
    with wrappers that record the call and then do the real work, so the check still runs."""

    def __init__(self, module: Any, names: list[str]) -> None:
        self.module = module
        self.names = names
        self.seen: list[str] = []
        self.calls = 0
        self._depth = 0
        self._undo: list[tuple[Any, str, Any]] = []

    def _wrap(self, name: str, original: Any) -> Any:
        def tripped(*args: Any, **kwargs: Any) -> Any:
            # Only the call the code made counts, not the ones it makes inside (F.relu calls
            # torch.relu): otherwise nn.ReLU would count twice and a bare torch.relu once.
            if self._depth:
                return original(*args, **kwargs)
            if name not in self.seen:
                self.seen.append(name)
            self.calls += 1
            self._depth += 1
            try:
                return original(*args, **kwargs)
            finally:
                self._depth -= 1
        return tripped

    def __enter__(self) -> Tripwire:
        originals: dict[int, tuple[str, Any]] = {}
        for name in self.names:
            found = _resolve(name)
            if found is None:
                continue
            owner, attr, original = found
            originals.setdefault(id(original), (name, original))
            self._patch(owner, attr, self._wrap(name, original))
        for attr, value in list(vars(self.module).items()):  # `from torch.nn.functional import conv2d`
            if id(value) in originals:
                name, original = originals[id(value)]
                self._patch(self.module, attr, self._wrap(name, original))
        return self

    def _patch(self, owner: Any, attr: str, value: Any) -> None:
        try:
            self._undo.append((owner, attr, getattr(owner, attr)))
            setattr(owner, attr, value)
        except (AttributeError, TypeError):
            self._undo.pop()

    def __exit__(self, *exc: Any) -> None:
        for owner, attr, original in reversed(self._undo):
            setattr(owner, attr, original)
