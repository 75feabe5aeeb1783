"""What a check kind may use while it runs: the lab, the submission, and the sandbox.

``SubmissionSession`` holds what is shared by the checks of one submission: the interface report
(one ``describe`` probe), an import failure (found once, reported on every check that needs the
module), cached probe replies, and the tail of what the student's code printed. Settings are
read from the run's options, never copied here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import ValidationError

from grader.checks.registry import BoundCheck
from grader.grading.interface import SymbolReport, symbol_problem
from grader.grading.run import Run
from grader.lab.loader import Lab
from grader.lab.manifest import Limits, Need
from grader.options import Device, RunOptions, TrainingProgress
from grader.sandbox.replies import CallReply, ProbeFailure, ProbeStatus, Stage
from grader.sandbox.runner import ChildSession
from grader.submission import Submission


def import_message(failure: ProbeFailure) -> str:
    if failure.status == ProbeStatus.timeout:
        return f"importing your module {failure.message} (an infinite loop at import time?)"
    return f"your module could not be imported: {failure.message}"


@dataclass
class SubmissionSession:
    run: Run
    submission: Submission
    name: str = ""                       # the result's name, for events
    current_check: str = ""              # the title of the check running, for progress events
    import_failure: ProbeFailure | None = None
    symbol_problems: dict[str, str] | None = None
    log_tail: str = ""
    _cache: dict[str, Any] = field(default_factory=dict)
    _children: dict[tuple[Any, ...], ChildSession] = field(default_factory=dict)

    @property
    def lab(self) -> Lab:
        return self.run.lab

    def _progress(self, epoch: int, epochs: int, loss: float) -> None:
        self.run.emit(TrainingProgress(self.name, self.current_check, epoch, epochs, loss))

    def _child(self, limits: Limits) -> ChildSession:
        """The child for probes under these limits: one per set of memory, threads, processes and
        disk limits (a training check may have its own), shared by every probe that fits it."""
        profile = (limits.memory_mb, limits.threads, limits.max_processes, limits.disk_mb, limits.output_kb)
        if profile not in self._children:
            sub = self.submission
            assert sub.module_file is not None
            self._children[profile] = self.run.sandbox.session(sub.handin, sub.module_file, limits,
                                                               hide=self.run.hidden_paths(),
                                                               gpu=self.run.device == Device.cuda)
        return self._children[profile]

    def close(self) -> None:
        """End the hand-in's children (graded: nothing more will be asked of them)."""
        for child in self._children.values():
            child.close()
        self._children.clear()

    def _run(self, probe: str, payload: dict[str, Any], limits: Limits) -> Any:
        try:
            child = self._child(limits)
            try:
                reply = child.call(probe, payload, limits, on_progress=self._progress)
            finally:
                if self.run.sandbox.child_per_probe:
                    child.close()
        except ProbeFailure as failure:
            if failure.log_tail:
                self.log_tail = failure.log_tail
            if failure.stage == Stage.import_:
                self.import_failure = failure
            raise
        if reply.log_tail:
            self.log_tail = reply.log_tail
        return reply.value

    def interface_problems(self) -> dict[str, str]:
        """Problems per declared symbol; an import failure is a problem for each of them."""
        if self.symbol_problems is not None:
            return self.symbol_problems
        symbols = self.lab.manifest.interface.symbols
        sub = self.submission
        if sub.module_problem:
            self.symbol_problems = {s.name: sub.module_problem for s in symbols}
            return self.symbol_problems
        try:
            raw = self._run("describe", {"symbols": [s.name for s in symbols]}, self.run.limits)
        except ProbeFailure as failure:
            self.import_failure = failure
            self.symbol_problems = {s.name: import_message(failure) for s in symbols}
            return self.symbol_problems
        problems: dict[str, str] = {}
        module_name = sub.module_label or self.lab.manifest.interface.module
        for spec in symbols:
            try:
                report = SymbolReport.model_validate(raw.get(spec.name) if isinstance(raw, dict) else None)
            except ValidationError:
                problems[spec.name] = f"`{spec.name}` could not be inspected"
                continue
            problem = symbol_problem(spec, report, module_name)
            if problem:
                problems[spec.name] = problem
        self.symbol_problems = problems
        return problems

    def unmet(self, needs: tuple[Need, ...]) -> list[str]:
        """What stops a check from running: each missing or broken prerequisite, said once."""
        problems = []
        if any(not n.answer for n in needs):
            by_symbol = self.interface_problems()
            problems += [by_symbol[n.name] for n in needs if not n.answer and n.name in by_symbol]
        problems += [p for n in needs if n.answer and (p := self.submission.answer_problems.get(n.name))]
        return list(dict.fromkeys(problems))

    def probe(self, name: str, payload: dict[str, Any], limits: Limits) -> Any:
        if self.import_failure is not None:
            raise self.import_failure
        key = hashlib.sha256(json.dumps([name, _fingerprint(payload)], sort_keys=True).encode()).hexdigest()
        if key not in self._cache:
            self._cache[key] = self._run(name, payload, limits)
        return self._cache[key]


