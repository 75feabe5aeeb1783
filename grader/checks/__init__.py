"""Check kinds, one per module; importing this package registers them all."""

from grader.checks.registry import BoundCheck, BoundLab, CheckKind, KindParams, bind, get_check, register_check, registered_kinds

from grader.checks import answers, comparison, functions, model, ops, outputs, training  # noqa: E402,F401  (registration)

__all__ = ["BoundCheck", "BoundLab", "CheckKind", "KindParams", "bind", "get_check", "register_check",
           "registered_kinds"]
