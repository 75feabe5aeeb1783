"""Probes: the only things a child does with a student's module. They return raw values.

A probe calls student code and converts what comes back to plain data (numbers, lists, numpy
arrays); it never judges. Verdicts are computed in the grader from these values and the
reference. New labs reuse these probes; a new kind of interaction means a new probe here.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import torch

from grader.sandbox.faults import describe_exception
from grader.sandbox.watch import OperatorRecord, Tripwire

PROBES: dict[str, Callable[..., Any]] = {}


def probe(name: str):
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in PROBES:
            raise ValueError(f"probe {name!r} is already registered")
        PROBES[name] = fn
        return fn

    return decorate


def to_raw(value: Any, depth: int = 0) -> Any:
    """Tensors to numpy, containers recursively; anything else exotic is refused by name."""
    if depth > 20:
        raise TypeError("value nested too deeply")
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu()
        if t.dtype in (torch.bfloat16, torch.float16):
            t = t.float()
        return np.array(t.numpy(), copy=True)
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError("an array of Python objects")
        return np.array(value, copy=True)
    if isinstance(value, np.generic):
        return value.item()
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, bool):  # subclasses (with their own __eq__ ...) lose their methods
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [to_raw(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): to_raw(v, depth + 1) for k, v in value.items()}
    raise TypeError(f"a value of type {type(value).__name__}")


def _student_file(module: Any) -> str:
    return getattr(module, "__file__", "") or ""


@probe("describe")
def describe(module: Any, symbols: list[str]) -> dict[str, Any]:
    """What the module offers under each declared name: kind and call signature."""
    out: dict[str, Any] = {}
    for name in symbols:
        obj = getattr(module, name, None)
        if obj is None:
            out[name] = {"exists": False}
            continue
        kind = "class" if inspect.isclass(obj) else "function" if callable(obj) else type(obj).__name__
        params = None
        try:
            sig = inspect.signature(obj)
            params = [{"name": p.name, "kind": p.kind.name, "default": p.default is not p.empty}
                      for p in sig.parameters.values()]
        except (TypeError, ValueError):
            pass
        out[name] = {"exists": True, "kind": kind, "params": params}
    return out


def to_tensors(value: Any) -> Any:
    """numpy arrays to torch tensors (same dtype), inside lists and dicts too: what torch code
    written by students expects to receive."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.array(value, copy=True))
    if isinstance(value, list):
        return [to_tensors(v) for v in value]
    if isinstance(value, dict):
        return {k: to_tensors(v) for k, v in value.items()}
    return value


@probe("call")
def call(module: Any, function: str, cases: list[list[Any]], tensors: bool = False,
         seed: int | None = None, forbid: list[str] | None = None, forbid_ops: list[str] | None = None,
         forbid_autograd: bool = False) -> list[dict[str, Any]]:
    """Call ``function`` once per argument list; with ``tensors``, arrays arrive as torch tensors;
    with ``seed``, torch's generator is seeded before each call (random initialisations); with
    ``forbid``, each outcome lists the forbidden callables the call used; with ``forbid_ops`` and
    ``forbid_autograd``, the forbidden operators it ran and how it used autograd (``watch``)."""
    fn = getattr(module, function)
    results = []
    for args in cases:
        if tensors:
            args = to_tensors(args)
        if seed is not None:
            torch.manual_seed(seed)
        with contextlib.ExitStack() as stack:
            wire = stack.enter_context(Tripwire(module, forbid)) if forbid else None
            record = (stack.enter_context(OperatorRecord(forbid_ops, forbid_autograd))
                      if forbid_ops or forbid_autograd else None)
            outcome = _outcome_with_file(partial(fn, *args), module)
        if wire is not None:
            outcome["forbidden"] = wire.seen
        if record is not None:
            outcome.update(record.report())
        results.append(outcome)
        error = outcome.get("error") or {}
        if error.get("out_of_memory") or error.get("type") == "RecursionError":
            break  # the next inputs would fail the same way, only slower; the grader repeats this one
    return results