def _fingerprint(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [str(value.dtype), list(value.shape), hashlib.sha256(value.tobytes()).hexdigest()]
    if isinstance(value, dict):
        return {k: _fingerprint(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_fingerprint(v) for v in value]
    return value


@dataclass
class CheckContext:
    """Handed to a check kind's ``run``: everything it may consult, nothing it must not."""

    session: SubmissionSession
    check: BoundCheck
    limits: Limits

    @property
    def lab(self) -> Lab:
        return self.session.lab

    @property
    def check_id(self) -> str:
        return self.check.spec.id

    @property
    def options(self) -> RunOptions:
        return self.session.run.options

    @property
    def submission(self) -> Submission:
        return self.session.submission

    @property
    def seed(self) -> int:
        return self.options.seed

    @property
    def device(self) -> str:
        """Where training runs: "cuda" or "cpu" (resolved once per run)."""
        return self.session.run.device.value

    @property
    def budget(self) -> str:
        """The training budget to use: named on the command line, else "gpu" or "cpu" by device."""
        return self.session.run.budget

    @property
    def budget_named(self) -> bool:
        """Whether the budget was asked for by name (a lab without it is then an error)."""
        return self.session.run.budget_named

    @property
    def reference(self) -> Any:
        return self.lab.reference

    def dataset(self, function: str, args: dict[str, Any]) -> dict[str, Any]:
        return self.session.run.dataset(function, args)

    def data_identity(self, function: str, args: dict[str, Any]) -> str:
        return self.session.run.data_identity(function, args)

    def calibration(self, function: str, args: dict[str, Any], budget: str | None,
                    seeded: bool = False) -> dict[str, Any]:
        """This check's calibration entry under ``budget``, measured on the data set it trains on
        (``grader.lab.calibration``: refused when it was measured on other data, or, for a check
        whose training takes the run's seed (``seeded``), under one other seed only)."""
        from grader.lab.calibration import entry_for, generator_of

        root = self.options.data_root
        return entry_for(self.lab.calibration, lab=self.lab.id, check=self.check_id, budget=budget,
                         data=self.data_identity(function, args), data_root=str(root) if root else None,
                         generator=generator_of(self.lab.reference, function), seed=self.seed if seeded else None)

    def answer(self, path: str) -> Any:
        return self.submission.answers[path]

    def reference_answer(self, path: str) -> Any:
        node: Any = self.lab.reference_answers
        for part in path.split("."):
            node = node[part]
        return node

    def rng(self) -> np.random.Generator:
        """A generator seeded by the run's seed and the check id: reruns draw the same inputs."""
        digest = hashlib.sha256(f"{self.seed}:{self.check_id}".encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little"))

    def probe(self, name: str, **payload: Any) -> Any:
        return self.session.probe(name, payload, self.limits)

    def reference_value(self, name: str, inputs: Any, compute: Callable[[], Any]) -> Any:
        """``compute()``, a value of the reference on ``inputs`` (arrays, lists, dicts, numbers),
        computed once per run and check: a class of hand-ins shares it."""
        key = hashlib.sha256(json.dumps([self.check_id, name, _fingerprint(inputs)], sort_keys=True,
                                        default=str).encode()).hexdigest()
        return self.session.run.reference_value(key, compute)

    def call(self, function: str, cases: list[list[Any]], **options: Any) -> list[CallReply]:
        """The student's ``function`` on each argument list: one reply per case."""
        return CallReply.parse_list(self.probe("call", function=function, cases=cases, **options), len(cases))

    def outcomes(self, probe: str, expected: int, **payload: Any) -> list[CallReply]:
        """A probe that returns one outcome per input (``model_forward``), as call replies."""
        return CallReply.parse_list(self.probe(probe, **payload), expected)
