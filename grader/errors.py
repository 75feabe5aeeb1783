"""The one exception root of gradelab, and its tree.

    GradelabError            anything the user should see as one line, not a traceback
    ├── UsageError           an option or argument the user typed is not accepted
    ├── LabError             a lab folder or manifest is missing or invalid
    ├── SubmissionError      a submission path cannot be graded at all (not found, unreadable)
    │   └── NothingToGrade   the hand-in holds no module, notebook or answer sheet
    ├── SandboxError         the sandbox itself failed (not the student's code: that is a result)
    └── ReportError          a report could not be rendered or written

Student faults (syntax errors, crashes, timeouts) are never raised as these: they become
check results. These errors are for the operator's mistakes and the grader's own failures.
"""


class GradelabError(Exception):
    """Root of every error gradelab reports to a user."""

    exit_code = 2

    def one_line(self) -> str:
        return f"{type(self).__name__}: {self}"


class UsageError(GradelabError):
    """An option or argument has a value gradelab does not accept (refused before any grading)."""


class LabError(GradelabError):
    """A lab cannot be found or its manifest does not validate."""


class SubmissionError(GradelabError):
    """A submission path cannot be graded at all."""


class NothingToGrade(SubmissionError):
    """A hand-in with no gradable content: a warning in the batch summary and in its exit status,
    not a silent zero."""


class SandboxError(GradelabError):
    """The sandbox machinery failed, independently of the student's code."""


class ReportError(GradelabError):
    """A report could not be rendered or written."""