@probe("harness")
def harness(module: Any, source: str, entry: str, args: dict[str, Any], forbid_ops: list[str] | None = None,
            forbid_autograd: bool = False) -> dict[str, Any]:
    """Run a lab's harness function (trusted code shipped with the lab, e.g. a training loop)
    on the student's module: ``{"result": its raw values}``, and with ``forbid_ops`` or
    ``forbid_autograd`` what the whole run did that is forbidden (``operators``, ``autograd``):
    a hand-written backward that calls autograd only when the harness calls it is caught there.

    The harness comes as source text so the child needs no access to the lab's folder. It runs
    after the student's import, in the same process: what it returns is checked by the grader
    against the budget, never taken on trust (``checks.training``)."""
    namespace: dict[str, Any] = {"__name__": "gradelab_harness"}
    exec(compile(source, "harness.py", "exec"), namespace)
    if not (forbid_ops or forbid_autograd):
        return {"result": to_raw(namespace[entry](module, **to_tensors(args)))}
    with OperatorRecord(forbid_ops, forbid_autograd) as record:
        result = namespace[entry](module, **to_tensors(args))
    return {"result": to_raw(result), **record.report()}


def _outcome_with_file(fn: Callable[[], Any], module: Any) -> dict[str, Any]:
    try:
        return {"ok": True, "value": to_raw(fn())}
    except Exception as exc:
        return {"ok": False, "error": describe_exception(exc, _student_file(module))}


def _build(module: Any, cls: str, init_args: list[Any], seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = getattr(module, cls)(*init_args)
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{cls}() did not build a torch.nn.Module (got {type(model).__name__})")
    return model


@probe("model_forward")
def model_forward(module: Any, cls: str, inputs: list[np.ndarray], init_args: list[Any] | None = None,
                  train: bool = False, seed: int = 0) -> list[dict[str, Any]]:
    """Build the model, then run each input through it (no grad); one outcome per input."""
    model = _build(module, cls, init_args or [], seed)
    model.train(train)
    results = []
    with torch.no_grad():
        for x in inputs:
            results.append(_outcome_with_file(partial(model, torch.from_numpy(x)), module))
            if not results[-1]["ok"] and results[-1]["error"].get("out_of_memory"):
                break  # the next input would exhaust memory again, only slower
    return results


_LAYER_ATTRS = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
                "in_features", "out_features", "num_features", "p", "output_size")


def _plain(v: Any) -> Any:
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    return str(v)


# Layers a forward pass may call as functions instead of modules (`F.max_pool2d(x, 2)` is as
# right as `self.pool(x)`): each is traced as the module it stands for, with the module's
# attribute names, so a structure check sees the same layer either way.
FUNCTIONAL_LAYERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "torch.nn.functional.max_pool2d": ("MaxPool2d", ("input", "kernel_size", "stride", "padding", "dilation")),
    "torch.max_pool2d": ("MaxPool2d", ("input", "kernel_size", "stride", "padding", "dilation")),
    "torch.nn.functional.avg_pool2d": ("AvgPool2d", ("input", "kernel_size", "stride", "padding")),
    "torch.avg_pool2d": ("AvgPool2d", ("input", "kernel_size", "stride", "padding")),
    "torch.nn.functional.dropout": ("Dropout", ("input", "p")),
    "torch.dropout": ("Dropout", ("input", "p")),
    "torch.nn.functional.adaptive_avg_pool2d": ("AdaptiveAvgPool2d", ("input", "output_size")),
    "torch.nn.functional.relu": ("ReLU", ("input",)),
    "torch.relu": ("ReLU", ("input",)),
    "torch.relu_": ("ReLU", ("input",)),
    "torch.Tensor.relu": ("ReLU", ("input",)),
}
_FUNCTIONAL_DEFAULTS: dict[str, dict[str, Any]] = {"MaxPool2d": {"padding": 0, "dilation": 1}, "AvgPool2d": {"padding": 0},
                        "Dropout": {"p": 0.5}}


class _FunctionalLayers(Tripwire):
    """Records the functional layers the student's own code calls. Calls made inside a module's
    forward (``nn.MaxPool2d`` calls ``F.max_pool2d``) or inside another traced function are the
    same layer, already recorded, so ``busy`` counts how deep in one the forward pass is."""

    def __init__(self, module: Any, calls: list[dict[str, Any]], busy: list[int]) -> None:
        super().__init__(module, list(FUNCTIONAL_LAYERS))
        self.trace, self.busy = calls, busy

    def _wrap(self, name: str, original: Any) -> Any:
        kind, params = FUNCTIONAL_LAYERS[name]

        def traced(*args: Any, **kwargs: Any) -> Any:
            if self.busy[0]:
                return original(*args, **kwargs)
            self.busy[0] += 1
            try:
                out = original(*args, **kwargs)
            finally:
                self.busy[0] -= 1
            given = {**dict(zip(params, args)), **{k: v for k, v in kwargs.items() if k in params}}
            attrs = {**_FUNCTIONAL_DEFAULTS.get(kind, {}), **{k: _plain(v) for k, v in given.items() if k != "input"}}
            if "kernel_size" in attrs and attrs.get("stride") in (None, []):
                attrs["stride"] = attrs["kernel_size"]  # what the module does with stride=None
            shape = list(out.shape) if isinstance(out, torch.Tensor) else None
            self.trace.append({"name": f"{name.rsplit('.', 1)[-1]} (function)", "type": kind, "attrs": attrs,
                               "out_shape": shape})
            return out
        return traced


