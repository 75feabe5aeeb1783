"""`gradelab calibrate` takes the run options `gradelab grade` takes (issue 26): the README says
"run it with your data", and the reference must train on the class's data under its limits."""

from __future__ import annotations

from tests.conftest import ROOT, cli


def test_calibrate_trains_the_reference_with_the_data_root_and_limits_it_is_given(tmp_path, monkeypatch):
    import grader.calibrate
    from grader.errors import LabError

    seen = []

    def grade_submission(run, path, **kwargs):
        seen.append(run.options)
        raise LabError("stopped by the test once the options were seen")

    monkeypatch.setattr(grader.calibrate, "grade_submission", grade_submission)
    data = tmp_path / "data"
    data.mkdir()
    result = cli("calibrate", str(ROOT / "reference" / "cifar-training"), "--budget", "smoke", "--seed", "3",
                 "--data-root", str(data), "--wall-time", "77", "--memory-mb", "900")
    assert "stopped by the test once the options were seen" in result.output
    (options,) = seen
    assert options.data_root == data and options.limits.wall_s == 77 and options.limits.memory_mb == 900
    assert options.budget.value == "smoke" and options.seed == 3 and options.train and not options.reports


def test_calibrate_lists_the_same_run_options_as_grade():
    shown = cli("calibrate", "--help").output
    for option in ("--data-root", "--wall-time", "--cpu-time", "--memory-mb", "--device", "--budget", "--seed"):
        assert option in shown, option
