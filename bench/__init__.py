"""Benchmarks: `python -m bench.<name> [--quick]`; each measures its baseline in the same run."""
