"""Benchmarks, run as modules: ``python -m benchmarks.report`` (``make bench``: one table, one results
file) and the detailed ones behind it (``make bench-details``); what they share is in `benchmarks.common`."""
