"""Spatial octant folds, snapshot folds and validation splits inside the training folds."""

from __future__ import annotations

import numpy as np
import pytest

from models.data import ClusterArrays
from models.errors import DataError, ModelConfigError
from models.folds import fold_split, make_folds, octant_folds, snapshot_folds


def test_octants_of_the_box() -> None:
    L = 352.0
    q, h = 0.25 * L, 0.75 * L
    centres = np.array([[a, b, c] for a in (q, h) for b in (q, h) for c in (q, h)])
    np.testing.assert_array_equal(octant_folds(centres, L), np.arange(8))
    # periodic: x = L + q wraps to q, x = -q wraps to L - q
    np.testing.assert_array_equal(octant_folds(np.array([[L + q, q, q], [-q, q, q]]), L), [0, 4])


def test_a_cluster_exactly_on_the_mid_plane_belongs_to_the_upper_octant() -> None:
    # Folds are half-open boxes [0, L/2) and [L/2, L) along each axis: x = L/2 is "upper".
    L = 352.0
    h, q = 0.5 * L, 0.25 * L
    pos = np.array([[h, q, q], [q, h, q], [q, q, h], [h, h, h], [np.nextafter(h, 0), q, q]])
    np.testing.assert_array_equal(octant_folds(pos, L), [4, 2, 1, 7, 0])


def test_uniform_positions_fill_eight_folds() -> None:
    pos = np.random.default_rng(0).uniform(0, 352, (4000, 3))
    counts = np.bincount(octant_folds(pos, 352.0))
    assert counts.size == 8 and np.all(np.abs(counts - 500) < 100)


def test_snapshot_folds() -> None:
    folds = snapshot_folds(np.array([36, 40, 36, 52]))
    np.testing.assert_array_equal(folds, [0, 1, 0, 2])
    assert folds.dtype == np.int64  # fold ids index arrays and are stored as integers


def test_fold_split_needs_three_training_clusters_and_validates_on_at_least_one() -> None:
    folds = np.array([0, 0, 1, 1, 1])  # fold 0 is trained on the three clusters of fold 1
    s = fold_split(folds, 0, 0.01, seed=0)
    assert s.fold == 0
    assert len(s.val) == 1 and len(s.train) == 2  # round(0.03) = 0 validation clusters -> 1
    with pytest.raises(DataError, match="^fold 1: only 2 training clusters$"):
        fold_split(folds, 1, 0.1, seed=0)


def test_fold_split_is_disjoint_and_reproducible() -> None:
    folds = np.repeat(np.arange(8), 50)
    s = fold_split(folds, 3, 0.1, seed=7)
    assert set(s.test) == set(np.flatnonzero(folds == 3))
    assert not set(s.train) & set(s.val) and not (set(s.train) | set(s.val)) & set(s.test)
    assert len(s.train) + len(s.val) == 350 and len(s.val) == 35
    assert np.all(folds[s.val] != 3)  # validation comes from the training folds
    t = fold_split(folds, 3, 0.1, seed=7)
    np.testing.assert_array_equal(s.val, t.val)
    assert not np.array_equal(fold_split(folds, 3, 0.1, seed=8).val, s.val)
    with pytest.raises(ModelConfigError, match="folds present"):
        fold_split(folds, 9, 0.1, seed=0)


def _arrays(n: int, **kw) -> ClusterArrays:
    return ClusterArrays(images=np.zeros((n, 1, 2, 2)), redshift=np.full(n, 0.1), **kw)


def test_make_folds_octants_use_the_box_size_and_snapshot_folds_the_snapshot_rank() -> None:
    # x = 176.2 h^-1 Mpc is past the mid-plane of the paper's (default) 352 box, not of 500.
    pos = np.array([[176.2, 10.0, 10.0], [10.0, 10.0, 200.0]])
    arrays = _arrays(2, positions=pos, snapshot=np.array([140, 124]))
    np.testing.assert_array_equal(make_folds(arrays), [4, 1])
    np.testing.assert_array_equal(make_folds(arrays, "octants", box_size=500.0), [0, 0])
    np.testing.assert_array_equal(make_folds(arrays, "snapshot"), [1, 0])


def test_make_folds_names_what_is_missing_or_unknown() -> None:
    with pytest.raises(
        DataError, match=r"^octant folds need arrays\.positions \(pos_x/pos_y/pos_z\)$"
    ):
        make_folds(_arrays(2, snapshot=np.array([1, 2])), "octants")
    with pytest.raises(DataError, match=r"^snapshot folds need arrays\.snapshot$"):
        make_folds(_arrays(2, positions=np.zeros((2, 3))), "snapshot")
    with pytest.raises(ModelConfigError, match="'spheres'"):
        make_folds(_arrays(2, positions=np.zeros((2, 3))), "spheres")


def test_octant_folds_refuse_positions_that_are_not_3_vectors() -> None:
    with pytest.raises(DataError, match=r"^positions must have shape \(N, 3\); got \(5, 2\)$"):
        octant_folds(np.zeros((5, 2)), 352.0)
    with pytest.raises(DataError, match=r"got \(3,\)$"):
        octant_folds(np.zeros(3), 352.0)
