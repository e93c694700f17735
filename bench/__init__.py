"""Benchmarks: figures, not pass/fail. Run with `make bench`."""
