"""Bootstrap confidence intervals on the scatter per bin, stored in ``scatter_bootstrap``.

The resampling runs in numpy (seeded, reproducible); the residuals come from ``v_residuals``
and the bins follow the SQL functions exactly (half-open ``[lo, hi)``), so the stored
``n``, ``bias_dex`` and ``sigma_lnm`` equal what ``scatter_by_mass`` / ``scatter_by_z`` return
(``sigma_lnm`` unless the bootstrap finds it biased by more than its BCa interval: then the
bias-corrected value, which lies inside the interval; :func:`models.intervals.bca`).
Rows are upserted on their natural key ``(run_id, input_domain, axis, bin_lo, bin_hi,
ci_level, n_resamples, seed)``: re-running with the same settings replaces, never duplicates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db import tables
from db.errors import BinEdgesError
from db.results import MASS_EDGES, Z_EDGES, check_edges, ensure_run
from models.intervals import MAX_JACKKNIFE_GROUPS, bca

__all__ = ["BootstrapBin", "bootstrap_sigma_lnm", "store_bootstrap"]

LN10 = math.log(10.0)
_CHUNK_ELEMENTS = 4_000_000  # resample indices held in memory at once (~32 MB of int64)


@dataclass(frozen=True)
class BootstrapBin:
    """One stored bootstrap result (a row of ``scatter_bootstrap``)."""

    axis: str
    bin_lo: float
    bin_hi: float
    n: int
    bias_dex: float | None
    sigma_lnm: float | None
    ci_lo: float | None
    ci_hi: float | None


def bootstrap_sigma_lnm(
    residual_dex: np.ndarray,
    *,
    n_resamples: int,
    ci_level: float,
    rng: np.random.Generator,
) -> tuple[float | None, float | None, float | None]:
    """BCa bootstrap interval of ``sigma_lnM = std(r, ddof=1) * ln 10`` (:mod:`models.intervals`).

    Parameters
    ----------
    residual_dex : ndarray
        Residuals log10 M_pred - log10 M_true [dex].
    n_resamples : int
        Number of resamples with replacement (Efron & Tibshirani 1993, ch. 13).
    ci_level : float
        Central probability of the interval, in (0, 1), e.g. 0.68.
    rng : numpy.random.Generator
        Source of the resampling indices.

    Returns
    -------
    sigma_lnm, ci_lo, ci_hi : float or None
        The estimate on the full sample (or, when the bootstrap finds it biased by more than
        the interval, the bias-corrected one: it always lies inside) and the ``ci_level`` BCa
        interval (dimensionless; acceleration from a delete-a-group jackknife); all ``None``
        for fewer than 2 residuals.
    """
    r = np.asarray(residual_dex, dtype=float)
    n = r.size
    if n < 2:
        return None, None, None
    estimate = float(np.std(r, ddof=1) * LN10)
    per_chunk = max(1, _CHUNK_ELEMENTS // n)
    sigmas = np.empty(n_resamples)
    for start in range(0, n_resamples, per_chunk):
        stop = min(n_resamples, start + per_chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        sigmas[start:stop] = np.std(r[idx], axis=1, ddof=1) * LN10
    iv = bca(estimate, sigmas, _jackknife_sigma_lnm(r), ci_level)
    return iv.value, iv.low, iv.high


def _jackknife_sigma_lnm(r: np.ndarray) -> np.ndarray:
    """``std(ddof=1) * ln 10`` of ``r`` without each jackknife group, from running sums.

    The groups are :func:`models.intervals.jackknife_groups` (item ``i`` in group ``i mod
    G``); sums of (r - mean) keep the subtraction exact for residuals far from zero.
    """
    c = r - r.mean()
    g = min(r.size, MAX_JACKKNIFE_GROUPS)
    label = np.arange(r.size) % g
    s1 = np.bincount(label, weights=c, minlength=g)
    s2 = np.bincount(label, weights=c * c, minlength=g)
    m = r.size - np.bincount(label, minlength=g)  # clusters kept
    ok = m >= 2
    var = np.full(g, np.nan)
    rest1, rest2 = c.sum() - s1[ok], (c * c).sum() - s2[ok]
    var[ok] = (rest2 - rest1**2 / m[ok]) / (m[ok] - 1)
    return np.sqrt(np.clip(var, 0.0, None)) * LN10


def store_bootstrap(
    session: Session,
    *,
    run_id: int,
    axis: Literal["mass", "z", "all"] = "mass",
    edges: Sequence[float] | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    ci_level: float = 0.68,
    input_domain: str | None = "mock",
    progress: Callable[[int, int], None] | None = None,
) -> list[BootstrapBin]:
    """Bootstrap sigma_lnM in every bin of one run and upsert the results.

    The residuals are those of the run's training catalogue (``model_runs.catalogue_id``;
    every catalogue when the run records none), as :func:`db.results.scatter` uses by default.

    Parameters
    ----------
    session : Session
        A session with write access (the owner role; the reader cannot write).
    run_id : int
        ``model_runs.id``.
    axis : {'mass', 'z', 'all'}
        Binned quantity; 'all' is one bin (-inf, inf).
    edges : sequence of float, optional
        Bin edges (log10 M500c [h^-1 Msun] or redshift); defaults as in :mod:`db.results`.
    n_resamples : int
        Resamples per bin.
    seed : int
        Entropy of the ``numpy.random.SeedSequence``; bin ``i`` uses its ``i``-th spawned child,
        so a bin's interval does not depend on the other bins' sizes.
    ci_level : float
        Central probability of [ci_lo, ci_hi].
    input_domain : str or None
        'mock', 'observed', or ``None`` for both (stored as 'all').
    progress : callable, optional
        Called as ``progress(done_bins, total_bins)``.

    Returns
    -------
    list of BootstrapBin
        One per bin, empty bins included (``n = 0``, statistics ``None``).
    """
    if axis not in ("mass", "z", "all"):
        raise BinEdgesError(f"unknown bootstrap axis {axis!r}; choose one of mass, z, all")
    if not 0 < ci_level < 1:
        raise ValueError(f"ci_level must be in (0, 1), got {ci_level}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    ensure_run(session, run_id)
    if axis == "all":
        bin_edges = [-math.inf, math.inf]
    else:
        default = MASS_EDGES if axis == "mass" else Z_EDGES
        bin_edges = check_edges(edges, f"{axis} edges", default)
    column = "redshift" if axis == "z" else "log10_m500c"
    rows = session.execute(
        sa.text(
            f"SELECT v.{column}, v.residual_dex FROM v_residuals v "
            "JOIN v_runs r ON r.run_id = v.run_id WHERE v.run_id = :run "
            "AND v.residual_dex IS NOT NULL "
            "AND (CAST(:domain AS text) IS NULL OR v.input_domain = :domain) "
            # the run's own catalogue, as the scatter functions by default (every catalogue for
            # a run that records none): the intervals describe the same residuals as the scatter
            "AND (r.catalogue_id IS NULL OR v.catalogue_id = r.catalogue_id)"
        ),
        {"run": run_id, "domain": input_domain},
    ).all()
    data = np.array(rows, dtype=float).reshape(-1, 2)
    x, r = data[:, 0], data[:, 1]
    children = np.random.SeedSequence(seed).spawn(len(bin_edges) - 1)
    out: list[BootstrapBin] = []
    for i, (lo, hi) in enumerate(zip(bin_edges[:-1], bin_edges[1:], strict=True)):
        sel = r[(x >= lo) & (x < hi)]
        sigma, ci_lo, ci_hi = bootstrap_sigma_lnm(
            sel, n_resamples=n_resamples, ci_level=ci_level, rng=np.random.default_rng(children[i])
        )
        bias = float(np.mean(sel)) if sel.size else None
        out.append(BootstrapBin(axis, lo, hi, int(sel.size), bias, sigma, ci_lo, ci_hi))
        if progress is not None:
            progress(i + 1, len(bin_edges) - 1)
    _upsert(session, run_id, input_domain or "all", ci_level, n_resamples, seed, out)
    return out


def _upsert(
    session: Session,
    run_id: int,
    domain: str,
    ci_level: float,
    n_resamples: int,
    seed: int,
    bins: list[BootstrapBin],
) -> None:
    values = [
        {
            "run_id": run_id,
            "input_domain": domain,
            "ci_level": ci_level,
            "n_resamples": n_resamples,
            "seed": seed,
            **b.__dict__,
        }
        for b in bins
    ]
    stmt = insert(tables.ScatterBootstrap).values(values)
    stmt = stmt.on_conflict_do_update(
        constraint="uq_scatter_bootstrap_natural_key",
        set_={
            **{k: stmt.excluded[k] for k in ("n", "bias_dex", "sigma_lnm", "ci_lo", "ci_hi")},
            "created_at": sa.func.now(),
        },
    )
    session.execute(stmt)
