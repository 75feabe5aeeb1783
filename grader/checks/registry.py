"""The registry of check kinds: labs name a kind, the grader looks it up here, and ``bind``
joins each check of a loaded lab to its kind.

A kind is a class with a pydantic ``Params`` model (what a manifest may set), ``needs`` (the
symbols and answer fields it cannot run without), ``preload`` (what the fork server should
import for it), ``run`` (the verdict, computed in the grader's process from the reference and
from raw values the sandbox returned), ``disclosure`` (what a student may see of its results:
nothing unless it says so) and ``student_edition`` (how it runs where students have no solutions:
by default it cannot, and checks the format only).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from grader.errors import LabError
from grader.lab.loader import Lab, format_validation_error
from grader.lab.manifest import CheckSpec, Need
from grader.results import Disclosure

if TYPE_CHECKING:
    from grader.grading.context import CheckContext
    from grader.results import Outcome


class KindParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class LocalCheck:
    """How a check runs in a lab's student edition: its params there, and the names it uses from
    the lab's reference module (none of them a solution), the harness, the calibration."""

    params: dict[str, Any]
    reference: tuple[str, ...] = ()
    harness: bool = False
    calibration: bool = False


class CheckKind(ABC):
    name: ClassVar[str]
    Params: ClassVar[type[KindParams]] = KindParams
    summary: ClassVar[str] = ""
    # Safe by default: a kind that declares nothing shows students its verdict, named mistakes and hint only.
    disclosure: ClassVar[Disclosure] = Disclosure()

    def needs(self, params: Any) -> list[Need]:
        """Symbols and answer fields this check cannot run without."""
        return []

    def preload(self, params: Any) -> list[str]:
        """Modules the sandbox's fork server should import once for this check's probes, so that
        no child pays for them."""
        return []

    def datasets(self, params: Any, budget: str, named: bool, early_stop: bool) -> list[tuple[str, dict[str, Any]]]:
        """The data sets (reference function, arguments) this check loads under ``budget``
        (``named``: asked for by name; ``early_stop``: the run may stop training early): a run
        loads them while the fork server starts (``Run.prepare``), not when the check starts."""
        return []

    def refers_to(self, params: Any) -> list[Need]:
        """Symbols and answer fields the check grades one by one (a missing one costs its own
        share, not the check); declared in the interface like ``needs``."""
        return []

    def student_edition(self, params: Any) -> LocalCheck | None:
        """How this check runs without the lab's solutions; ``None``: it needs them (the reference
        implementation of what students write, or the reference answers), so a student edition
        checks the format only and the check is graded on hand-in."""
        return None

    @abstractmethod
    def run(self, ctx: CheckContext, params: Any) -> Outcome: ...


_REGISTRY: dict[str, type[CheckKind]] = {}


def register_check(name: str):
    """Class decorator adding a kind; a second kind with the same name is a programming error."""

    def decorate(cls: type[CheckKind]) -> type[CheckKind]:
        if name in _REGISTRY:
            raise ValueError(f"check kind {name!r} is already registered by {_REGISTRY[name].__qualname__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def get_check(name: str) -> CheckKind:
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise LabError(f"unknown check kind {name!r}; known kinds: {', '.join(sorted(_REGISTRY))}") from None


def registered_kinds() -> dict[str, type[CheckKind]]:
    """Every kind: importing this module imports its package, whose ``__init__`` registers the
    built-in kinds (one module each)."""
    return dict(sorted(_REGISTRY.items()))


@dataclass(frozen=True)
class BoundCheck:
    """A manifest check joined to its kind, with params validated and prerequisites known."""

    spec: CheckSpec
    kind: CheckKind
    params: Any
    needs: tuple[Need, ...] = ()


@dataclass(eq=False)
class BoundLab(Lab):
    """A lab whose checks are bound to their kinds: what the engine grades with."""

    checks: list[BoundCheck]


def bind(lab: Lab) -> BoundLab:
    """Join each check to its kind, validate its params against the kind's model and its
    prerequisites against the interface. Every problem names the manifest, the check and the field."""
    if isinstance(lab, BoundLab):
        return lab
    source, manifest = lab.source, lab.manifest
    bound = []
    for i, spec in enumerate(manifest.checks):
        try:
            kind = get_check(spec.kind)
        except LabError as exc:
            raise LabError(f"{source}: checks[{i}].kind: {exc}") from None
        try:
            params = kind.Params.model_validate(spec.params)
        except ValidationError as exc:
            lines = format_validation_error(source, exc).replace(f"{source}: ", f"{source}: checks[{i}].params.")
            raise LabError(f"check {spec.id!r} ({spec.kind}):\n{lines}") from None
        needs = tuple(dict.fromkeys([*kind.needs(params), *map(Need.parse, spec.needs)]))
        for need in [*needs, *kind.refers_to(params)]:
            if not manifest.declares(need):
                raise LabError(f"{source}: checks[{i}]: check {spec.id!r} uses {str(need)!r}, "
                               "which the interface does not declare")
        bound.append(BoundCheck(spec=spec, kind=kind, params=params, needs=needs))
    return BoundLab(manifest=manifest, folder=lab.folder, checks=bound)
