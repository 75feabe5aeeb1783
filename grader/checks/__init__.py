"""Check kinds, one per module named for its kind (``param_count``, ``layer_structure``…);
importing this package registers them all. What several kinds share has a module of its own:
``values`` (comparing a student's values with the expected ones), ``model_probe`` (a model's
trace, the student's and the reference's), ``forbidden`` (operators a lab forbids), ``raised``
(the wording of what a student's code raised), ``registry``.

Binding a lab imports every kind it uses, and listing the labs binds them all: a kind's module
imports numpy and torch inside the functions that compute, never at the top, so that `gradelab
labs` answers at once."""

from grader.checks import (  # noqa: F401  (importing a kind's module registers it)
    answers,
    finite_outputs,
    function_outputs,
    functions,
    handin_format,
    layer_structure,
    mode_behaviour,
    ops,
    output_shape,
    param_count,
    random_augmentation,
    training,
    training_comparison,
    written,
)
from grader.checks.registry import (
    BoundCheck,
    BoundLab,
    CheckKind,
    KindParams,
    bind,
    get_check,
    register_check,
    registered_kinds,
)

__all__ = ["BoundCheck", "BoundLab", "CheckKind", "KindParams", "bind", "get_check", "register_check",
           "registered_kinds"]
