"""Benchmarks: `make bench` (or `python -m bench`) runs them all and prints a table each."""
