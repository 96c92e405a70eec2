"""The on-disk record of a run: config, provenance, fold split, weights, predictions, metrics.

Layout of ``<out>/<name>-<key12>/``::

    config.yaml            the full validated RunConfig
    run.json               run key (sha256 of the canonical config), git commit, versions, time
    folds.json             CV scheme, fold per cluster, validation indices per fold
    fold_<k>_m<j>/         weights.pt (+ weights.json network spec), preprocessing.json,
                           history.json (losses per epoch, best epoch)
    predictions.csv        cluster_id, fold, true and out-of-fold log10 M500c, sigma (dex)
    metrics.json           scatter, bias (bootstrap intervals), calibration when sigmas exist

:func:`write_fold` writes one fold as soon as it is done (one Celery task per fold can call
it), :func:`write_run` the rest; :func:`load_fold` reads back what :func:`models.inference.predict`
needs.
"""

from __future__ import annotations

import csv
import datetime as dt
import importlib.metadata
import json
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.config import RunConfig
from models.crossval import CVResult
from models.data import ClusterArrays
from models.errors import CheckpointError
from models.folds import FoldSplit
from models.inference import ModelState
from models.metrics import mass_metrics, residual_summary
from models.preprocessing import Preprocessing
from models.training import FoldResult

__all__ = [
    "run_dir_name",
    "provenance",
    "write_fold",
    "write_run",
    "load_fold",
    "LoadedFold",
    "read_fold_result",
    "run_metrics",
]

_PACKAGES = ("torch", "numpy", "scipy", "astropy", "pydantic", "clustermass")


