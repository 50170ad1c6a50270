"""Benchmarks: side-by-side measurements, written to bench/results.md (`make bench`)."""
