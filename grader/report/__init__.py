"""Feedback reports: one PDF (or HTML) per submission and a class summary, from ``templates/``.

Reports are built from ``SubmissionResult`` alone, so any check kind shows up without changes
here: a check's ``details`` may carry ``answers`` (answer-sheet rows), ``comparisons`` (relative
errors against a tolerance), ``curves`` (per-epoch or per-step series) and ``bands`` (per-step
min/max bands, side by side), and each gets its section; ``input`` names what its ``expected`` and
``got`` were computed on.
"""

from grader.report.render import ReportRenderer

__all__ = ["ReportRenderer"]
