"""Benchmarks of the pipeline and of its stages (issue 6)."""
