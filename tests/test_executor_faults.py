"""A hand-in's fault is a result on that hand-in, whatever exception it raises while being read:
the batch goes on to the next one (issue 26)."""

from __future__ import annotations

import json

from tests.conftest import ROOT

CORRECT = ROOT / "submissions/cifar-convnet/correct"


def test_a_notebook_whose_cell_python_cannot_build_does_not_end_the_batch(tmp_path):
    """A 7 kB cell of `+` raised RecursionError out of the notebook reader and ended `gradelab grade`
    for the whole class, on every rerun."""
    from grader import api
    from grader.options import RunOptions

    (tmp_path / "chain").mkdir()
    module = (CORRECT / "convnet.py").read_text()
    cells = [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": src}
             for src in (module, "x = 1" + "+1" * 3500)]
    (tmp_path / "chain" / "lab2.ipynb").write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                                               "nbformat_minor": 5}))
    (tmp_path / "chain" / "answers.yaml").write_text((CORRECT / "answers.yaml").read_text())
    batch = api.grade(tmp_path, "cifar-convnet", tmp_path / "out", RunOptions(reports=False, jobs=1),
                      paths=[tmp_path / "chain", CORRECT])
    chain, correct = (next(r for r in batch.results if r.submission == n) for n in ("chain", "correct"))
    assert correct.score > 0
    assert any(n.startswith("cell 2: code that does not parse, not run by the grader") for n in chain.notes)
    assert chain.score == correct.score


def test_any_exception_while_reading_one_hand_in_is_that_hand_ins_result(tmp_path, monkeypatch):
    from grader import api, submission
    from grader.grading import engine
    from grader.options import RunOptions

    real = submission.load_submission

    def load(path, *args, **kwargs):
        if path.name == "broken":
            raise RecursionError("maximum recursion depth exceeded")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(engine, "load_submission", load)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "convnet.py").write_text("x = 1\n")
    batch = api.grade(tmp_path, "cifar-convnet", tmp_path / "out", RunOptions(reports=False, jobs=1),
                      paths=[tmp_path / "broken", CORRECT])
    broken, correct = (next(r for r in batch.results if r.submission == n) for n in ("broken", "correct"))
    assert correct.score > 0 and all(c.kind != "submission" for c in correct.checks)
    assert broken.score == 0 and broken.checks[0].message == (
        "the grader could not read this hand-in (RecursionError); the course staff can see why in the grader's log")
