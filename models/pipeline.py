"""End-to-end library calls behind ``clustermass train`` and ``clustermass benchmark``.

:func:`run_training` cross-validates one network and writes its run directory;
:func:`run_benchmark` does that for each requested network, adds the scalar-proxy baselines and
the hidden-truth regression ("oracle", not a floor), and writes the table (CSV, Markdown) and the figure (PNG).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.comparison import (
    CNN_LABELS,
    benchmark_figure,
    benchmark_table,
    estimator_label,
    table_markdown,
    write_table_csv,
)
from models.config import RunConfig
from models.crossval import CVResult, cross_validate
from models.data import ClusterArrays
from models.errors import DataError
from models.folds import make_folds
from models.oracle import oracle_label, oracle_predictions
from models.registry import NetworkName
from models.runio import read_fold_result, run_dir_name, run_metrics, write_fold, write_run
from models.training import FoldResult, TrainProgress

__all__ = [
    "CNN_LABELS",
    "DEFAULT_ENSEMBLE",
    "split_estimator",
    "run_training",
    "run_benchmark",
    "BenchmarkResult",
]

log = logging.getLogger(__name__)

#: Members per fold of a ``<kind>_ensemble`` estimator when its config does not say.
DEFAULT_ENSEMBLE = 3


def split_estimator(name: str) -> tuple[NetworkName, bool]:
    """``"single"`` -> ``("single", False)``; ``"multi_ensemble"`` -> ``("multi", True)``.

    Raises
    ------
    DataError
        ``name`` is neither a network kind nor ``<kind>_ensemble``.
    """
    kind, ensemble = name, False
    if name.endswith("_ensemble"):
        kind, ensemble = name[: -len("_ensemble")], True
    if kind not in CNN_LABELS:
        raise DataError(
            f"estimator {name!r}: expected one of {sorted(CNN_LABELS)} or <kind>_ensemble"
        )
    return kind, ensemble  # type: ignore[return-value]


def _finished_folds(
    run_dir: Path, config: RunConfig, out_dir: str | Path
) -> Callable[[int, int], FoldResult | None]:
    """Return ``done(fold, member)`` of a resumed run: the folds it finished.

    For an ensemble (``config.ensemble > 1``) member 0 of a fold also comes from the single run
    of the same settings in ``out_dir`` when the ensemble lacks it.

    Member 0 has the single run's seed (:func:`models.runtime.member_seed` of the same seed,
    fold and member), split and settings: the same network, trained once. It is copied into
    the ensemble's directory so that the ensemble's record stands alone.
    """
    single = None
    if config.ensemble > 1:
        single = Path(out_dir) / run_dir_name(config.model_copy(update={"ensemble": 1}))

    def done(fold: int, member: int) -> FoldResult | None:
        found = read_fold_result(run_dir, fold, member)
        if found is None and member == 0 and single is not None:
            found = read_fold_result(single, fold, 0)
            if found is not None:
                log.info("fold %d member 0: taken from the single run %s", fold, single.name)
                write_fold(run_dir, found)
        return found

    return done


def run_training(
    arrays: ClusterArrays,
    config: RunConfig,
    out_dir: str | Path,
    *,
    progress: Callable[[TrainProgress], None] | None = None,
    device: str | torch.device | None = None,
    n_boot: int = 1000,
    resume: bool = False,
) -> tuple[Path, CVResult, dict[str, Any]]:
    """Cross-validate ``config`` on ``arrays`` and write the run under ``out_dir``.

    Each fold is written as soon as it finishes; the run record (config, provenance, split,
    predictions, metrics) at the end. With ``resume=True`` the folds already complete in the
    run directory (same config key, so same settings) are read back instead of trained: a long
    run (the paper-size multimodal network on a CPU) can be completed over several sittings, or
    its folds trained on another machine (a GPU host) and assembled here.

    Returns
    -------
    run_dir : Path
        ``out_dir/<name>-<key12>``.
    result : CVResult
        Out-of-fold predictions and fold results.
    metrics : dict
        What ``metrics.json`` holds.
    """
    run_dir = Path(out_dir) / run_dir_name(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    result = cross_validate(
        arrays,
        config,
        progress=progress,
        on_fold=lambda r: write_fold(run_dir, r),
        device=device,
        done=_finished_folds(run_dir, config, out_dir) if resume else None,
    )
    metrics = run_metrics(result, arrays, n_boot=n_boot, seed=config.training.seed)
    write_run(out_dir, result, arrays, metrics=metrics, write_folds=False)
    return run_dir, result, metrics


@dataclass
class BenchmarkResult:
    """Outputs of :func:`run_benchmark`."""

    rows: list[dict[str, Any]]
    table_csv: Path
    table_md: Path
    figure: Path
    run_dirs: dict[str, Path] = field(default_factory=dict)
    predictions: dict[str, np.ndarray] = field(default_factory=dict)


def run_benchmark(
    arrays: ClusterArrays,
    out_dir: str | Path,
    *,
    configs: Mapping[str, RunConfig] | None = None,
    models: Sequence[str] = ("single", "multi", "multimodal"),
    oracle_columns: Sequence[str] | None = None,
    n_boot: int = 1000,
    level: float = 0.68,
    seed: int = 0,
    progress: Callable[[str, TrainProgress], None] | None = None,
    device: str | torch.device | None = None,
    resume: bool = False,
) -> BenchmarkResult:
    """Train the networks, fit the baselines and the oracle, and write the table and figure.

    Parameters
    ----------
    arrays : ClusterArrays
        The catalogue (count maps, labels, positions, snapshots, scalars, galaxies).
    out_dir : path
        Output folder: one run directory per network, ``benchmark.csv``, ``benchmark.md``,
        ``benchmark.png`` and ``benchmark.json``.
    configs : mapping of estimator name to RunConfig, optional
        Per-estimator configs (default: the paper's, :meth:`RunConfig.from_config`; an
        ensemble's default is the paper's with ``ensemble: 3``).
    models : sequence of str
        Estimators to train: a network kind ("single", "multi", "multimodal") or a fold
        ensemble of one, ``<kind>_ensemble`` (several seeds per fold, their mean; the row is
        labelled ``<network label> (fold ensemble)``).
    oracle_columns : sequence of str, optional
        Hidden-truth features of the oracle (default ``models.oracle.DEFAULT_ORACLE_FEATURES``).
    n_boot, level, seed
        Bootstrap settings of every table entry.
    progress : callable, optional
        ``progress(kind, TrainProgress)``.
    device : str or torch.device, optional
        Overrides every config's ``training.device``.
    resume : bool
        Read back the folds already complete under ``out_dir`` (:func:`run_training`).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    configs = dict(configs or {})
    predictions: dict[str, np.ndarray] = {}
    run_dirs: dict[str, Path] = {}
    folds = None
    for name in models:
        kind, ensemble = split_estimator(name)
        default = {"ensemble": DEFAULT_ENSEMBLE} if ensemble else {}
        cfg = configs.get(name) or RunConfig.from_config(model={"kind": kind}, **default)
        if cfg.model.kind != kind:
            raise DataError(f"configs[{name!r}] is a {cfg.model.kind!r} network")
        if ensemble and cfg.ensemble < 2:
            raise DataError(
                f"configs[{name!r}] has ensemble: {cfg.ensemble}; a fold ensemble needs at "
                "least 2 members per fold (the issue asks for >= 3)"
            )
        cb = None if progress is None else (lambda p, k=name: progress(k, p))
        run_dir, result, _ = run_training(
            arrays, cfg, out, progress=cb, device=device, n_boot=n_boot, resume=resume
        )
        predictions[estimator_label(name)] = result.prediction
        run_dirs[name] = run_dir
        folds = result.folds
    if folds is None:
        first = next(iter(configs.values()), None) or RunConfig.from_config(
            model={"kind": "single"}
        )
        folds = make_folds(arrays, first.cv.scheme, first.cv.box_size)
    oracle = None
    try:
        oracle = oracle_predictions(arrays, folds, columns=oracle_columns)
    except DataError as exc:
        log.warning("benchmark: no oracle row: %s", exc)
    label = oracle_label(arrays, oracle_columns)
    rows = benchmark_table(
        arrays,
        predictions,
        oracle=oracle,
        oracle_label=label,
        n_boot=n_boot,
        level=level,
        seed=seed,
    )
    csv_path = write_table_csv(rows, out / "benchmark.csv")
    md_path = out / "benchmark.md"
    md_path.write_text(table_markdown(rows))
    (out / "benchmark.json").write_text(
        json.dumps({"rows": rows, "runs": {k: str(v) for k, v in run_dirs.items()}}, indent=2)
    )
    figure_preds = dict(predictions)
    if oracle is not None:
        figure_preds[label] = oracle
    fig = benchmark_figure(
        arrays.require_labels(), figure_preds, arrays.redshift, out / "benchmark.png"
    )
    return BenchmarkResult(rows, csv_path, md_path, fig, run_dirs, predictions)
