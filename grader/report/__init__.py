"""Feedback reports: one PDF (or HTML) per submission and a class summary, from ``templates/``.

Reports are built from ``SubmissionResult`` alone, so any check kind shows up without changes
here: a check's ``details`` may carry ``answers`` (answer-sheet rows), ``comparisons`` (relative
errors against a tolerance) and ``curves`` (per-epoch series), and each gets its section; ``input``
names what its ``expected`` and ``got`` were computed on.
"""

from grader.report.render import ReportRenderer

__all__ = ["ReportRenderer"]
