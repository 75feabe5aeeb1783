"""The registry of check kinds: labs name a kind, the grader looks it up here.

A kind is a class with a pydantic ``Params`` model (what a manifest may set), ``needs`` (the
symbols and answer fields it cannot run without) and ``run`` (the verdict, computed in the
grader's process from the reference and from raw values the sandbox returned).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from grader.errors import LabError

if TYPE_CHECKING:
    from grader.grading.context import CheckContext
    from grader.results import Outcome


class KindParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CheckKind(ABC):
    name: ClassVar[str]
    Params: ClassVar[type[KindParams]] = KindParams
    summary: ClassVar[str] = ""

    def needs(self, params: Any) -> list[str]:
        """Symbols (``Name``) and answer fields (``answers.path``) this check cannot run without."""
        return []

    @abstractmethod
    def run(self, ctx: "CheckContext", params: Any) -> "Outcome": ...


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
    _load_builtin_kinds()
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise LabError(f"unknown check kind {name!r}; known kinds: {', '.join(sorted(_REGISTRY))}") from None


def registered_kinds() -> dict[str, type[CheckKind]]:
    _load_builtin_kinds()
    return dict(sorted(_REGISTRY.items()))


def _load_builtin_kinds() -> None:
    # Importing the package registers every built-in kind (one module each).
    import grader.checks  # noqa: F401
