"""Benchmarks (`make bench`): each bench_*.py writes one JSON file; none is a timed test."""
