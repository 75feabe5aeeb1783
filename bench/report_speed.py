"""Seconds per PDF report, in one long-lived renderer (fonts and CSS loaded once).

Which font subsetter WeasyPrint uses matters most: HarfBuzz's (Debian's libharfbuzz-subset0)
or the much slower fontTools fallback. The table says which one ran.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]


def main(repeat: int = 5) -> Table:
    from weasyprint.text.ffi import harfbuzz_subset

    from grader import api
    from grader.lab.manifest import LimitsOverride
    from grader.options import RunOptions
    from grader.report import ReportRenderer

    lab = api.load_lab("cifar-convnet")
    subs = ROOT / "submissions" / "cifar-convnet"
    with tempfile.TemporaryDirectory() as tmp:
        batch = api.grade(subs, lab, Path(tmp) / "results", RunOptions(limits=LimitsOverride(wall_s=3), reports=False),
                          paths=[subs / "correct", subs / "in-channels-confusion", subs / "syntax-error"])
        started = time.perf_counter()
        r = ReportRenderer()
        init = time.perf_counter() - started
        table = Table(title="Report rendering (one renderer, A4 PDF)")
        table.add_column("report")
        table.add_column("pages", justify="right")
        table.add_column("median s", justify="right")
        table.add_column("min s", justify="right")
        table.add_row("renderer start (once per process)", "", f"{init:.3f}", f"{init:.3f}")
        for result in batch.results:
            path = Path(tmp) / f"{result.submission}.pdf"
            times = []
            for _ in range(repeat):
                t = time.perf_counter()
                r.write(result, path)
                times.append(time.perf_counter() - t)
            from pypdf import PdfReader

            table.add_row(result.submission, str(len(PdfReader(path).pages)),
                          f"{statistics.median(times):.3f}", f"{min(times):.3f}")
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            r.write_class(batch.results, lab.manifest.title, Path(tmp) / "class.pdf")
            times.append(time.perf_counter() - t)
        table.add_row("class summary (with histogram)", "", f"{statistics.median(times):.3f}", f"{min(times):.3f}")
    table.caption = "font subsetting: " + ("HarfBuzz (libharfbuzz-subset0)" if harfbuzz_subset else
                                           "fontTools fallback (apt-get install libharfbuzz-subset0 for ~3× faster)")
    return table


if __name__ == "__main__":
    from rich.console import Console

    Console().print(main())
