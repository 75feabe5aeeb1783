"""Run every benchmark and print its table."""

import logging

from rich.console import Console

from bench import (
    lab_speed,
    report_speed,
    sandbox_overhead,
    scale,
    serve_load,
    similarity,
    startup,
    training,
    verdicts,
    vgg,
)

logging.getLogger("weasyprint").setLevel(logging.ERROR)
console = Console()
console.print(startup.main())
console.print(sandbox_overhead.main())
console.print(report_speed.main())
for table in lab_speed.main():
    console.print(table)
for table in scale.main(scale.ROOT / "bench" / "gpu-times.json"):
    console.print(table)
for table in training.main():
    console.print(table)
for table in vgg.main():
    console.print(table)
for table in verdicts.main():
    console.print(table)
console.print(serve_load.main())
console.print(similarity.main())
