"""One grading run: the lab and the options it was asked to grade with, and what it owns and
closes — the sandbox (its fork server) and the data sets it loaded — instead of process globals.

A ``Run`` is made once per command (a self-check, a batch, a calibration) or per worker, and
every submission graded in it reads its settings from here, never from copies.
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grader.checks.registry import BoundLab, bind
from grader.data.digits import cache_root as data_cache_root
from grader.errors import LabError, UsageError
from grader.grading.selection import running_checks
from grader.lab.loader import Lab, labs_root
from grader.lab.manifest import Limits
from grader.options import Budget, Device, EventSink, Mode, RunOptions, ignore
from grader.sandbox.runner import Sandbox, sandbox_for


def resolve_device(device: Device) -> Device:
    """``auto``: the GPU when torch sees one, else the CPU. ``cuda`` where torch sees none is
    refused here, before anything is graded (not recorded as a failure of every hand-in)."""
    device = Device(device)
    if device == Device.cpu:
        return device
    import torch

    if torch.cuda.is_available():
        return Device.cuda
    if device == Device.cuda:
        raise UsageError("--device cuda: torch sees no CUDA GPU on this machine")
    return Device.cpu


def sandbox_preload(lab: Lab) -> tuple[str, ...]:
    """What the fork server imports once for this lab: the worker, what the lab lists, and what
    its checks' kinds ask for."""
    bound = bind(lab)
    checks = [m for c in bound.checks for m in c.kind.preload(c.params)]
    return tuple(dict.fromkeys(("grader.sandbox.worker", *bound.manifest.preload, *checks)))


class Run:
    def __init__(self, lab: Lab, options: RunOptions = RunOptions(), *, on_event: EventSink = ignore,
                 sandbox: Sandbox | None = None, hide: tuple[Path, ...] = ()) -> None:
        self.lab: BoundLab = bind(lab)
        if self.lab.manifest.edition == "students" and options.mode == Mode.grade:
            raise LabError(f"{self.lab.folder} is a student edition of {self.lab.id!r}: it holds no solutions, so it "
                           "self-checks hand-ins but cannot grade them; grade with the full lab")
        self.options = options
        self.device = resolve_device(options.device)
        self.emit = on_event
        self.hide = tuple(Path(p) for p in hide)
        if sandbox is None:
            sandbox, self._owns_sandbox = sandbox_for(sandbox_preload(self.lab))
        else:
            self._owns_sandbox = False
        self.sandbox = sandbox
        self._datasets: dict[tuple[str, str, str | None], dict[str, Any]] = {}
        self._loading = threading.Lock()  # the data sets: loaded once, by ``prepare`` or a check
        self._reference_values: dict[str, Any] = {}
        self._identities: dict[tuple[str, str, str], str] = {}

    @property
    def limits(self) -> Limits:
        """The lab's limits under the command line's: what a check gets unless it says otherwise."""
        return self.lab.manifest.limits.merged(self.options.limits)

    def hidden_paths(self) -> list[Path]:
        """What a child must not see: every lab (reference code, answers, data), the data sets
        (``--data-root`` and gradelab's own cache: the test labels are there) and what the run was
        told to hide (the results, the class); the sandbox adds the folder holding the hand-in.
        A child never needs a data folder: the harness gets its data through the job."""
        data = [Path(self.options.data_root)] if self.options.data_root else []
        return [self.lab.folder, labs_root(), *data, data_cache_root(), *self.hide]

    @property
    def budget(self) -> str:
        """The training budget: named on the command line, else "gpu" or "cpu" by device."""
        if self.options.budget is not None:
            return self.options.budget.value
        return Budget.gpu.value if self.device == Device.cuda else Budget.cpu.value

    @property
    def budget_named(self) -> bool:
        """Whether the budget was asked for by name (a check without it is then an error)."""
        return self.options.budget is not None

    def dataset(self, function: str, args: dict[str, Any]) -> dict[str, Any]:
        """A data set from the lab's reference module, loaded once per run."""
        data_root = str(self.options.data_root) if self.options.data_root else None
        key = (function, json.dumps(args, sort_keys=True), data_root)
        with self._loading:
            if key not in self._datasets:
                try:
                    self._datasets[key] = getattr(self.lab.reference, function)(data_root=data_root, **args)
                except Exception as exc:  # the data set is the instructor's set-up, not the student's fault
                    raise LabError(f"data set {function!r} could not be loaded"
                                   f"{f' from {data_root}' if data_root else ''}: {type(exc).__name__}: {exc}") from exc
            return self._datasets[key]

    def prepare(self) -> threading.Thread:
        """Do now, in a thread of the grader, what the checks will wait for otherwise: import what
        the fork server imports (the reference runs the same torch: a torch optimizer imports
        torch._dynamo, 1–2 s) and, when training checks run, load their data sets (torchvision's
        import is most of it). The fork server imports in its own process meanwhile, so a fresh
        ``check --train`` pays for the two at once, not one after the other (about 4 s of 25 for
        cifar-training's correct hand-in on 2 cores). A failure here is left for the check that
        needs the same thing to say."""
        try:
            checks = running_checks(self.lab, self.options)
        except LabError:
            checks = []  # an unknown --only: the engine says so, before anything is graded
        modules = [m for m in sandbox_preload(self.lab) if m != "grader.sandbox.worker"]
        data = [d for c in checks for d in c.kind.datasets(c.params, self.budget, self.budget_named,
                                                           self.options.early_stop)]
        try:
            if data:
                _ = self.lab.reference  # imported here, not in the thread: a module is imported once
        except LabError:
            data = []  # a broken reference: said by the first check that uses it

        def work() -> None:
            for module in modules:
                try:
                    importlib.import_module(module)
                except Exception:  # the fork server reports its own import failure
                    continue
            for function, args in data:
                try:
                    self.dataset(function, args)
                except Exception:  # raised again, worded, by the check that loads it
                    continue

        thread = threading.Thread(target=work, name="gradelab-prepare", daemon=True)
        thread.start()
        return thread

    def data_identity(self, function: str, args: dict[str, Any]) -> str:
        """What a calibration must have been measured on to judge this data set
        (``grader.lab.calibration``): ``bundled`` for the lab's own data, else the digest of the
        arrays from ``--data-root`` (``bundled`` too when they are the bundled set's)."""
        from grader.lab.calibration import BUNDLED, digest

        if not self.options.data_root:
            return BUNDLED
        key = ("identity", function, json.dumps(args, sort_keys=True))
        if key not in self._identities:
            ours = digest(self.dataset(function, args))
            try:
                bundled = digest(getattr(self.lab.reference, function)(data_root=None, **args))
            except Exception:
                bundled = None
            self._identities[key] = BUNDLED if ours == bundled else ours
        return self._identities[key]

    def reference_value(self, key: str, compute: Callable[[], Any]) -> Any:
        """A value computed from the lab's reference in the grader, the same for every hand-in of
        the run (a check draws the same inputs for each): computed once. ``key`` must name all it
        depends on; callers only read what they get."""
        if key not in self._reference_values:
            self._reference_values[key] = compute()
        return self._reference_values[key]

    def close(self) -> None:
        """End the run: its own sandbox closed; one it was handed only settled (its children
        gone, their uids and cgroups given back), for its owner to use again."""
        if self._owns_sandbox:
            self.sandbox.close()
        else:
            self.sandbox.settle()
        self._datasets.clear()
        self._reference_values.clear()
        self._identities.clear()

    def __enter__(self) -> Run:
        self.sandbox.start()
        self.prepare()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
