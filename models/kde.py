"""Galaxy phase-space density cubes for the multimodal network.

Ho et al. (2023, arXiv:2303.00005, Sect. 2.3) feed the multimodal CNN a 3-D Gaussian kernel
density estimate of the projected positions and line-of-sight velocities (x, y, v_los) of *all*
galaxies in the cylinder (interlopers included), evaluated at the 64^3 bin centres of a grid
spanning +-2.3 h^-1 Mpc and +-3785 km/s and normalised to sum 1. The authors used
``scipy.stats.gaussian_kde(bw_method=0.15)``; this module reproduces that estimator exactly
(kernel covariance = 0.15^2 x the unbiased sample covariance, equal weights) but evaluates it
vectorised in torch:

with the Cholesky factor ``L`` of the kernel covariance and ``W = L^-1`` (lower triangular), the
whitened coordinates are ``z1 = W11 dx``, ``z2 = W21 dx + W22 dy``,
``z3 = W31 dx + W32 dy + W33 dv``, and each kernel factorises as
``exp(-(z1g - z1i)^2 / 2) exp(-(z2g - z2i)^2 / 2) exp(-(z3g - z3i)^2 / 2)``. The first two
factors live on the (x) and (x, y) sub-grids, so only the last one is evaluated on the full
cube: one exponential per voxel and galaxy, no 3x3 quadratic forms.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from models.data import RaggedGalaxies
from models.errors import KDEError

__all__ = ["grid_centres", "kde_cube", "kde_cubes", "KDE_DEFAULTS"]

log = logging.getLogger(__name__)

#: Paper settings: 64 bins over +-2.3 h^-1 Mpc comoving and +-3785 km/s, bandwidth factor 0.15.
KDE_DEFAULTS: dict[str, float | int] = {
    "n_grid": 64,
    "half_width_mpc_h": 2.3,
    "half_width_km_s": 3785.0,
    "bw_method": 0.15,
}


def grid_centres(n_grid: int, half_width: float) -> np.ndarray:
    """Centres of ``n_grid`` equal bins over ``[-half_width, half_width]``."""
    edges = np.linspace(-half_width, half_width, n_grid + 1)
    return 0.5 * (edges[:-1] + edges[1:])


def _kernel_whitening(data: np.ndarray, bw_method: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and lower-triangular whitening matrix ``W = L^-1`` of the kernel covariance."""
    cov = np.cov(data, rowvar=True, bias=False) * bw_method**2
    try:
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError as exc:
        raise KDEError(
            "galaxy (x, y, v) covariance is singular (collinear or repeated galaxies); "
            "scipy.stats.gaussian_kde fails on such input too"
        ) from exc
    return data.mean(axis=1), np.linalg.inv(chol)


def kde_cube(
    x: np.ndarray,
    y: np.ndarray,
    v: np.ndarray,
    *,
    n_grid: int = 64,
    half_width_mpc_h: float = 2.3,
    half_width_km_s: float = 3785.0,
    bw_method: float = 0.15,
    truncate_sigma: float | None = 7.0,
    galaxy_chunk: int = 16,
) -> np.ndarray:
    """Gaussian KDE of galaxies in (x, y, v_los), on the bin centres of a cube, summing to 1.

    Parameters
    ----------
    x, y : ndarray, shape (n,)
        Projected offsets from the cluster centre, in h^-1 Mpc comoving.
    v : ndarray, shape (n,)
        Line-of-sight velocities, in km/s.
    n_grid : int
        Bins per axis (paper: 64).
    half_width_mpc_h : float
        Half-width of the spatial axes, in h^-1 Mpc comoving (paper: 2.3).
    half_width_km_s : float
        Half-width of the velocity axis, in km/s (paper: 3785).
    bw_method : float
        Scott-style bandwidth factor as in ``scipy.stats.gaussian_kde`` (paper: 0.15).
    truncate_sigma : float or None
        Evaluate each kernel only inside the box of +-``truncate_sigma`` marginal standard
        deviations around its galaxy (voxels outside lie beyond that Mahalanobis distance, so
        each neglected term is below exp(-truncate_sigma^2 / 2) of the kernel peak: 2e-11 at
        the default 7). None evaluates every kernel on the full cube, as scipy does.
    galaxy_chunk : int
        Galaxies evaluated at once on the full cube (``truncate_sigma=None``).

    Returns
    -------
    cube : ndarray of float32, shape (n_grid, n_grid, n_grid)
        Density at the bin centres with axes (x, y, v), normalised to sum 1.

    Raises
    ------
    KDEError
        Fewer than 4 galaxies (a 3-D covariance needs at least 4) or a singular covariance.
    """
    data = np.vstack([np.asarray(x, float), np.asarray(y, float), np.asarray(v, float)])
    if data.shape[1] < 4:
        raise KDEError(f"a 3-D KDE needs at least 4 galaxies; got {data.shape[1]}")
    if not np.all(np.isfinite(data)):
        raise KDEError("galaxy x, y or v contains non-finite values")
    mean, w = _kernel_whitening(data, bw_method)
    if truncate_sigma is None:
        cube = _full_grid(data, mean, w, n_grid, half_width_mpc_h, half_width_km_s, galaxy_chunk)
    else:
        cube = _truncated(data, w, n_grid, half_width_mpc_h, half_width_km_s, truncate_sigma)
    cube = torch.as_tensor(cube)
    total = float(cube.sum())
    if not total > 0:
        raise KDEError(
            "KDE vanishes on the whole grid: the galaxies lie far outside "
            f"+-{half_width_mpc_h} h^-1 Mpc x +-{half_width_km_s} km/s"
        )
    return (cube / total).numpy()


