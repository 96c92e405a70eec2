"""Member galaxies and interlopers in the projected cylinder around each cluster.

- Members: N ~ Poisson(<N|M> exp(delta_N)), positions from an NFW profile (Navarro, Frenk & White
  1997) truncated at R200c with c_gal = factor * c200c, drawn exactly with the Lambert-W inverse of
  the enclosed mass; velocities isotropic Gaussian with 1D dispersion b_v sigma_DM (Evrard et al.
  2008 relation with its scatter; velocity bias b_v, Lau et al. 2010).
- Interlopers: galaxies of the same selection outside R200c but inside the cylinder
  |x|, |y| < 2.3 h^-1 Mpc and |v_los| < 3785 km/s. Their mean comoving density is
  n = integral <N|M> dn/dM dM (the member-count relation over the Tinker+08 mass function down to
  <N|M> = 1); a correlated excess n b_g b_c xi_lin(r) follows the linear correlation function
  (colossus) with the Tinker et al. (2010) halo bias b_c. v_los = a H(z) chi + peculiar velocity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import lambertw

from mocks.config import HALF_WIDTH_MPC_H, GalaxyConfig, ScalingConfig
from mocks.halos import HaloMassFunction, colossus_cosmology, nfw_mu
from mocks.scaling import mean_ln_ngal

__all__ = ["GALAXY_DTYPE", "InterloperField", "nfw_radius", "sample_galaxies", "GalaxyBatch"]

GALAXY_DTYPE = np.dtype(
    [
        ("cluster_index", np.int32),
        ("x_mpc_h", np.float32),
        ("y_mpc_h", np.float32),
        ("v_los_km_s", np.float32),
        ("is_member", np.bool_),
    ]
)


def nfw_radius(u: NDArray, c: NDArray) -> NDArray:
    """Radius in units of r_s enclosing fraction ``u`` of an NFW halo truncated at x = c.

    Solves mu(x) = u mu(c) with x = -1 - 1 / W_0(-exp(-1 - mu)) (W_0: principal Lambert W).
    """
    m = np.asarray(u, float) * nfw_mu(c)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = lambertw(-np.exp(-1.0 - m), 0).real
        x = -1.0 - 1.0 / w
    # near the branch point (m -> 0) use mu(x) ~ x^2/2 - 2x^3/3 instead
    small = m < 1e-8
    return np.where(
        small, np.sqrt(2 * np.maximum(m, 0)) * (1 + np.sqrt(2 * np.maximum(m, 0)) * 2 / 3), x
    )


@dataclass(frozen=True)
class InterloperField:
    """Per-snapshot interloper ingredients.

    Attributes
    ----------
    density : float
        Mean comoving density of selected galaxies [h^3 Mpc^-3].
    chi_half : float
        Half-depth of the sampled slab along the line of sight, comoving [h^-1 Mpc].
    kms_per_mpc : float
        a H(z): velocity per comoving h^-1 Mpc [km/s].
    xi_cdf, cells : ndarray
        Cumulative xi_lin dV over a grid of the slab and the cell centres (for 2-halo sampling).
    xi_volume : float
        Integral of xi_lin over the slab [h^-3 Mpc^3].
    """

    density: float
    chi_half: float
    kms_per_mpc: float
    xi_cdf: NDArray[np.float64]
    cells: NDArray[np.float64]
    cell_size: NDArray[np.float64]
    xi_volume: float

    @classmethod
    def build(
        cls, z: float, ez: float, cosmology: str, scaling: ScalingConfig, gal: GalaxyConfig
    ) -> InterloperField:
        """Tabulate the field density and the correlation-function weights at redshift ``z``."""
        kms = 100.0 * ez / (1 + z)
        chi_half = (gal.los_window_km_s + 4 * gal.peculiar_velocity_km_s) / kms
        if gal.interloper_density is not None:
            density = gal.interloper_density
        else:
            lgm_min = 14 - np.log10(scaling.ngal_pivot) / scaling.ngal_slope
            hmf = HaloMassFunction.build(z, cosmology, lgm_min=lgm_min, lgm_max=16.0)
            ngal = np.exp(
                mean_ln_ngal(np.exp(hmf.ln_m), scaling) + 0.5 * scaling.scatter["N_gal"] ** 2
            )
            density = float(np.trapezoid(ngal * hmf.dndlnm, hmf.ln_m))
        nx, nz = 24, 96
        edges_xy = np.linspace(-HALF_WIDTH_MPC_H, HALF_WIDTH_MPC_H, nx + 1)
        edges_z = np.linspace(-chi_half, chi_half, nz + 1)
        cx = 0.5 * (edges_xy[1:] + edges_xy[:-1])
        cz = 0.5 * (edges_z[1:] + edges_z[:-1])
        gx, gy, gz = np.meshgrid(cx, cx, cz, indexing="ij")
        r = np.sqrt(gx**2 + gy**2 + gz**2).ravel()
        cosmo = colossus_cosmology(cosmology)
        r_tab = np.geomspace(max(r.min(), 1e-2), r.max() * 1.01, 128)
        xi_tab = cosmo.correlationFunction(r_tab, z)
        xi = np.clip(np.interp(r, r_tab, xi_tab), 0, None)
        size = np.array([edges_xy[1] - edges_xy[0]] * 2 + [edges_z[1] - edges_z[0]])
        dv = float(np.prod(size))
        cdf = np.cumsum(xi * dv)
        cells = np.stack([gx.ravel(), gy.ravel(), gz.ravel()], axis=1)
        return cls(density, chi_half, kms, cdf, cells, size, float(cdf[-1]))

    @property
    def volume(self) -> float:
        """Comoving volume of the sampled slab [h^-3 Mpc^3]."""
        return (2 * HALF_WIDTH_MPC_H) ** 2 * 2 * self.chi_half


@dataclass(frozen=True)
class GalaxyBatch:
    """Galaxies of a batch and the per-cluster dynamical observables."""

    galaxies: NDArray  # GALAXY_DTYPE, cluster_index local to the batch
    n_members: NDArray[np.int64]
    n_in_cylinder: NDArray[np.int64]
    sigma_v_true: NDArray[np.float64]
    sigma_v_obs: NDArray[np.float64]
    member_cluster: NDArray[np.int64]  # all members (also outside the cylinder)
    member_x: NDArray[np.float64]
    member_y: NDArray[np.float64]


def _group_std(values: NDArray, groups: NDArray, n: int, ddof: int = 1) -> NDArray:
    cnt = np.bincount(groups, minlength=n).astype(float)
    s1 = np.bincount(groups, weights=values, minlength=n)
    s2 = np.bincount(groups, weights=values**2, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = (s2 - s1**2 / cnt) / (cnt - ddof)
    return np.where(cnt > ddof, np.sqrt(np.clip(var, 0, None)), np.nan)


def sample_galaxies(
    rng: np.random.Generator,
    gal: GalaxyConfig,
    field: InterloperField,
    n_expected: NDArray,
    sigma_1d: NDArray,
    r200c_com: NDArray,
    c200c: NDArray,
    halo_bias: NDArray,
) -> GalaxyBatch:
    """Draw members and interlopers for the clusters of a batch.

    Parameters
    ----------
    n_expected : ndarray
        Expected member count per cluster (already including intrinsic scatter).
    sigma_1d : ndarray
        One-dimensional galaxy velocity dispersion [km/s] (b_v sigma_DM).
    r200c_com : ndarray
        R200c, comoving [h^-1 Mpc].
    c200c : ndarray
        Halo concentration.
    halo_bias : ndarray
        Linear bias of each halo (for the correlated interlopers).
    """
    n = n_expected.size
    # --- members
    n_mem = rng.poisson(n_expected)
    mc = np.repeat(np.arange(n), n_mem)
    c_gal = gal.concentration_factor * c200c
    r = nfw_radius(rng.random(mc.size), c_gal[mc]) * (r200c_com / c_gal)[mc]
    cos_t = rng.uniform(-1, 1, mc.size)
    phi = rng.uniform(0, 2 * np.pi, mc.size)
    sin_t = np.sqrt(1 - cos_t**2)
    mx, my = r * sin_t * np.cos(phi), r * sin_t * np.sin(phi)
    v3 = rng.standard_normal((mc.size, 3)) * sigma_1d[mc, None]
    # 3D dispersion about the members' own mean velocity, as a 1D-equivalent sigma
    mean_v = np.stack([np.bincount(mc, v3[:, k], minlength=n) for k in range(3)], 1)
    mean_v /= np.maximum(n_mem, 1)[:, None]
    dev2 = np.sum((v3 - mean_v[mc]) ** 2, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        sig_true = np.sqrt(np.bincount(mc, dev2, minlength=n) / (3.0 * (n_mem - 1)))
    sig_true = np.where(n_mem > 1, sig_true, np.nan)
    # --- interlopers: uniform field + correlated (2-halo) excess, thinned outside R200c
    n_field = rng.poisson(field.density * field.volume, n)
    fc = np.repeat(np.arange(n), n_field)
    fpos = (rng.random((fc.size, 3)) * 2 - 1) * np.array(
        [HALF_WIDTH_MPC_H, HALF_WIDTH_MPC_H, field.chi_half]
    )
    parts_c, parts_pos = [fc], [fpos]
    if gal.two_halo:
        lam2 = field.density * gal.galaxy_bias * halo_bias * field.xi_volume
        n2 = rng.poisson(lam2)
        c2 = np.repeat(np.arange(n), n2)
        cell = np.searchsorted(field.xi_cdf, rng.random(c2.size) * field.xi_cdf[-1], side="right")
        cell = np.minimum(cell, field.cells.shape[0] - 1)
        pos2 = field.cells[cell] + (rng.random((c2.size, 3)) - 0.5) * field.cell_size
        parts_c.append(c2)
        parts_pos.append(pos2)
    ic = np.concatenate(parts_c)
    ipos = np.concatenate(parts_pos)
    outside = np.sum(ipos**2, axis=1) > r200c_com[ic] ** 2
    ic, ipos = ic[outside], ipos[outside]
    v_int = field.kms_per_mpc * ipos[:, 2] + gal.peculiar_velocity_km_s * rng.standard_normal(
        ic.size
    )
    # --- the cylinder
    cl = np.concatenate([mc, ic])
    gx = np.concatenate([mx, ipos[:, 0]])
    gy = np.concatenate([my, ipos[:, 1]])
    gv = np.concatenate([v3[:, 2], v_int])
    member = np.concatenate([np.ones(mc.size, bool), np.zeros(ic.size, bool)])
    inside = (
        (np.abs(gx) < HALF_WIDTH_MPC_H)
        & (np.abs(gy) < HALF_WIDTH_MPC_H)
        & (np.abs(gv) < gal.los_window_km_s)
    )
    order = np.argsort(cl[inside], kind="stable")
    out = np.empty(int(inside.sum()), dtype=GALAXY_DTYPE)
    out["cluster_index"] = cl[inside][order]
    out["x_mpc_h"] = gx[inside][order]
    out["y_mpc_h"] = gy[inside][order]
    out["v_los_km_s"] = gv[inside][order]
    out["is_member"] = member[inside][order]
    return GalaxyBatch(
        galaxies=out,
        n_members=n_mem,
        n_in_cylinder=np.bincount(cl[inside], minlength=n),
        sigma_v_true=sig_true,
        sigma_v_obs=_group_std(gv[inside].astype(float), cl[inside], n),
        member_cluster=mc,
        member_x=mx,
        member_y=my,
    )