def run_dir_name(config: RunConfig) -> str:
    """``<name or kind>-<first 12 hex digits of the run key>``."""
    return f"{config.name or config.model.kind}-{config.key()[:12]}"


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def provenance(config: RunConfig) -> dict[str, Any]:
    """Run key, git commit (and whether the tree was dirty), package versions, host, time."""
    versions = {}
    for pkg in _PACKAGES:
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    status = _git("status", "--porcelain")
    return {
        "run_key": config.key(),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "python": platform.python_version(),
        "versions": versions,
        "host": platform.node(),
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def _fold_dir(run_dir: Path, fold: int, member: int) -> Path:
    return run_dir / f"fold_{fold}_m{member}"


def write_fold(run_dir: str | Path, result: FoldResult) -> Path:
    """Write one fold's weights, preprocessing statistics and history; return its folder."""
    d = _fold_dir(Path(run_dir), result.fold, result.member)
    d.mkdir(parents=True, exist_ok=True)
    result.model_state.save(d / "weights.pt")
    result.preprocessing.save(d / "preprocessing.json")
    hist = dict(result.history)
    hist.update(
        seconds=result.seconds, device=result.device, fold=result.fold, member=result.member,
        precision=result.precision,
        # where it ran: a resumed run's folds may come from several machines (a GPU host)
        host=platform.node(), python=platform.python_version(), torch=torch.__version__,
    )  # fmt: skip
    (d / "history.json").write_text(json.dumps(hist, indent=2))
    np.savez(
        d / "split.npz",
        train=result.split.train,
        val=result.split.val,
        test=result.split.test,
        test_prediction=result.test_prediction,
        test_sigma=np.full(result.test_prediction.shape, np.nan)
        if result.test_sigma is None
        else result.test_sigma,
    )
    return d


@dataclass
class LoadedFold:
    """What :func:`models.inference.predict` needs for one fold."""

    fold: int
    member: int
    model_state: ModelState
    preprocessing: Preprocessing


def load_fold(run_dir: str | Path, fold: int, member: int = 0) -> LoadedFold:
    """Read weights and preprocessing of one fold written by :func:`write_fold`."""
    d = _fold_dir(Path(run_dir), fold, member)
    if not d.is_dir():
        raise CheckpointError(f"fold {fold} member {member} not found: {d} does not exist")
    return LoadedFold(
        fold,
        member,
        ModelState.load(d / "weights.pt"),
        Preprocessing.load(d / "preprocessing.json"),
    )


_FOLD_FILES = ("weights.pt", "preprocessing.json", "history.json", "split.npz")


def read_fold_result(run_dir: str | Path, fold: int, member: int = 0) -> FoldResult | None:
    """Read back the :class:`FoldResult` that :func:`write_fold` wrote (None: incomplete).

    A fold folder counts only when all four files are there (``split.npz`` is written last, so
    a fold interrupted while being written is trained again). This is what makes a run
    resumable fold by fold (:func:`models.pipeline.run_training` with ``resume=True``).
    """
    d = _fold_dir(Path(run_dir), fold, member)
    if not all((d / name).is_file() for name in _FOLD_FILES):
        return None
    hist = json.loads((d / "history.json").read_text())
    seconds = float(hist.pop("seconds", 0.0))
    device = str(hist.pop("device", "cpu"))
    precision = str(hist.pop("precision", "fp32"))
    for key in ("fold", "member", "host", "python", "torch"):
        hist.pop(key, None)
    with np.load(d / "split.npz", allow_pickle=False) as z:
        sigma = z["test_sigma"]
        split = FoldSplit(fold, z["train"], z["val"], z["test"])
        prediction = z["test_prediction"]
    return FoldResult(
        fold=fold,
        member=member,
        split=split,
        preprocessing=Preprocessing.load(d / "preprocessing.json"),
        model_state=ModelState.load(d / "weights.pt"),
        test_prediction=prediction,
        test_sigma=None if np.all(np.isnan(sigma)) else sigma,
        history=hist,
        seconds=seconds,
        device=device,
        precision=precision,
    )


def run_metrics(
    result: CVResult,
    arrays: ClusterArrays,
    *,
    n_boot: int = 1000,
    level: float = 0.68,
    seed: int = 0,
) -> dict[str, Any]:
    """Scatter and bias with bootstrap intervals, plus calibration when sigmas exist."""
    true = arrays.require_labels()
    snap = arrays.snapshot if arrays.snapshot is not None else np.zeros(len(arrays), int)
    metrics = mass_metrics(
        result.prediction, true, snap, result.sigma, n_boot=n_boot, level=level, seed=seed
    )
    out: dict[str, Any] = {"n_clusters": metrics.pop("n"), **metrics}
    ok = np.isfinite(result.prediction)
    out["per_fold"] = {
        int(f): residual_summary(
            result.prediction[ok & (result.folds == f)], true[ok & (result.folds == f)]
        )
        for f in np.unique(result.folds[ok])
    }
    return out


def write_run(
    out_dir: str | Path,
    result: CVResult,
    arrays: ClusterArrays,
    *,
    metrics: dict[str, Any] | None = None,
    write_folds: bool = True,
) -> Path:
    """Write the whole run record under ``out_dir/<name>-<key12>/``; return that folder.

    Parameters
    ----------
    out_dir : path
        Parent directory.
    result : CVResult
        The cross-validated run.
    arrays : ClusterArrays
        The clusters it was trained on (labels and ids for ``predictions.csv``).
    metrics : dict, optional
        Precomputed metrics (default :func:`run_metrics` with 1000 bootstrap resamples).
    write_folds : bool
        Also write every fold (False when :func:`write_fold` already did).
    """
    run_dir = Path(out_dir) / run_dir_name(result.config)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = result.config
    (run_dir / "config.yaml").write_text(cfg.to_yaml())
    prov = provenance(cfg)
    prov["devices"] = sorted({r.device for r in result.fold_results})
    prov["precisions"] = sorted({r.precision for r in result.fold_results})
    prov["seconds"] = float(sum(r.seconds for r in result.fold_results))
    (run_dir / "run.json").write_text(json.dumps(prov, indent=2))
    val = {f"{r.fold}": r.split.val.tolist() for r in result.fold_results if r.member == 0}
    (run_dir / "folds.json").write_text(
        json.dumps(
            {
                "scheme": cfg.cv.scheme,
                "box_size": cfg.cv.box_size,
                "fold": result.folds.tolist(),
                "validation_index": val,
            }
        )
    )
    if write_folds:
        for r in result.fold_results:
            write_fold(run_dir, r)
    true = arrays.require_labels()
    ids = arrays.cluster_id if arrays.cluster_id is not None else np.arange(len(arrays))
    with (run_dir / "predictions.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["cluster_id", "fold", "log10_m500c_true", "log10_m500c_pred", "sigma_dex"])
        for i in range(len(arrays)):
            s = "" if result.sigma is None else f"{result.sigma[i]:.6f}"
            w.writerow(
                [ids[i], int(result.folds[i]), f"{true[i]:.6f}", f"{result.prediction[i]:.6f}", s]
            )
    if metrics is None:
        metrics = run_metrics(result, arrays)
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return run_dir