def _full_grid(
    data: np.ndarray,
    mean: np.ndarray,
    w: np.ndarray,
    n_grid: int,
    hw_x: float,
    hw_v: float,
    galaxy_chunk: int,
) -> torch.Tensor:
    """Every kernel on every voxel (scipy's evaluation, factorised)."""
    gx = grid_centres(n_grid, hw_x) - mean[0]
    gy = grid_centres(n_grid, hw_x) - mean[1]
    gv = grid_centres(n_grid, hw_v) - mean[2]
    z = w @ (data - mean[:, None])  # whitened galaxies, (3, n)
    t = torch.float64
    zt = torch.as_tensor(z, dtype=t)
    gx_t, gy_t, gv_t = (torch.as_tensor(a, dtype=t) for a in (gx, gy, gv))
    # Factor 1 on the x axis, factor 2 on the (x, y) plane: (n, G) and (n, G, G).
    f1 = torch.exp(-0.5 * (w[0, 0] * gx_t[None, :] - zt[0][:, None]) ** 2)
    z2g = w[1, 0] * gx_t[:, None] + w[1, 1] * gy_t[None, :]
    f2 = torch.exp(-0.5 * (z2g[None] - zt[1][:, None, None]) ** 2)
    plane = (f1[:, :, None] * f2).to(torch.float32)  # (n, G, G)
    s = (w[2, 0] * gx_t[:, None] + w[2, 1] * gy_t[None, :]).to(torch.float32)  # (G, G)
    w3v = (w[2, 2] * gv_t).to(torch.float32)  # (G,)
    z3 = zt[2].to(torch.float32)
    base = s[:, :, None] + w3v[None, None, :]  # (G, G, G)
    cube = torch.zeros((n_grid,) * 3, dtype=torch.float32)
    for a in range(0, z3.numel(), galaxy_chunk):
        d = base[None] - z3[a : a + galaxy_chunk, None, None, None]
        e = torch.exp(d.square_().mul_(-0.5))
        cube += (plane[a : a + galaxy_chunk, :, :, None] * e).sum(0)
    return cube


