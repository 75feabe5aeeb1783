"""What a check kind may use while it runs: the lab, the submission, and the sandbox.

``SubmissionSession`` holds what is shared by the checks of one submission: the interface report
(one ``describe`` probe), an import failure (found once, reported on every check that needs the
module), cached probe replies, and the tail of what the student's code printed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from grader.grading.interface import SymbolReport, symbol_problem
from grader.lab.loader import Lab
from grader.lab.manifest import Limits
from grader.sandbox.runner import ProbeFailure, run_probe
from grader.submission import Submission


def import_message(failure: ProbeFailure) -> str:
    if failure.status == "timeout":
        return f"importing your module {failure.message} (an infinite loop at import time?)"
    return f"your module could not be imported: {failure.message}"


@dataclass
class SubmissionSession:
    lab: Lab
    submission: Submission
    limits: Limits
    data_root: Path | None = None
    device: str = "cpu"
    budget: str | None = None
    hide: list[Path] = field(default_factory=list)
    on_progress: Any = None  # (epoch, epochs, loss) → None, for a progress bar during training
    import_failure: ProbeFailure | None = None
    symbol_problems: dict[str, str] | None = None
    log_tail: str = ""
    _cache: dict[str, Any] = field(default_factory=dict)

    def _run(self, probe: str, payload: dict[str, Any], limits: Limits) -> Any:
        sub = self.submission
        assert sub.module_path is not None
        # A single-file hand-in is staged under the module name the lab declares.
        module_file = self.lab.manifest.interface.module if sub.path.is_file() else sub.module_path.name
        try:
            reply = run_probe(sub.path, module_file, probe, payload, limits, hide=self.hidden_paths(),
                              on_progress=self.on_progress, gpu=self.device == "cuda")
        except ProbeFailure as failure:
            if failure.log_tail:
                self.log_tail = failure.log_tail
            if failure.stage == "import":
                self.import_failure = failure
            raise
        if reply.log_tail:
            self.log_tail = reply.log_tail
        return reply.value

    def hidden_paths(self) -> list[Path]:
        """What the child must not see: every lab (reference code, answers, data) and the
        results; the runner adds the folder holding the hand-in (the other students')."""
        from grader.lab.loader import labs_root

        return [self.lab.folder, labs_root(), *self.hide]

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
            raw = self._run("describe", {"symbols": [s.name for s in symbols]}, self.limits)
        except ProbeFailure as failure:
            self.import_failure = failure
            self.symbol_problems = {s.name: import_message(failure) for s in symbols}
            return self.symbol_problems
        problems: dict[str, str] = {}
        module_name = sub.module_path.name if sub.module_path else self.lab.manifest.interface.module
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

    def unmet(self, needs: list[str]) -> list[str]:
        problems = []
        symbol_needs = [n for n in needs if not n.startswith("answers.")]
        if symbol_needs:
            by_symbol = self.interface_problems()
            problems += [by_symbol[n] for n in symbol_needs if n in by_symbol]
        for need in needs:
            if need.startswith("answers."):
                problem = self.submission.answer_problems.get(need.removeprefix("answers."))
                if problem:
                    problems.append(problem)
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

    lab: Lab
    session: SubmissionSession
    check_id: str
    limits: Limits
    seed: int

    @property
    def submission(self) -> Submission:
        return self.session.submission

    @property
    def data_root(self) -> Path | None:
        """Where the instructor keeps the real data sets (``--data-root``); ``None``: the bundled ones."""
        return self.session.data_root

    @property
    def device(self) -> str:
        """Where training runs: "cuda" or "cpu" (resolved once per run)."""
        return self.session.device

    @property
    def budget(self) -> str:
        """The training budget to use: named on the command line, else "gpu" or "cpu" by device."""
        return self.session.budget or ("gpu" if self.session.device == "cuda" else "cpu")

    @property
    def reference(self) -> Any:
        return self.lab.reference

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

    def call(self, function: str, cases: list[list[Any]], **options: Any) -> list[dict[str, Any]]:
        """The student's ``function`` on each argument list: one reply per case. A child stops
        early after running out of memory or recursion; the inputs it skipped get that reply."""
        replies = self.probe("call", function=function, cases=cases, **options)
        replies = [r if isinstance(r, dict) else {"ok": False, "error": {"type": "a malformed reply"}}
                   for r in (replies if isinstance(replies, list) else [])]
        if len(replies) < len(cases):
            last = replies[-1] if replies else {"ok": False, "error": {"type": "no reply"}}
            replies += [last] * (len(cases) - len(replies))
        return replies[:len(cases)]
