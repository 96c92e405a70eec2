"""Cross-validation splits: spatial octants of the box (paper) or leave-one-snapshot-out.

Ho et al. (2023) split the 352 h^-1 Mpc Magneticum box into 2 x 2 x 2 octants and predict each
octant with the network trained on the other seven, so every cluster gets an out-of-fold
prediction and no large-scale structure is shared between training and test clusters. The same
halo seen at several snapshots stays (nearly) in one octant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.data import ClusterArrays
from models.errors import DataError, ModelConfigError

__all__ = ["octant_folds", "snapshot_folds", "make_folds", "FoldSplit", "fold_split"]


def octant_folds(positions: np.ndarray, box_size: float) -> np.ndarray:
    """Fold 0-7 of each cluster: ``4 [x >= L/2] + 2 [y >= L/2] + [z >= L/2]``.

    Parameters
    ----------
    positions : ndarray, shape (N, 3)
        Comoving positions in h^-1 Mpc; wrapped into the periodic box ``[0, box_size)``.
    box_size : float
        Side L of the periodic box, h^-1 Mpc.
    """
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise DataError(f"positions must have shape (N, 3); got {pos.shape}")
    upper = np.mod(pos, box_size) >= 0.5 * box_size
    return (4 * upper[:, 0] + 2 * upper[:, 1] + upper[:, 2]).astype(np.int64)


def snapshot_folds(snapshot: np.ndarray) -> np.ndarray:
    """Fold of each cluster = rank of its snapshot among the distinct snapshots."""
    _, inverse = np.unique(np.asarray(snapshot), return_inverse=True)
    return inverse.astype(np.int64)


def make_folds(
    arrays: ClusterArrays, scheme: str = "octants", box_size: float = 352.0
) -> np.ndarray:
    """Fold id per cluster for ``scheme`` in {"octants", "snapshot"}."""
    if scheme == "octants":
        if arrays.positions is None:
            raise DataError("octant folds need arrays.positions (pos_x/pos_y/pos_z)")
        return octant_folds(arrays.positions, box_size)
    if scheme == "snapshot":
        if arrays.snapshot is None:
            raise DataError("snapshot folds need arrays.snapshot")
        return snapshot_folds(arrays.snapshot)
    raise ModelConfigError(f"unknown cv scheme {scheme!r}; choose one of ['octants', 'snapshot']")


@dataclass(frozen=True)
class FoldSplit:
    """Indices of one fold: ``train`` and ``val`` come from the other folds, ``test`` is it."""

    fold: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def fold_split(folds: np.ndarray, fold: int, val_fraction: float, seed: int) -> FoldSplit:
    """Test = clusters of ``fold``; a random ``val_fraction`` of the rest validates.

    The validation split lies inside the training folds (the authors' multimodal run stopped
    on the test fold: flaw 2 in ``science.md``). It depends only on ``seed`` and ``fold``.
    """
    folds = np.asarray(folds)
    if fold not in set(np.unique(folds).tolist()):
        raise ModelConfigError(
            f"fold {fold} is empty; folds present: {sorted(set(folds.tolist()))}"
        )
    test = np.flatnonzero(folds == fold)
    rest = np.flatnonzero(folds != fold)
    if rest.size < 3:
        raise DataError(f"fold {fold}: only {rest.size} training clusters")
    rng = np.random.default_rng([seed, fold])
    perm = rng.permutation(rest)
    n_val = max(1, int(round(val_fraction * rest.size)))
    return FoldSplit(fold, np.sort(perm[n_val:]), np.sort(perm[:n_val]), test)
