"""Backends for benchmarks only: they run no program and isolate nothing.

Never installed by the wheel, never chosen by ``auto``, never listed by ``doctor`` or the CLI,
and refused unless ``CRUCIBLE_BENCHMARK_ONLY=1`` is set in the process that would use them.
"""
