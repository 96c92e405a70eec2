"""KDE cubes reproduce scipy.stats.gaussian_kde(bw_method=0.15) on the paper's grid."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import gaussian_kde

from models import kde as kde_mod
from models.data import RaggedGalaxies
from models.errors import KDEError
from models.kde import KDE_DEFAULTS, grid_centres, kde_cube, kde_cubes


def _galaxies(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = rng.normal(0, 0.5, n)
    y = 0.4 * x + rng.normal(0, 0.4, n)  # correlated axes: a full covariance matters
    v = rng.normal(0, 600, n) + 300 * x
    v[:3] += 4500  # interlopers beyond the +-3785 km/s grid edge
    return x, y, v


def _scipy_cube(x, y, v, n_grid: int) -> np.ndarray:
    k = gaussian_kde(np.vstack([x, y, v]), bw_method=0.15)
    g = grid_centres(n_grid, 2.3)
    gv = grid_centres(n_grid, 3785.0)
    X, Y, V = np.meshgrid(g, g, gv, indexing="ij")
    ref = k(np.vstack([X.ravel(), Y.ravel(), V.ravel()])).reshape((n_grid,) * 3)
    return ref / ref.sum()


@pytest.mark.parametrize("truncate", [7.0, None])
def test_matches_scipy(truncate: float | None) -> None:
    x, y, v = _galaxies(np.random.default_rng(3), 80)
    cube = kde_cube(x, y, v, n_grid=20, truncate_sigma=truncate)
    ref = _scipy_cube(x, y, v, 20)
    assert cube.shape == (20, 20, 20)
    assert cube.sum() == pytest.approx(1.0, rel=1e-5)
    assert np.abs(cube - ref).max() < 1e-5 * ref.max()


def test_axes_are_x_y_v() -> None:
    # Galaxies at x = +1 h^-1 Mpc, y = 0, v = -2000 km/s: the peak sits there.
    rng = np.random.default_rng(0)
    x = 1.0 + 0.05 * rng.standard_normal(30)
    y = 0.05 * rng.standard_normal(30)
    v = -2000 + 50 * rng.standard_normal(30)
    cube = kde_cube(x, y, v, n_grid=32)
    i, j, k = np.unravel_index(np.argmax(cube), cube.shape)
    g, gv = grid_centres(32, 2.3), grid_centres(32, 3785.0)
    assert abs(g[i] - 1.0) < 0.15 and abs(g[j]) < 0.15 and abs(gv[k] + 2000) < 250


def test_too_few_galaxies() -> None:
    with pytest.raises(KDEError, match="at least 4"):
        kde_cube(np.zeros(3), np.zeros(3), np.zeros(3))


def test_batch_with_cache(tmp_path) -> None:
    rng = np.random.default_rng(1)
    parts = [_galaxies(rng, n) for n in (40, 25)]
    parts.append((np.zeros(2), np.zeros(2), np.zeros(2)))  # too few: uniform cube
    counts = [len(p[0]) for p in parts]
    gal = RaggedGalaxies(
        np.concatenate([[0], np.cumsum(counts)]),
        *(np.concatenate([p[a] for p in parts]) for a in range(3)),
    )
    calls: list[tuple[int, int]] = []
    cubes = kde_cubes(
        gal, n_grid=12, cache_dir=tmp_path, progress=lambda d, t: calls.append((d, t))
    )
    assert cubes.shape == (3, 12, 12, 12)
    assert calls[-1] == (3, 3)
    np.testing.assert_allclose(cubes.sum(axis=(1, 2, 3)), 1.0, rtol=1e-5)
    np.testing.assert_allclose(cubes[2], 1 / 12**3)
    np.testing.assert_allclose(cubes[0], kde_cube(*parts[0], n_grid=12), rtol=1e-6)
    assert len(list(tmp_path.glob("*.npz"))) == 3
    again = kde_cubes(gal, n_grid=12, cache_dir=tmp_path)
    np.testing.assert_array_equal(again, cubes)


# --- the cube cache and the batch contract (mutation testing, docs/testing.md) ---------------


def _ragged(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> RaggedGalaxies:
    counts = [len(p[0]) for p in parts]
    return RaggedGalaxies(
        np.concatenate([[0], np.cumsum(counts)]),
        *(np.concatenate([p[a] for p in parts]) for a in range(3)),
    )


def test_default_grid_is_the_papers_64_cubed_in_float32_without_a_cache() -> None:
    few = (np.zeros(2), np.zeros(2), np.zeros(2))  # < 4 galaxies: uniform, no KDE to compute
    cubes = kde_cubes(_ragged([few]))
    assert cubes.shape == (1, 64, 64, 64) == (1,) + (KDE_DEFAULTS["n_grid"],) * 3
    assert cubes.dtype == np.float32


def test_uniform_cubes_are_counted_in_the_warning(caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(1)
    few = (np.zeros(2), np.zeros(2), np.zeros(2))
    gal = _ragged([few, _galaxies(rng, 30), few, few])
    with caplog.at_level(logging.WARNING, logger="models.kde"):
        kde_cubes(gal, n_grid=8)
    assert caplog.messages == [
        "3 of 4 clusters have < 4 galaxies or a degenerate covariance: uniform KDE cubes"
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="models.kde"):
        kde_cubes(_ragged([_galaxies(rng, 30)]), n_grid=8)
    assert caplog.messages == []


def test_a_cached_cube_is_read_back_not_recomputed(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    gal = _ragged([_galaxies(rng, 30)])
    cache = tmp_path / "new" / "nested"  # created, parents too
    first = kde_cubes(gal, n_grid=8, cache_dir=cache)
    (path,) = cache.glob("*.npz")
    planted = np.full((8, 8, 8), 1 / 8**3, dtype=np.float32)
    np.savez_compressed(path, cube=planted)  # what the cache holds is what comes back
    np.testing.assert_array_equal(kde_cubes(gal, n_grid=8, cache_dir=cache)[0], planted)
    assert not np.array_equal(first[0], planted)


def test_the_cache_key_is_every_coordinate_and_every_grid_parameter(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    x, y, v = _galaxies(rng, 30)
    base = {"n_grid": 8, "half_width_mpc_h": 2.3, "half_width_km_s": 3785.0, "bw_method": 0.15}
    key = kde_mod._cache_key(x, y, v, base)
    # Values, not their dtype: float32 columns read back as float64 hit the same file.
    x32 = x.astype(np.float32)
    assert kde_mod._cache_key(x32, y, v, base) == kde_mod._cache_key(x32.astype(float), y, v, base)
    moved = [(x + 0.1, y, v), (x, y + 0.1, v), (x, y, v + 10.0)]
    assert len({key} | {kde_mod._cache_key(*c, base) for c in moved}) == 4
    assert kde_mod._cache_key(x, y, v, {**base, "bw_method": 0.2}) != key
    # Two clusters that differ in one coordinate only get their own cubes from the cache.
    gal = _ragged([(x, y, v), (x + 0.3, y, v), (x, y - 0.3, v), (x, y, v - 300.0)])
    cubes = kde_cubes(gal, n_grid=8, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 4
    cached = kde_cubes(gal, n_grid=8, cache_dir=tmp_path)
    np.testing.assert_array_equal(cached, cubes)
    for i in range(1, 4):
        assert not np.allclose(cubes[i], cubes[0])
    wider = kde_cubes(gal, n_grid=8, bw_method=0.3, cache_dir=tmp_path)
    assert not np.allclose(wider[0], cubes[0])  # another bandwidth is not read from the cache


@pytest.mark.parametrize("chunk", [7, 16])
def test_every_galaxy_counts_whatever_its_place_in_the_list(chunk: int) -> None:
    # The interlopers of _galaxies come first and barely reach the grid; put a core galaxy
    # first instead: the full-grid sum over galaxy chunks must still include it.
    x, y, v = (a[::-1].copy() for a in _galaxies(np.random.default_rng(3), 40))
    cube = kde_cube(x, y, v, n_grid=12, truncate_sigma=None, galaxy_chunk=chunk)
    ref = _scipy_cube(x, y, v, 12)
    assert np.abs(cube - ref).max() < 1e-5 * ref.max()


def test_four_galaxies_are_enough_for_a_3d_kde() -> None:
    x, y, v = (np.array([0.0, 1.0, 0.0, 0.3]), np.array([0.0, 0.0, 1.0, 0.2]), [0, 0, 0, 900.0])
    cube = kde_cube(x, y, np.asarray(v), n_grid=10)
    assert cube.shape == (10, 10, 10) and cube.sum() == pytest.approx(1.0, rel=1e-5)


def test_the_default_cube_is_the_papers_64_cubed() -> None:
    x, y, v = _galaxies(np.random.default_rng(2), 10)
    assert kde_cube(x, y, v).shape == (64, 64, 64)


def test_bad_galaxy_sets_are_refused_with_the_reason() -> None:
    x, y, v = _galaxies(np.random.default_rng(2), 10)
    with pytest.raises(KDEError, match=r"^galaxy x, y or v contains non-finite values$"):
        kde_cube(np.r_[x, np.nan], np.r_[y, 0.0], np.r_[v, 0.0])
    line = np.linspace(-1, 1, 10)  # collinear: a singular covariance
    with pytest.raises(
        KDEError,
        match=r"^galaxy \(x, y, v\) covariance is singular \(collinear or repeated galaxies\); "
        r"scipy\.stats\.gaussian_kde fails on such input too$",
    ):
        kde_cube(line, 2 * line, 300 * line)
    with pytest.raises(
        KDEError,
        match=r"^KDE vanishes on the whole grid: the galaxies lie far outside "
        r"\+-2\.3 h\^-1 Mpc x \+-3785\.0 km/s$",
    ):
        kde_cube(x + 200.0, y, v, n_grid=8)


def test_kernels_wider_than_the_grid_or_far_off_it_match_scipy() -> None:
    rng = np.random.default_rng(5)
    x, y, v = _galaxies(rng, 40)
    wide_v = rng.normal(0, 20000, 40)  # 7 kernel sigma (0.15 x 20000 km/s) > the grid
    cube = kde_cube(x, y, wide_v, n_grid=10)
    ref = _scipy_cube(x, y, wide_v, 10)
    assert np.abs(cube - ref).max() < 1e-5 * ref.max()
    # A few galaxies far below and far above the grid (boxes parked in the padding).
    far_x = np.r_[x, -40.0, 45.0, -60.0]
    far_y, far_v = np.r_[y, -30.0, 35.0, 0.0], np.r_[v, -30000.0, 40000.0, 0.0]
    cube = kde_cube(far_x, far_y, far_v, n_grid=10)
    ref = _scipy_cube(far_x, far_y, far_v, 10)
    assert np.abs(cube - ref).max() < 1e-5 * ref.max()


def test_truncated_kernels_of_galaxies_far_off_the_grid_add_nothing() -> None:
    # Narrow kernels (0.1 h^-1 Mpc, 100 km/s) and galaxies far below and above the grid on
    # every axis: their boxes lie outside it and must neither wrap around nor break the sum.
    rng = np.random.default_rng(8)
    core = np.vstack([rng.normal(0, 0.5, 30), rng.normal(0, 0.5, 30), rng.normal(0, 500, 30)])
    far = np.array([[-40.0, 45.0, -3.0, 0.0], [-30.0, 35.0, 0.0, 3.0], [-3e4, 4e4, 0.0, 0.0]])
    data = np.hstack([core, far])
    w = np.linalg.inv(np.linalg.cholesky(np.diag([0.1**2, 0.1**2, 100.0**2])))
    truncated = kde_mod._truncated(data, w, 12, 2.3, 3785.0, 7.0).numpy()
    full = kde_mod._full_grid(data, np.zeros(3), w, 12, 2.3, 3785.0, 16).numpy()
    core_only = kde_mod._full_grid(core, np.zeros(3), w, 12, 2.3, 3785.0, 16).numpy()
    np.testing.assert_allclose(full, core_only, rtol=0, atol=1e-6 * full.max())
    np.testing.assert_allclose(truncated, full, rtol=0, atol=1e-5 * full.max())
