"""Benchmarks of terse against the reference implementation and simple baselines (run with `python -m bench.X`)."""