def _truncated(
    data: np.ndarray, w: np.ndarray, n_grid: int, hw_x: float, hw_v: float, k: float
) -> torch.Tensor:
    """Each kernel on the voxels within +-k marginal sigma of its galaxy, scatter-added."""
    half_widths = np.array([hw_x, hw_x, hw_v])
    step = 2.0 * half_widths / n_grid
    sig = np.sqrt(np.diag(np.linalg.inv(w) @ np.linalg.inv(w).T))  # kernel marginal std
    half = np.ceil(k * sig / step).astype(int)
    box = 2 * half + 1
    centre = np.floor((data.T + half_widths) / step).astype(np.int64)  # (n, 3)
    start = centre - half  # (n, 3): first voxel of each galaxy's box (may be off-grid)
    wide = box >= n_grid  # a kernel wider than the grid: evaluate the whole axis
    box[wide], start[:, wide] = n_grid, 0
    # Boxes entirely off the grid are parked in a padding margin that is cropped at the end,
    # so no per-voxel masking is needed.
    pad = box.max()
    start = np.clip(start, -pad, n_grid)
    idx = [start[:, a, None] + np.arange(box[a])[None, :] for a in range(3)]  # (n, box_a)
    # Offsets voxel centre - galaxy per axis, whitened with the lower-triangular W.
    d = [(-half_widths[a] + (idx[a] + 0.5) * step[a]) - data[a][:, None] for a in range(3)]
    z1 = w[0, 0] * d[0]  # (n, bx)
    z2 = w[1, 0] * d[0][:, :, None] + w[1, 1] * d[1][:, None, :]  # (n, bx, by)
    z3 = (w[2, 0] * d[0][:, :, None] + w[2, 1] * d[1][:, None, :])[..., None] + w[2, 2] * d[2][
        :, None, None, :
    ]  # (n, bx, by, bv)
    q = (z1 * z1)[:, :, None, None] + (z2 * z2)[..., None] + z3 * z3
    val = np.exp(-0.5 * q)
    size = n_grid + 2 * pad
    flat = (
        (idx[0] + pad)[:, :, None, None] * size * size
        + (idx[1] + pad)[:, None, :, None] * size
        + (idx[2] + pad)[:, None, None, :]
    )
    cube = np.bincount(flat.ravel(), weights=val.ravel(), minlength=size**3)
    cube = cube.reshape(size, size, size)[pad:-pad, pad:-pad, pad:-pad]
    return torch.as_tensor(np.ascontiguousarray(cube, dtype=np.float32))


def _cache_key(x: np.ndarray, y: np.ndarray, v: np.ndarray, params: dict) -> str:
    h = hashlib.sha256()
    for a in (x, y, v):
        h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
        h.update(b"|")
    h.update(repr(sorted(params.items())).encode())
    return h.hexdigest()


def kde_cubes(
    galaxies: RaggedGalaxies,
    *,
    n_grid: int = 64,
    half_width_mpc_h: float = 2.3,
    half_width_km_s: float = 3785.0,
    bw_method: float = 0.15,
    cache_dir: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """KDE cubes of every cluster, optionally cached on disk by content hash.

    Parameters
    ----------
    galaxies : RaggedGalaxies
        Galaxies of N clusters.
    n_grid, half_width_mpc_h, half_width_km_s, bw_method
        As in :func:`kde_cube`.
    cache_dir : path, optional
        Directory of ``<sha256>.npz`` files (key: the galaxies' coordinates and the grid
        parameters), reused across runs and folds.
    progress : callable, optional
        Called as ``progress(done, total)`` after each cluster.

    Returns
    -------
    cubes : ndarray of float32, shape (N, n_grid, n_grid, n_grid)
        Each normalised to sum 1; clusters with fewer than 4 galaxies get a uniform cube
        (logged as a warning), which carries no dynamical information.
    """
    params = {
        "n_grid": int(n_grid),
        "half_width_mpc_h": float(half_width_mpc_h),
        "half_width_km_s": float(half_width_km_s),
        "bw_method": float(bw_method),
    }
    cache = Path(cache_dir) if cache_dir is not None else None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
    n = galaxies.n_clusters
    out = np.empty((n,) + (n_grid,) * 3, dtype=np.float32)
    uniform = 0
    for i in range(n):
        x, y, v = galaxies.cluster(i)
        path = cache / f"{_cache_key(x, y, v, params)}.npz" if cache is not None else None
        if path is not None and path.exists():
            out[i] = np.load(path)["cube"]
        else:
            try:
                out[i] = kde_cube(x, y, v, **params)
            except KDEError:
                out[i] = 1.0 / n_grid**3
                uniform += 1
            if path is not None:
                tmp = path.with_suffix(".tmp.npz")
                np.savez_compressed(tmp, cube=out[i])
                tmp.replace(path)
        if progress is not None:
            progress(i + 1, n)
    if uniform:
        log.warning(
            "%d of %d clusters have < 4 galaxies or a degenerate covariance: uniform KDE cubes",
            uniform,
            n,
        )
    return out
