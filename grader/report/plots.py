"""Figures for reports, drawn with matplotlib's object API on the Agg canvas (thread-safe, no
pyplot state) and embedded as PNG: SVG is several times slower to lay out in WeasyPrint."""

from __future__ import annotations

import base64
import functools
import io
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

_STYLE = {"train": "-", "test": "-", "reference": "--"}
_COLOURS = {"train": "#1f77b4", "test": "#d62728", "reference": "#7f7f7f"}


_MEMO_SIZE = 32
_memo: OrderedDict[str, str] = OrderedDict()
_memo_lock = threading.Lock()


def _remembered(draw: Callable[..., str]) -> Callable[..., str]:
    """The same figure is asked for again and again: a report's HTML and its PDF, the student's
    report and the instructor's (which show the same curves), at a third of a second each. The
    last few figures are kept, by what they were drawn from."""
    @functools.wraps(draw)
    def remembered(*args: Any) -> str:
        key = draw.__name__ + json.dumps(args, sort_keys=True, default=repr)
        with _memo_lock:
            if key in _memo:
                _memo.move_to_end(key)
                return _memo[key]
        uri = draw(*args)
        with _memo_lock:
            _memo[key] = uri
            while len(_memo) > _MEMO_SIZE:
                _memo.popitem(last=False)
        return uri
    return remembered


def _data_uri(fig: Figure) -> str:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _finite(values: list[Any]) -> tuple[list[float], int | None]:
    """Values as floats with NaN for anything not finite (results carry inf as "inf"), and the
    index of the first such value: a diverged run is drawn up to where it broke, then marked."""
    out, first_bad = [], None
    for i, v in enumerate(values):
        try:
            f = float(v)
        except (TypeError, ValueError):
            f = math.nan
        if not math.isfinite(f):
            first_bad = i if first_bad is None else first_bad
            f = math.nan
        out.append(f)
    return out, first_bad


@_remembered
def curves_png(title: str, panels: dict[str, dict[str, Any]]) -> str:
    """One panel per metric (loss, accuracy …); each panel maps series name → per-epoch values,
    with an optional ``threshold`` drawn as a horizontal line. A panel's ``steps`` (a list) gives
    the training step of each value instead, for series measured at steps rather than epochs."""
    fig = Figure(figsize=(7.2, 2.6), layout="constrained")
    axes = fig.subplots(1, max(1, len(panels)), squeeze=False)[0]
    for ax, (metric, series) in zip(axes, panels.items()):
        steps = series.get("steps") if isinstance(series.get("steps"), list) else None
        unit = "step" if steps else "epoch"
        for name, raw in series.items():
            if name in ("threshold", "steps") or not isinstance(raw, list):
                continue
            values, bad = _finite(raw)
            xs = steps if steps and len(steps) == len(values) else list(range(1, len(values) + 1))
            ax.plot(xs, values, _STYLE.get(name, "-"), label=name,
                    color=_COLOURS.get(name), linewidth=1.6, marker="o" if len(values) < 12 else None, markersize=3)
            if bad is not None:
                ax.axvline(xs[bad], color=_COLOURS.get(name, "#444444"), linestyle="--", linewidth=1)
                ax.annotate(f"{name}: not finite from {unit} {xs[bad]}", xy=(0.02, 0.92), xycoords="axes fraction",
                            fontsize=7, color="#b22222")
        if isinstance(series.get("threshold"), (int, float)):
            ax.axhline(series["threshold"], color="#2ca02c", linestyle=":", linewidth=1.4, label="threshold")
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel(unit, fontsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
        longest = max((len(v) for k, v in series.items() if isinstance(v, list) and k != "steps"), default=0)
        if steps and len(steps) <= 12:
            ax.set_xticks(steps)
        elif 0 < longest <= 12:
            ax.set_xticks(range(1, longest + 1))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=10)
    return _data_uri(fig)


_BAND_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd")  # matplotlib's own cycle, as in the curves


@_remembered
def bands_png(title: str, panels: dict[str, dict[str, Any]], xlabel: str = "step") -> str:
    """Side-by-side panels (the student's models, the reference's), each filling, for every model,
    the area between its per-step ``low`` and ``high`` curves: the loss-landscape figure of
    Santurkar et al. and the courses that follow them. Panels share their y axis so the bands
    compare at a glance; a step where a band is not finite is left blank."""
    fig = Figure(figsize=(7.2, 2.8), layout="constrained")
    axes = fig.subplots(1, max(1, len(panels)), squeeze=False, sharey=True)[0]
    for ax, (panel, models) in zip(axes, panels.items()):
        for colour, (name, band) in zip(_BAND_COLOURS, models.items() if isinstance(models, dict) else []):
            if not isinstance(band, dict):
                continue
            low, _ = _finite(band.get("low") or [])
            high, _ = _finite(band.get("high") or [])
            steps = range(1, min(len(low), len(high)) + 1)
            ax.fill_between(steps, low[:len(steps)], high[:len(steps)], color=colour, alpha=0.35, linewidth=0,
                            label=name)
            ax.plot(steps, high[:len(steps)], color=colour, linewidth=0.8)
            ax.plot(steps, low[:len(steps)], color=colour, linewidth=0.8)
        ax.set_title(panel, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, frameon=False)
    axes[0].set_ylabel("training loss", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return _data_uri(fig)


def histogram_png(percents: list[float], title: str = "Score distribution") -> str:
    fig = Figure(figsize=(6.4, 2.4))
    ax = fig.subplots()
    ax.hist(percents, bins=list(range(0, 101, 10)), color="#4c72b0", edgecolor="white")
    ax.set_xlim(0, 100)
    ax.set_xlabel("score (%)", fontsize=8)
    ax.set_ylabel("submissions", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title(title, fontsize=9)
    ax.yaxis.get_major_locator().set_params(integer=True)  # type: ignore[call-arg]  # MaxNLocator takes it; the stub types the base Locator
    return _data_uri(fig)
