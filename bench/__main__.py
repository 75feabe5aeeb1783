"""Run every benchmark and print its table."""

from rich.console import Console

from bench import sandbox_overhead

console = Console()
console.print(sandbox_overhead.main())