@probe("model_trace")
def model_trace(module: Any, cls: str, input: np.ndarray, init_args: list[Any] | None = None,
                seed: int = 0, train: bool = False) -> dict[str, Any]:
    """Parameters, buffers, and the layers in the order a forward pass calls them: leaf modules,
    and the functional layers the student's code calls itself."""
    model = _build(module, cls, init_args or [], seed)
    model.train(train)
    calls: list[dict[str, Any]] = []
    names = {m: n for n, m in model.named_modules()}
    busy = [0]  # > 0 while a torch layer module or a traced function runs

    def torch_layer(mod: torch.nn.Module) -> bool:
        # nn.MaxPool2d's own F.max_pool2d call is the same layer; a student's leaf module that
        # calls F.max_pool2d in its forward is a wrapper, and the call is the layer.
        return type(mod).__module__.startswith("torch.")

    def enter(mod: torch.nn.Module, _inp: Any) -> None:
        busy[0] += torch_layer(mod)

    def hook(mod: torch.nn.Module, _inp: Any, out: Any) -> None:
        busy[0] -= torch_layer(mod)
        attrs = {a: _plain(getattr(mod, a)) for a in _LAYER_ATTRS if hasattr(mod, a)}
        shape = list(out.shape) if isinstance(out, torch.Tensor) else None
        calls.append({"name": names.get(mod, "?"), "type": type(mod).__name__, "attrs": attrs,
                      "out_shape": shape, "torch": torch_layer(mod)})

    # Modules held in a plain list are not the model's (param_count says so), but the forward pass
    # runs them where they belong: trace them too, so the structure is judged on what runs.
    stray = _stray_modules(model)
    for label, m in stray:
        names.update({sub: f"{label}.{n}".rstrip(".") for n, sub in m.named_modules()})
    leaves = [m for root in [model, *(m for _, m in stray)] for m in root.modules() if not list(m.children())]
    handles = [m.register_forward_pre_hook(enter) for m in leaves] + [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad(), _FunctionalLayers(module, calls, busy):
            model(torch.from_numpy(input))
        error = None
    except Exception as exc:
        error = describe_exception(exc, _student_file(module))
    finally:
        for h in handles:
            h.remove()
    return {
        "parameters": [{"name": n, "shape": list(p.shape), "trainable": bool(p.requires_grad)}
                       for n, p in model.named_parameters()],
        "buffers": [{"name": n, "shape": list(b.shape)} for n, b in model.named_buffers()],
        "calls": calls,
        "unregistered": unregistered_modules(model),
        "error": error,
    }


def _stray_modules(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """(``blocks[0]``, module) for each module held in a plain list, tuple or dict attribute of
    the model or of one of its modules, and not registered anywhere in it."""
    registered = {id(m) for m in model.modules()}  # `self.layers = [self.conv1, ...]` is only a view
    found = []
    for prefix, mod in model.named_modules():
        for attr, value in vars(mod).items():
            if attr.startswith("_"):
                continue
            items = (value.items() if isinstance(value, dict) else enumerate(value)
                     if isinstance(value, (list, tuple)) else ())
            path = f"{prefix}.{attr}" if prefix else attr
            found += [(f"{path}[{key!r}]" if isinstance(value, dict) else f"{path}[{key}]", v)
                      for key, v in items if isinstance(v, torch.nn.Module) and id(v) not in registered]
    return found


def unregistered_modules(model: torch.nn.Module) -> list[str]:
    """Attributes holding modules in a plain list, tuple or dict (``self.blocks = [...]``):
    PyTorch does not register those, so their parameters are neither counted, nor moved by
    ``.to()``, nor given to the optimizer: they never train."""
    return list(dict.fromkeys(label.rsplit("[", 1)[0] for label, _ in _stray_modules(model)))


ACTIVATIONS = ["torch.relu", "torch.nn.functional.relu", "torch.Tensor.relu", "torch.relu_",
               "torch.nn.functional.leaky_relu", "torch.nn.functional.elu", "torch.nn.functional.gelu",
               "torch.tanh", "torch.sigmoid", "torch.nn.functional.silu"]


RANDOM_LAYERS = ["torch.nn.functional.dropout", "torch.nn.functional.dropout1d", "torch.nn.functional.dropout2d",
                 "torch.nn.functional.dropout3d", "torch.nn.functional.alpha_dropout",
                 "torch.nn.functional.feature_alpha_dropout", "torch.dropout", "torch.alpha_dropout",
                 "torch.feature_dropout", "torch.feature_alpha_dropout"]


class _QuietRandomness(Tripwire):
    """Dropout as at test time (the identity), however it is written: nn.Dropout calls F.dropout,
    and ``F.dropout(x, p, training=self.training)`` is patched where the student bound it. A probe
    of BatchNorm's batch statistics then sees BatchNorm alone, whatever random layers the model
    also holds (the lab's own ConvNet with dropout and BatchNorm)."""

    def __init__(self, module: Any) -> None:
        super().__init__(module, RANDOM_LAYERS)

    def _wrap(self, name: str, original: Any) -> Any:
        def identity(*args: Any, **kwargs: Any) -> Any:
            return args[0] if args else kwargs.get("input")
        return identity


def first_random_module(model: torch.nn.Module, run: Callable[[], Any]) -> str | None:
    """The first module, in the order the forward pass calls them, whose output differs between
    two passes over the same input: the one that draws random numbers (``classifier.2 (Noise)``)."""
    passes: list[list[tuple[str, torch.Tensor]]] = []
    names = {m: n for n, m in model.named_modules()}

    def hook(mod: torch.nn.Module, _inp: Any, out: Any) -> None:
        if isinstance(out, torch.Tensor):
            passes[-1].append((f"{names.get(mod, '?') or 'the model'} ({type(mod).__name__})", out.detach().clone()))

    leaves = [m for m in model.modules() if not list(m.children())] or [model]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        for _ in range(2):
            passes.append([])
            run()
    finally:
        for h in handles:
            h.remove()
    for (name, a), (_, b) in zip(*passes):
        if a.shape != b.shape or not torch.allclose(a, b, atol=1e-5, rtol=1e-4, equal_nan=True):
            return name
    return None


def _probabilities(out: Any) -> bool:
    """Rows in [0, 1] that sum to 1: a softmax output, which CrossEntropyLoss would softmax again
    (log-probabilities are harmless there: log-softmax of a log-softmax is itself)."""
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or not out.is_floating_point():
        return False
    sums = out.sum(dim=1)
    return bool(out.min() >= 0 and out.max() <= 1 and torch.allclose(sums, torch.ones_like(sums), atol=1e-4))


def mode_behaviour_of(model: torch.nn.Module, x: torch.Tensor, owner: Any = None) -> dict[str, Any]:
    """How a model behaves in train and eval mode (shared by the probe and the grader's reference).
    Whether an image's output depends on its batch is measured with dropout off, so a random
    layer beside BatchNorm does not hide it; a module that is random all the same is named."""
    def same(a: torch.Tensor, b: torch.Tensor) -> bool:
        return bool(torch.allclose(a, b, atol=1e-5, rtol=1e-4, equal_nan=True))

    half = len(x) // 2
    with torch.no_grad():
        model.train()
        stuck = [type(m).__name__ for m in model.modules() if not m.training]
        t1, t2 = model(x), model(x)
        with _QuietRandomness(owner or model):
            q1, q2, q_sub = model(x), model(x), model(x[:half])
            random_module = None if same(q1, q2) else first_random_module(model, lambda: model(x))
        model.eval()
        e1, e2, e_sub = model(x), model(x), model(x[:half])
        with Tripwire(owner or model, ACTIVATIONS) as wire:
            model(x)
    return {
        "train_repeat_differs": not same(t1, t2),
        "eval_repeat_differs": not same(e1, e2),
        "train_batch_dependent": not same(q1[:half], q_sub) and same(q1, q2),
        "eval_batch_dependent": not same(e1[:half], e_sub),
        "random_with_dropout_off": random_module,
        "returns_probabilities": _probabilities(e1),
        "modules_in_eval_after_train": stuck,
        "activation_calls": wire.calls,
        "unregistered": unregistered_modules(model),
    }


@probe("mode_behaviour")
def mode_behaviour(module: Any, cls: str, input: np.ndarray, seed: int = 0) -> dict[str, Any]:
    model = _build(module, cls, [], seed)
    return mode_behaviour_of(model, torch.from_numpy(input), module)
