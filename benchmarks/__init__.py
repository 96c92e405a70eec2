"""Benchmarks of clustermass: one runner (``python -m benchmarks``) and one script per benchmark.

* ``bench_mocks`` – mock generation, clusters/s per core, vs a naive per-pixel renderer;
* ``bench_ingest`` – ingestion of a mock catalogue vs a raw ``COPY`` of the same rows;
* ``bench_train_step`` – train-step images/s of the single-band CNN vs the authors' Keras;
* ``bench_inference`` – inference maps/s by batch size and memory format vs batch 1 NCHW;
* ``bench_scatter_query`` – results-SQL scatter latency over 1e6 predictions vs three baselines.

Each script runs on its own (``python benchmarks/bench_mocks.py --help``) and exposes
``measure(...) -> dict``; :mod:`benchmarks.runner` runs them all and :mod:`benchmarks.report`
writes ``docs/benchmarks.md``. Nothing here is imported at package import (the scripts set
thread variables before numpy and torch load).
"""
