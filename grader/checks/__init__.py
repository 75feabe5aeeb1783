"""Check kinds, one per module; importing this package registers them all.

Binding a lab imports every kind it uses, and listing the labs binds them all: a kind's module
imports numpy and torch inside the functions that compute, never at the top, so that `gradelab
labs` answers at once."""

from grader.checks.registry import BoundCheck, BoundLab, CheckKind, KindParams, bind, get_check, register_check, registered_kinds

from grader.checks import answers, comparison, functions, handin_format, model, ops, outputs, training, written  # noqa: E402,F401  (registration)

__all__ = ["BoundCheck", "BoundLab", "CheckKind", "KindParams", "bind", "get_check", "register_check",
           "registered_kinds"]
