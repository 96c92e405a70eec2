"""Cross-validated training: every fold (and ensemble member), out-of-fold predictions.

This is the in-process orchestration; the service layer may instead run one
:func:`models.training.train_fold` per Celery task and assemble the results with
:func:`assemble`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from models.config import KDEConfig, RunConfig
from models.data import ClusterArrays
from models.errors import DataError, ModelConfigError
from models.folds import make_folds
from models.kde import kde_cubes
from models.registry import network_class
from models.training import FoldResult, ProgressCallback, train_fold
from models.uncertainty import combine_ensemble

__all__ = ["CVResult", "cross_validate", "assemble", "ensure_kde"]

log = logging.getLogger(__name__)


@dataclass
class CVResult:
    """Out-of-fold predictions of a cross-validated run.

    Attributes
    ----------
    config : RunConfig
        The run's configuration.
    folds : ndarray of int, shape (N,)
        Fold of each cluster.
    prediction : ndarray, shape (N,)
        Out-of-fold log10 M500c [h^-1 Msun] (ensemble mean); NaN for folds not run.
    sigma : ndarray or None
        Per-cluster standard deviation in dex (Gaussian head and/or ensemble spread).
    fold_results : list of FoldResult
        One per (fold, member).
    """

    config: RunConfig
    folds: np.ndarray
    prediction: np.ndarray
    sigma: np.ndarray | None
    fold_results: list[FoldResult]


def ensure_kde(
    arrays: ClusterArrays,
    kde: KDEConfig,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> ClusterArrays:
    """``arrays`` with ``kde_cubes`` filled from ``arrays.galaxies`` when missing."""
    if arrays.kde_cubes is not None:
        if arrays.kde_cubes.shape[1:] != (kde.n_grid,) * 3:
            raise DataError(
                f"kde_cubes have shape {arrays.kde_cubes.shape[1:]}, config wants {kde.n_grid}^3"
            )
        return arrays
    if arrays.galaxies is None:
        raise DataError("the multimodal network needs galaxies (or precomputed kde_cubes)")
    g = arrays.galaxies
    inside = (
        (np.abs(g.x) <= kde.half_width_mpc_h)
        & (np.abs(g.y) <= kde.half_width_mpc_h)
        & (np.abs(g.v) <= kde.half_width_km_s)
    )
    if g.x.size and inside.mean() < 0.1:
        raise DataError(
            f"only {100 * inside.mean():.1f}% of the galaxies fall inside the KDE grid "
            f"(+-{kde.half_width_mpc_h} h^-1 Mpc, +-{kde.half_width_km_s} km/s): galaxy x, y "
            "must be offsets from the cluster centre and v_los relative to the cluster"
        )
    cubes = kde_cubes(
        arrays.galaxies,
        n_grid=kde.n_grid,
        half_width_mpc_h=kde.half_width_mpc_h,
        half_width_km_s=kde.half_width_km_s,
        bw_method=kde.bw_method,
        cache_dir=kde.cache_dir,
        progress=progress,
    )
    return replace(arrays, kde_cubes=cubes)


def assemble(config: RunConfig, folds: np.ndarray, results: Sequence[FoldResult]) -> CVResult:
    """Combine fold results (any order, any members) into out-of-fold predictions."""
    n = folds.size
    by_fold: dict[int, list[FoldResult]] = {}
    for r in results:
        by_fold.setdefault(r.fold, []).append(r)
    pred = np.full(n, np.nan)
    sigma = np.full(n, np.nan)
    any_sigma = False
    for _fold, members in sorted(by_fold.items()):
        members = sorted(members, key=lambda r: r.member)
        test = members[0].split.test
        if any(not np.array_equal(m.split.test, test) for m in members):
            raise DataError(f"fold {_fold}: ensemble members disagree on the test clusters")
        mean, sig = combine_ensemble(
            [m.test_prediction for m in members], [m.test_sigma for m in members]
        )
        pred[test] = mean
        if sig is not None:
            sigma[test] = sig
            any_sigma = True
    return CVResult(
        config=config,
        folds=folds,
        prediction=pred,
        sigma=sigma if any_sigma else None,
        fold_results=list(results),
    )


def cross_validate(
    arrays: ClusterArrays,
    config: RunConfig,
    *,
    progress: ProgressCallback | None = None,
    on_fold: Callable[[FoldResult], None] | None = None,
    device: str | torch.device | None = None,
    done: Callable[[int, int], FoldResult | None] | None = None,
) -> CVResult:
    """Train every fold (``config.cv.folds`` or all) and every ensemble member.

    Parameters
    ----------
    arrays : ClusterArrays
        Clusters with labels (galaxies or KDE cubes for the multimodal network).
    config : RunConfig
        Run configuration.
    progress : callable, optional
        Per-step :class:`~models.training.TrainProgress` reports.
    on_fold : callable, optional
        Called with each :class:`~models.training.FoldResult` as soon as it is done (e.g. to
        write it to the run directory).
    device : str or torch.device, optional
        Overrides ``config.training.device``.
    done : callable, optional
        ``done(fold, member)`` returns a finished fold (e.g. read back from the run directory:
        :func:`models.runio.read_fold_result`) or None; a fold it returns is not trained again,
        provided its test clusters are exactly the fold's (else :class:`ModelConfigError`: the
        catalogue changed under the run).
    """
    needs_kde = network_class(config.model.kind).needs_kde
    folds = make_folds(arrays, config.cv.scheme, config.cv.box_size)
    present = sorted(set(folds.tolist()))
    wanted = present if config.cv.folds is None else list(config.cv.folds)
    missing = sorted(set(wanted) - set(present))
    if missing:
        raise ModelConfigError(f"cv.folds {missing} have no clusters; folds present: {present}")
    results = []
    for fold in wanted:
        for member in range(config.ensemble):
            r = None if done is None else done(fold, member)
            if r is not None:
                expected = np.flatnonzero(folds == fold)
                if not np.array_equal(np.sort(r.split.test), expected):
                    raise ModelConfigError(
                        f"fold {fold} member {member} on disk tested {r.split.test.size} clusters "
                        f"that are not this catalogue's fold {fold} ({expected.size} clusters): "
                        "the run directory belongs to another catalogue"
                    )
                log.info("fold %d member %d: already trained, read back", fold, member)
                results.append(r)
                continue
            if needs_kde:  # only when a fold is trained: a run read back needs no cubes
                arrays, needs_kde = ensure_kde(arrays, config.data.kde), False
            r = train_fold(
                arrays, config, fold, folds=folds, member=member, progress=progress, device=device
            )
            results.append(r)
            if on_fold is not None:
                on_fold(r)
    return assemble(config, folds, results)
