"""Where a hand-in's files really are: students zip their folder, hand in the folder that holds
it, or their files sit one or two folders deep (``lab2/convnet.py``, ``Kim Park/lab2/…``).

The hand-in is searched to two folders deep, after archives inside it are unpacked (a folder
holding ``lab2.zip``), with macOS litter already dropped by the readers. The module's folder is
the shallowest one holding the lab's module by name, else a notebook, else a ``.py`` file; two
candidates at the same depth are not guessed between: the message lists them. The answer sheet is
looked for in that folder, then in the folders above it. A hand-in with none of these has nothing
to grade (``NothingToGrade``), which the batch reports as a warning and in its exit status.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from grader.errors import NothingToGrade, SubmissionError
from grader.intake.archives import ArchiveRefused, is_archive, unpack_archive
from grader.intake.reader import HandIn, printable
from grader.lab.manifest import IntakeLimits, InterfaceSpec

MAX_DEPTH = 2


@dataclass
class Located:
    """A hand-in rebased on the folder that holds the student's work."""

    handin: HandIn
    root: str = ""                       # "" or "lab2/": where the work was found
    module: str | None = None            # the module's file (in the rebased hand-in)
    notebook: str | None = None          # else the notebook the module is built from
    sheet: str | None = None             # the answer sheet's name in the original hand-in, if any
    sheet_data: bytes | None = None
    problem: str | None = None           # why no module was chosen (several candidates …)
    notes: list[str] = field(default_factory=list)


def _folder(name: str) -> str:
    return name.rsplit("/", 1)[0] + "/" if "/" in name else ""


def _depth(folder: str) -> int:
    return folder.count("/")


def expand_archives(handin: HandIn, limits: IntakeLimits) -> list[str]:
    """Unpack each archive found in the hand-in (to two folders deep) into the folder that holds
    it; an archive inside an archive stays packed. Returns why each refused archive was refused
    (also noted on the hand-in)."""
    refusals = []
    for name in sorted(n for n in handin.files if is_archive(n) and _depth(_folder(n)) <= MAX_DEPTH):
        data = handin.files.pop(name)
        label = printable(name)
        unpacked = HandIn(source=handin.source)
        try:
            unpack_archive(data, label, limits, into=unpacked)
        except ArchiveRefused as exc:
            refusals.append(str(exc))
            handin.notes.append(str(exc))
            continue
        prefix = _folder(name)
        clashes = []
        for inner, content in unpacked.files.items():
            target = prefix + inner
            if target in handin.files:
                clashes.append(printable(target))
                continue
            handin.files[target] = content
        handin.notes += unpacked.notes
        handin.notes.append(f"{label} was unpacked ({len(unpacked.files)} files)" +
                            (f"; kept the files already beside it: {', '.join(clashes[:5])}" if clashes else ""))
        if sum(len(d) for d in handin.files.values()) > limits.max_total_mb * 1024 * 1024:
            raise ArchiveRefused(f"{label} was not unpacked: with the rest of the hand-in it is more than "
                                 f"{limits.max_total_mb:g} MB")
    return refusals


def _candidates(handin: HandIn, interface: InterfaceSpec) -> list[tuple[int, int, str]]:
    """(priority, depth, folder) for each folder that could hold the module: by the module's own
    name first, then a notebook, then any .py file."""
    found: dict[str, int] = {}
    for name in handin.files:
        folder = _folder(name)
        if _depth(folder) > MAX_DEPTH:
            continue
        base = name.rsplit("/", 1)[-1]
        priority = 0 if base == interface.module else 1 if base.endswith(".ipynb") else 2 if base.endswith(".py") else None
        if priority is not None:
            found[folder] = min(found.get(folder, 9), priority)
    return sorted((p, _depth(f), f) for f, p in found.items())


def _what_is_there(handin: HandIn) -> str:
    names = sorted(handin.files)
    if not names:
        return "it is empty"
    shown = ", ".join(printable(n) for n in names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return f"found: {shown}"


def locate(handin: HandIn, interface: InterfaceSpec, limits: IntakeLimits = IntakeLimits()) -> Located:
    """Find the student's work in a hand-in read into memory (see the module's docstring)."""
    refusals = [] if handin.single_file else expand_archives(handin, limits)
    candidates = _candidates(handin, interface)
    sheets = sorted((_depth(_folder(n)), n) for n in handin.files
                    if n.rsplit("/", 1)[-1] == interface.answers_file and _depth(_folder(n)) <= MAX_DEPTH)
    if not candidates and not sheets:
        if refusals and not handin.files:
            raise ArchiveRefused(refusals[0])
        wanted = (f"{interface.module}, no notebook (.ipynb) and no {interface.answers_file}" if interface.answers
                  else f"{interface.module} and no notebook (.ipynb)")
        raise NothingToGrade(f"nothing to grade: no {wanted} in the hand-in ({_what_is_there(handin)})"
                             + (f"; {refusals[0]}" if refusals else ""))
    if candidates:
        best_priority, best_depth, root = candidates[0]
        rivals = [f for p, d, f in candidates if (p, d) == (best_priority, best_depth)]
        if len(rivals) > 1:
            what = {0: interface.module, 1: "a notebook", 2: "a .py file"}[best_priority]
            listed = ", ".join(printable(f or "./") for f in rivals)
            raise SubmissionError(f"two candidate hand-ins, each holding {what}: {listed}; hand in one of them")
    else:
        root = _folder(sheets[0][1])
    located = Located(handin=_rebased(handin, root), root=root)
    if root:
        located.notes.append(f"your work was found in {printable(root)}")
    files = located.handin.files
    top = sorted(n for n in files if "/" not in n)
    notebooks = [n for n in top if n.endswith(".ipynb")]
    scripts = [n for n in top if n.endswith(".py")]
    if interface.module in files:
        located.module = interface.module
        located.notes += [f"{printable(n)} was not graded: {interface.module} was" for n in notebooks]
    elif len(notebooks) == 1 or f"{interface.module[:-3]}.ipynb" in notebooks:
        located.notebook = notebooks[0] if len(notebooks) == 1 else f"{interface.module[:-3]}.ipynb"
    elif notebooks:
        located.problem = (f"no {interface.module}, and several notebooks ({', '.join(map(printable, notebooks))}): "
                           f"hand in one, or name it {interface.module[:-3]}.ipynb")
    elif len(scripts) == 1:
        located.module = scripts[0]
    else:
        found = f" (found: {', '.join(map(printable, scripts))})" if scripts else " (no .py file found)"
        located.problem = f"no {interface.module} in the submission{found}"
    located.sheet = _sheet(handin, root, interface.answers_file)
    located.sheet_data = handin.files.get(located.sheet) if located.sheet else None
    return located


def _sheet(handin: HandIn, root: str, sheet: str) -> str | None:
    """The answer sheet beside the module, else in a folder above it: its name in the hand-in."""
    folder = root
    while True:
        if folder + sheet in handin.files:
            return folder + sheet
        if not folder:
            return None
        folder = _folder(folder.rstrip("/"))


def _rebased(handin: HandIn, root: str) -> HandIn:
    """The hand-in's files under ``root``, named relative to it (what a child is given)."""
    if not root:
        return handin
    files = {n[len(root):]: d for n, d in handin.files.items() if n.startswith(root)}
    return HandIn(source=handin.source, files=files, notes=list(handin.notes), single_file=handin.single_file)
