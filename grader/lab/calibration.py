"""Which calibration a training check reads: thresholds are tied to the data they were measured on.

A threshold is a fraction of what the lab's reference reaches on one data set under one budget.
On the bundled data (generated, linearly hard, small) the reference reaches other accuracies than
on the real CIFAR-10 an instructor points ``--data-root`` at, so a threshold measured on one says
nothing about the other. ``gradelab calibrate`` therefore records the identity of the data it
trained on beside each entry, and a run reads only an entry measured on its own data: the
bundled data's entry (the budget's own), or one under ``other_data`` keyed by the data's digest.
A run on data no calibration was measured on is refused with the one command that calibrates it,
rather than graded against a number that means something else.

The identity of the bundled data is ``bundled``, not its bytes: a generated set may differ in a
last bit of rounding from one machine to another, and the lab's calibration travels with the lab.
What identifies generated data is its generator's style and version (``generator:``, e.g.
``colour-axes/1``, declared by the lab's data function): an entry measured on another version is
stale and refused like other data. Entries written before versions existed were measured on the
first generator, ``gratings/1``.
Data from ``--data-root`` is identified by a digest of the arrays the check trains and tests on
(after the budget's sizes are applied); data a root holds that equals the bundled set is the
bundled set.
"""

from __future__ import annotations

import hashlib
from typing import Any

from grader.errors import LabError

BUNDLED = "bundled"
OTHER_DATA = "other_data"
LEGACY_GENERATOR = "gratings/1"
_ARRAYS = ("train_x", "train_y", "test_x", "test_y")


def digest(data: dict[str, Any]) -> str:
    """``sha256:`` and the first 16 hex digits of the digest of a data set's arrays (dtype, shape
    and bytes of each of train_x, train_y, test_x, test_y)."""
    import numpy as np

    h = hashlib.sha256()
    for name in _ARRAYS:
        a = np.ascontiguousarray(np.asarray(data[name]))
        h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return f"sha256:{h.hexdigest()[:16]}"


def entry_for(calibration: dict[str, Any], *, lab: str, check: str, budget: str | None, data: str,
              data_root: str | None, generator: str | None = None, seed: int | None = None) -> dict[str, Any]:
    """The calibration entry of ``check`` under ``budget`` measured on the data ``data`` (an identity
    from ``Run.data_identity``; ``generator`` the bundled data's generator when the lab generates
    it); ``{}`` when the check was never calibrated under that budget (the manifest's thresholds
    apply). Raises ``LabError`` when it was calibrated, but on other data or another generator's,
    or (``seed``: the seed this run trains with) under one other seed only (``seed_problem``)."""
    entry = calibration.get(check, {}).get(budget or "default", {})
    if not isinstance(entry, dict):
        return {}
    found = _entry_for(entry, lab=lab, check=check, budget=budget, data=data, data_root=data_root, generator=generator)
    problem = seed_problem(found, seed)
    if problem:
        budget_flag = f" --budget {budget}" if budget else ""
        raise LabError(f"{check}: {problem}. Grade with --seed {found['seed']}, or calibrate under both first: "
                       f"gradelab calibrate {lab}{budget_flag} --seed {found['seed']} --seed {seed}")
    return found


def seed_problem(entry: dict[str, Any], seed: int | None) -> str | None:
    """Why a threshold measured under one seed cannot judge a run under another, or ``None``.

    Under one seed a threshold says nothing about another draw of weights and batches: on
    cifar-training's cpu budget the reference's baseline reaches 59 % under seed 0 and 33 % under
    seed 2, so seed 0's threshold (39 %) would fail a correct hand-in trained under seed 2. A
    calibration under several seeds sets each threshold from the worst of them and judges any seed;
    one that does not tell learning from chance (``discriminates: false``) fails no one by the draw."""
    if seed is None or "threshold" not in entry or entry.get("seeds") or not entry.get("discriminates", True):
        return None
    calibrated = entry.get("seed")
    if not isinstance(calibrated, int) or calibrated == seed:
        return None
    return (f"the thresholds of this budget were calibrated under seed {calibrated} only, and this run trains under "
            f"seed {seed}: under one seed a threshold says nothing about another draw of weights and batches")


def _entry_for(entry: dict[str, Any], *, lab: str, check: str, budget: str | None, data: str,
               data_root: str | None, generator: str | None) -> dict[str, Any]:
    if data == BUNDLED:
        own = {k: v for k, v in entry.items() if k != OTHER_DATA}
        recorded = own.get("generator", LEGACY_GENERATOR)
        if generator and "threshold" in own and recorded != generator:
            budget_flag = f" --budget {budget}" if budget else ""
            raise LabError(
                f"{check}: the thresholds of the {budget or 'default'} budget were calibrated on the bundled data of "
                f"generator {recorded}, and the lab now generates {generator}: a threshold measured on one data set "
                f"says nothing about another. Calibrate again: gradelab calibrate {lab}{budget_flag}")
        return own
    other = entry.get(OTHER_DATA, {})
    if isinstance(other, dict) and isinstance(other.get(data), dict):
        return other[data]
    measured = [k for k, v in (other.items() if isinstance(other, dict) else []) if isinstance(v, dict)]
    if "threshold" in entry or "max_level_ratio" in entry or measured:
        on = "the lab's bundled data" + (f" and on {', '.join(measured)}" if measured else "")
        budget_flag = f" --budget {budget}" if budget else ""
        raise LabError(
            f"{check}: the thresholds of the {budget or 'default'} budget were calibrated on {on}, and this run "
            f"trains on other data ({data}, from --data-root {data_root}); a threshold measured on one data set "
            f"says nothing about another. Calibrate on this data first: "
            f"gradelab calibrate {lab}{budget_flag} --data-root {data_root}")
    return {}


def generator_of(reference: Any, function: str) -> str | None:
    """The generator (style/version) of the data the lab's ``function`` makes when no --data-root
    is given, as that function declares it (``fn.generator``); ``None`` for shipped data."""
    value = getattr(getattr(reference, function, None), "generator", None)
    return value if isinstance(value, str) else None


def store(data: dict[str, Any], check: str, budget: str, identity: str, entry: dict[str, Any]) -> None:
    """Write ``entry`` into a calibration mapping as measured on ``identity``: the budget's own entry
    for the bundled data (keeping what was measured on other data), else under ``other_data``."""
    budgets = data.setdefault(check, {})
    current = budgets.get(budget) if isinstance(budgets.get(budget), dict) else {}
    if identity == BUNDLED:
        kept = {OTHER_DATA: current[OTHER_DATA]} if OTHER_DATA in current else {}
        budgets[budget] = {**entry, "data": BUNDLED, **kept}
    else:
        budgets[budget] = {**current, OTHER_DATA: {**current.get(OTHER_DATA, {}), identity: {**entry, "data": identity}}}


def stored(data: dict[str, Any], check: str, budget: str, identity: str) -> dict[str, Any]:
    """The entry ``store`` wrote for ``identity`` (to add what a check's kind measures beside it)."""
    entry = data[check][budget]
    return entry if identity == BUNDLED else entry[OTHER_DATA][identity]
