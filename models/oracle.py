"""The hidden-truth regression ("oracle"): log10 M500c regressed on chosen hidden truth.

The mock knows quantities no observer has: the noise-free X-ray luminosity inside R500c, the
temperature, the core state, the NFW concentration, the core-excised luminosity and the gas
fraction. Regressing log10 M500c on the values of a *chosen* set of them, with the CNNs' spatial
folds, says how much mass information those particular quantities carry in this mock.

It is **not a floor** on what a network can reach. A network may beat it when the maps carry
information outside the chosen columns (morphology, the surface-brightness profile, the
background, the galaxies), and it may be far from reachable when the chosen columns are not
recoverable from the maps at the survey's depth (a gas fraction needs the gas mass; a
concentration needs a profile resolved inside the core). The default features are those the
photon maps encode most directly, plus the mock-v2 structural truth (issue 14):

``L_X_500c_true``, ``T``, ``cool_core`` (the first run's set), ``c200c`` (assembly: Diemer &
Joyce 2019 mean times the halo's deviate), ``L_X_ce`` (core-excised luminosity, 0.15-1 R500c,
the low-scatter proxy of Pratt et al. 2009 / Mantz et al. 2018) and ``f_gas`` (M_gas / M500c
inside R500c). ``f_gas`` holds M500c in its denominator: with ``L_X`` and ``T`` it nearly
determines the mass, which is why the row is read as "what these hidden columns carry", never
as a target for the CNNs.

The regressor is a quadratic polynomial (all squares and pairwise products) in the logarithms
of the positive features plus redshift and boolean flags, fitted by least squares with a tiny
ridge term on standardised features, out of fold.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations_with_replacement

import numpy as np

from models.data import ClusterArrays
from models.errors import DataError

__all__ = [
    "DEFAULT_ORACLE_FEATURES",
    "FIRST_RUN_ORACLE_FEATURES",
    "ORACLE_LABEL",
    "oracle_features",
    "oracle_label",
    "oracle_predictions",
]

#: Hidden-truth columns of the first benchmark's regression (the maps' most direct content).
FIRST_RUN_ORACLE_FEATURES = ("L_X_500c_true", "T", "cool_core")
#: Hidden-truth columns used by default (those present are used): the first run's set plus
#: the mock-v2 structural truth (concentration, core-excised L_X, gas fraction).
DEFAULT_ORACLE_FEATURES = (*FIRST_RUN_ORACLE_FEATURES, "c200c", "L_X_ce", "f_gas")
#: Table label of the row (the table's ``kind`` is ``oracle``; estimator name ``oracle``).
ORACLE_LABEL = "Hidden-truth regression"


def oracle_label(arrays: ClusterArrays, columns: Sequence[str] | None = None) -> str:
    """Return the row label naming the hidden columns used: ``Hidden-truth regression (T, ...)``."""
    wanted = list(columns) if columns is not None else list(DEFAULT_ORACLE_FEATURES)
    present = [c for c in wanted if c in arrays.scalars]
    return f"{ORACLE_LABEL} ({', '.join(present)})" if present else ORACLE_LABEL


def oracle_features(
    arrays: ClusterArrays, columns: Sequence[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Feature matrix (N, k): log10 of positive columns, booleans as 0/1, plus redshift.

    Raises
    ------
    DataError
        None of ``columns`` is in ``arrays.scalars`` (the message lists what is there).
    """
    wanted = list(columns) if columns is not None else list(DEFAULT_ORACLE_FEATURES)
    present = [c for c in wanted if c in arrays.scalars]
    if not present:
        raise DataError(
            f"oracle features {wanted} are not in the catalogue; scalars present: "
            f"{sorted(arrays.scalars)}"
        )
    cols, names = [], []
    for c in present:
        v = np.asarray(arrays.scalars[c], dtype=np.float64)
        binary = np.isin(v[np.isfinite(v)], (0.0, 1.0)).all()
        if binary:
            cols.append(v)
            names.append(c)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                cols.append(np.where(v > 0, np.log10(v), np.nan))
            names.append(f"log10_{c}")
    cols.append(arrays.redshift)
    names.append("redshift")
    return np.stack(cols, axis=1), names


def _design(x: np.ndarray, degree: int) -> np.ndarray:
    terms = [np.ones(len(x))]
    for d in range(1, degree + 1):
        for combo in combinations_with_replacement(range(x.shape[1]), d):
            terms.append(np.prod(x[:, combo], axis=1))
    return np.stack(terms, axis=1)


def oracle_predictions(
    arrays: ClusterArrays,
    folds: np.ndarray,
    *,
    columns: Sequence[str] | None = None,
    degree: int = 2,
    ridge: float = 1e-6,
) -> np.ndarray:
    """Out-of-fold log10 M500c predicted from hidden truth (NaN where a feature is missing).

    Parameters
    ----------
    arrays : ClusterArrays
        Clusters with labels and the hidden-truth ``scalars``.
    folds : ndarray of int
        Fold per cluster (the CNNs' folds, so the comparison is like for like).
    columns : sequence of str, optional
        Feature columns (default :data:`DEFAULT_ORACLE_FEATURES`).
    degree : int
        Polynomial degree (1 = linear).
    ridge : float
        Ridge penalty on standardised features (numerical safety only).
    """
    x, _ = oracle_features(arrays, columns)
    y = arrays.require_labels()
    ok = np.all(np.isfinite(x), axis=1) & np.isfinite(y)
    pred = np.full(len(y), np.nan)
    for f in np.unique(folds):
        tr = ok & (folds != f)
        te = ok & (folds == f)
        if tr.sum() <= x.shape[1] + 1 or not te.any():
            continue
        mu, sd = x[tr].mean(axis=0), x[tr].std(axis=0)
        sd[sd == 0] = 1.0
        a_tr = _design((x[tr] - mu) / sd, degree)
        a_te = _design((x[te] - mu) / sd, degree)
        reg = ridge * np.eye(a_tr.shape[1])
        reg[0, 0] = 0.0
        coef = np.linalg.solve(a_tr.T @ a_tr + reg * len(a_tr), a_tr.T @ y[tr])
        pred[te] = a_te @ coef
    return pred
