"""Errors of the benchmark runner (one line each, naming the option and the valid choices)."""

from __future__ import annotations

__all__ = ["BenchmarkError"]


class BenchmarkError(ValueError):
    """A benchmark run cannot start: a bad option, a missing device, a report it would clobber."""
