"""Labs as data: manifest models and the loader that validates a lab folder."""

from grader.lab.loader import Lab, find_labs, labs_root, load_lab
from grader.lab.manifest import (
    AnswerFieldSpec,
    CheckSpec,
    InterfaceSpec,
    LabManifest,
    Limits,
    LimitsOverride,
    SymbolSpec,
    Visibility,
)

__all__ = [
    "AnswerFieldSpec", "CheckSpec", "InterfaceSpec", "Lab", "LabManifest", "Limits",
    "LimitsOverride", "SymbolSpec", "Visibility", "find_labs", "labs_root", "load_lab",
]
