"""Spectroscopic member galaxies: projection, interlopers, velocity dispersion, dynamical mass.

Conventions (the same as the mocks' ``galaxies`` product):

* ``x_mpc_h``, ``y_mpc_h``: projected position relative to the cluster centre, comoving
  [h^-1 Mpc], along the model image's pixel axes (the TAN grid of
  :func:`survey.images.model_grid_wcs`: +x = west, +y = north), so galaxy positions and
  image pixels line up;
* ``v_los_km_s``: rest-frame line-of-sight velocity v = c (z - z_cl) / (1 + z_cl)
  (Harrison 1974; Danese, de Zotti & di Tullio 1980) [km/s];
* ``is_member``: True for galaxies kept by the interloper rejection.

Only galaxies inside the model's cylinder (|x|, |y| <= 2.3 h^-1 Mpc, |v| <= 3785 km/s;
Ho et al. 2023) are kept, interlopers included, as in the mocks.

Interlopers (the method is recorded in the result):

* ``mixture`` (default): the cylinder's velocities are modelled as a Gaussian cluster plus a
  background uniform in velocity over the cylinder (+-V_MAX), fitted by maximum likelihood with
  the expectation-maximisation algorithm (Dempster, Laird & Rubin 1977; as used for membership
  by Walker et al. 2009, AJ 137, 3109). Its sigma is the dispersion (it counts no interloper
  that happens to lie inside the cluster's velocity range, which a cut cannot avoid); members
  are the galaxies with membership probability > 0.5. In a wide field (uniform interlopers
  across the cylinder) the cuts below leave most interlopers in and inflate sigma_v by 25-60%
  in the synthetic tests, the mixture recovers it;
* ``shifting_gapper`` (Fadda et al. 1996, ApJ 473, 670: radial bins of at least 15 galaxies and
  0.4 h^-1 Mpc; in each bin the galaxies separated from the main body by a velocity gap
  > 1000 km/s are removed; iterate to convergence): good for a sparse field with interloper
  groups, blind to a dense field where interlopers fill every gap;
* ``sigma_clip`` (iterative 3-sigma clip about the biweight location with the biweight scale;
  Beers, Flynn & Gebhardt 1990, AJ 100, 32);
* ``none``.

Diagnostics (:func:`velocity_diagnostics`, in :attr:`GalaxyResult.diagnostics`): fewer than
:data:`MIN_MEMBERS` members, a truncated input velocity distribution
(:func:`truncation_test`), and the excess kurtosis.

Velocity dispersion: biweight scale (astropy ``biweight_scale``, c = 9) and the gapper
(Beers et al. 1990, eq. 11: sigma_G = sqrt(pi) / (n (n-1)) sum_i i (n-i) g_i), each with
bootstrap errors.

Dynamical mass: Evrard et al. 2008 (ApJ 672, 122), eq. 6 and Table 3:
sigma_DM = 1082.9 km/s (h(z) M200c / 1e15 Msun)^0.3361, lnsigma scatter 0.0426 at fixed mass.
With h(z) = h E(z), M200c [h^-1 Msun] = 1e15 (sigma / b_v / 1082.9)^(1/0.3361) / E(z);
then M200c -> M500c with the NFW + diemer19 conversion.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.stats import biweight_location, biweight_scale

from survey.catalogues import Reject
from survey.cosmology import CosmologySpec, convert_mass_definition, efunc
from survey.errors import GalaxyTableError
from survey.files import column_unit, float_column, read_table, require_columns, row_lines
from survey.images import HALF_WIDTH_MPC_H, model_grid_wcs
from survey.specs import GalaxySpec
from survey.velocity_checks import (
    MIN_MEMBERS,
    V_MAX_KMS,
    truncation_test,
    truncation_warning,
    velocity_diagnostics,
)

__all__ = [
    "C_KMS",
    "V_MAX_KMS",
    "EVRARD08",
    "read_galaxy_table",
    "project_galaxies",
    "sigma_clip_members",
    "shifting_gapper_members",
    "gapper_scale",
    "velocity_dispersion",
    "dynamical_mass",
    "GalaxyResult",
    "analyse_galaxies",
    "truncation_warning",
    "truncation_test",
    "mixture_members",
    "velocity_diagnostics",
    "MIN_MEMBERS",
]

logger = logging.getLogger(__name__)

C_KMS = 299_792.458
EVRARD08 = {"sigma15_kms": 1082.9, "alpha": 0.3361, "scatter_lnsigma": 0.0426}
InterloperMethod = Literal["mixture", "shifting_gapper", "sigma_clip", "none"]
Estimator = Literal["auto", "mixture", "biweight", "gapper"]
INTERLOPER_METHODS: tuple[str, ...] = ("mixture", "shifting_gapper", "sigma_clip", "none")


def read_galaxy_table(
    path: Path, spec: GalaxySpec | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Reject]]:
    """Read RA, Dec [deg] and redshift (or c*z) per galaxy; invalid rows become rejects.

    Without a spec the columns are guessed (:meth:`GalaxySpec.guess`).

    Raises
    ------
    CatalogueReadError
        Unreadable file or missing columns.
    GalaxyTableError
        Fewer than 5 valid galaxies.
    """
    path = Path(path)
    if spec is None:
        table = read_table(path)
    else:
        table = spec.read_table(path)
    spec = spec or GalaxySpec.guess(table.colnames)
    cols = [*spec.ra.columns(), *spec.dec.columns()]
    zref = spec.redshift or spec.velocity
    assert zref is not None
    cols.append(zref.column)
    require_columns(table, cols, path=path, spec_name=spec.name)
    ra = float_column(table, spec.ra.column, path=path) * spec.unit(
        spec.ra, column_unit(table, spec.ra.column), "angle"
    ).unit.to(u.deg)
    dec = float_column(table, spec.dec.column, path=path) * spec.unit(
        spec.dec, column_unit(table, spec.dec.column), "angle"
    ).unit.to(u.deg)
    raw = float_column(table, zref.column, path=path)
    if spec.velocity is not None:
        vunit = spec.unit(spec.velocity, column_unit(table, zref.column), "speed").unit
        z = raw * vunit.to(u.km / u.s) / C_KMS
    else:
        z = raw
    rejects: list[Reject] = []
    ok = np.ones(len(table), dtype=bool)
    checks = [
        (
            ~(np.isfinite(ra) & (ra >= 0) & (ra < 360)),
            spec.ra.column,
            ra,
            "RA missing or out of [0, 360) deg",
        ),
        (
            ~(np.isfinite(dec) & (np.abs(dec) <= 90)),
            spec.dec.column,
            dec,
            "Dec missing or out of [-90, 90] deg",
        ),
        (
            ~(np.isfinite(z) & (z > -0.01)),
            zref.column,
            raw,
            "redshift/velocity missing or negative",
        ),
    ]
    lines = row_lines(table)
    for bad, col, vals, reason in checks:
        for i in np.flatnonzero(bad & ok):
            line = None if lines is None else int(lines[i])
            rejects.append(Reject(int(i) + 1, col, repr(float(vals[i])), reason, line=line))
        ok &= ~bad
    if ok.sum() < 5:
        raise GalaxyTableError(f"{path}: only {int(ok.sum())} valid galaxies (need >= 5)")
    return ra[ok], dec[ok], z[ok], rejects


def project_galaxies(
    ra_deg: np.ndarray,
    dec_deg: np.ndarray,
    z: np.ndarray,
    ra_cl: float,
    dec_cl: float,
    z_cl: float,
    cosmology: CosmologySpec,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project galaxies to (x, y) [h^-1 Mpc comoving] and rest-frame v_los [km/s].

    Positions use the model grid's TAN projection (so they line up with image pixels); the
    comoving scale is D_M(z_cl) [h^-1 Mpc] per radian.
    """
    wcs, pixel_mpc_h, _ = model_grid_wcs(ra_cl, dec_cl, z_cl, cosmology)
    px, py = wcs.world_to_pixel(SkyCoord(np.asarray(ra_deg) * u.deg, np.asarray(dec_deg) * u.deg))
    c = (wcs.pixel_shape[0] - 1) / 2.0
    # pixel x grows to the west (CDELT1 < 0): x_mpc_h is along the image's +x axis
    x = (np.asarray(px) - c) * pixel_mpc_h
    y = (np.asarray(py) - c) * pixel_mpc_h
    v = C_KMS * (np.asarray(z, dtype=float) - z_cl) / (1.0 + z_cl)
    return x, y, v


def sigma_clip_members(v: np.ndarray, *, n_sigma: float = 3.0, max_iter: int = 20) -> np.ndarray:
    """Clip iteratively |v - biweight location| <= n_sigma * biweight scale; return the mask."""
    keep = np.isfinite(v)
    for _ in range(max_iter):
        if keep.sum() < 5:
            break
        loc = biweight_location(v[keep])
        scale = biweight_scale(v[keep], c=9.0)
        new = np.isfinite(v) & (np.abs(v - loc) <= n_sigma * scale)
        if np.array_equal(new, keep):
            break
        keep = new
    return keep


def _mixture_em(
    v: np.ndarray, v_max: float, max_iter: int = 1000, rtol: float = 1e-9
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """EM fit of f N(mu, sigma) (truncated to +-v_max) + (1 - f) U(-v_max, v_max), per row of v.

    Returns ``(mu, sigma, f, p)``: per row the fit, and per galaxy the membership probability.
    """
    from scipy.special import ndtr

    v = np.atleast_2d(v)
    mu = np.median(v, axis=1, keepdims=True)
    sigma = np.maximum(biweight_scale(v, c=9.0, axis=1)[:, None], 1.0)
    f = np.full_like(mu, 0.8)
    background = 1.0 / (2.0 * v_max)
    p = np.ones_like(v)
    for _ in range(max_iter):
        norm = ndtr((v_max - mu) / sigma) - ndtr((-v_max - mu) / sigma)
        g = f * np.exp(-0.5 * ((v - mu) / sigma) ** 2) / (math.sqrt(2 * math.pi) * sigma * norm)
        p = g / (g + (1.0 - f) * background)
        w = p.sum(axis=1, keepdims=True)
        f_new = w / v.shape[1]
        mu_new = (p * v).sum(axis=1, keepdims=True) / np.maximum(w, 1e-300)
        var = (p * (v - mu_new) ** 2).sum(axis=1, keepdims=True) / np.maximum(w, 1e-300)
        sigma_new = np.maximum(np.sqrt(var), 1.0)
        done = np.allclose(sigma_new, sigma, rtol=rtol, atol=0) and np.allclose(f_new, f, rtol=rtol)
        mu, sigma, f = mu_new, sigma_new, f_new
        if done:
            break
    return mu[:, 0], sigma[:, 0], f[:, 0], p


def mixture_members(
    v: np.ndarray, *, v_max: float = V_MAX_KMS, n_boot: int = 200, seed: int = 0
) -> tuple[np.ndarray, dict[str, float]]:
    """Gaussian cluster + uniform interlopers, fitted by EM (Walker et al. 2009); see module doc.

    Parameters
    ----------
    v : ndarray ['speed']
        Rest-frame line-of-sight velocities in the cylinder [km/s], all within +-v_max.
    v_max : float ['speed']
        Half-width of the velocity window the background is uniform over [km/s].
    n_boot : int
        Bootstrap resamples for the error of sigma.
    seed : int
        Bootstrap seed.

    Returns
    -------
    member : ndarray of bool
        Membership probability > 0.5.
    fit : dict
        ``sigma`` and ``sigma_err`` [km/s] (bootstrap), ``mean`` [km/s], ``member_fraction``
        (the fitted Gaussian's share f), ``n_effective`` (f N).
    """
    v = np.asarray(v, dtype=float)
    ok = np.isfinite(v)
    if ok.sum() < 5:
        raise GalaxyTableError(f"need at least 5 velocities for the mixture fit, got {ok.sum()}")
    mu, sigma, f, p = _mixture_em(v[ok], v_max)
    rng = np.random.default_rng(seed)
    vv = v[ok]
    boot = vv[rng.integers(0, vv.size, size=(n_boot, vv.size))]
    _, s_boot, _, _ = _mixture_em(boot, v_max)
    member = np.zeros(v.size, dtype=bool)
    member[np.flatnonzero(ok)] = p[0] > 0.5
    return member, {
        "sigma": float(sigma[0]),
        "sigma_err": float(np.std(s_boot, ddof=1)),
        "mean": float(mu[0]),
        "member_fraction": float(f[0]),
        "n_effective": float(f[0] * vv.size),
    }


def _main_body(v: np.ndarray, gap_kms: float) -> np.ndarray:
    """Mask of the galaxies connected (gaps <= gap_kms) to the one nearest the median."""
    order = np.argsort(v)
    vs = v[order]
    gaps = np.diff(vs) > gap_kms
    group = np.concatenate([[0], np.cumsum(gaps)])
    centre = group[np.argmin(np.abs(vs - np.median(vs)))]
    out = np.zeros(v.size, dtype=bool)
    out[order[group == centre]] = True
    return out


def shifting_gapper_members(
    r: np.ndarray,
    v: np.ndarray,
    *,
    gap_kms: float = 1000.0,
    min_per_bin: int = 15,
    min_bin_width: float = 0.4,
    max_iter: int = 20,
) -> np.ndarray:
    """Fadda et al. (1996) shifting gapper; returns the member mask.

    Parameters
    ----------
    r : ndarray ['length']
        Projected clustercentric radius [h^-1 Mpc].
    v : ndarray ['speed']
        Rest-frame line-of-sight velocity [km/s].
    gap_kms : float
        Velocity gap separating the main body from interlopers [km/s].
    min_per_bin, min_bin_width : int, float
        Each radial bin holds at least ``min_per_bin`` galaxies and spans at least
        ``min_bin_width`` [h^-1 Mpc].
    """
    keep = np.isfinite(v) & np.isfinite(r)
    for _ in range(max_iter):
        idx = np.flatnonzero(keep)
        idx = idx[np.argsort(r[idx])]
        new = np.zeros_like(keep)
        start = 0
        while start < idx.size:
            stop = min(start + min_per_bin, idx.size)
            while stop < idx.size and r[idx[stop - 1]] - r[idx[start]] < min_bin_width:
                stop += 1
            if idx.size - stop < min_per_bin:  # fold a short tail into the last bin
                stop = idx.size
            sel = idx[start:stop]
            new[sel[_main_body(v[sel], gap_kms)]] = True
            start = stop
        if np.array_equal(new, keep):
            break
        keep = new
    return keep


def gapper_scale(v: np.ndarray) -> float:
    """Gapper velocity dispersion (Beers, Flynn & Gebhardt 1990, eq. 11) [km/s]."""
    v = np.sort(np.asarray(v, dtype=float))
    n = v.size
    if n < 2:
        return float("nan")
    i = np.arange(1, n)
    return float(math.sqrt(math.pi) / (n * (n - 1)) * np.sum(i * (n - i) * np.diff(v)))


def velocity_dispersion(v: np.ndarray, *, n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """Biweight and gapper dispersions [km/s] with bootstrap 1-sigma errors.

    Raises
    ------
    GalaxyTableError
        Fewer than 5 galaxies.
    """
    v = np.asarray(v, dtype=float)
    v = v[np.isfinite(v)]
    if v.size < 5:
        raise GalaxyTableError(f"need at least 5 member velocities for a dispersion, got {v.size}")
    rng = np.random.default_rng(seed)
    samples = v[rng.integers(0, v.size, size=(n_boot, v.size))]
    bw = biweight_scale(samples, c=9.0, axis=1)
    gp = np.array([gapper_scale(s) for s in samples])
    return {
        "n": int(v.size),
        "biweight": float(biweight_scale(v, c=9.0)),
        "biweight_err": float(np.nanstd(bw, ddof=1)),
        "gapper": gapper_scale(v),
        "gapper_err": float(np.nanstd(gp, ddof=1)),
        "location": float(biweight_location(v, c=6.0)),
    }


def dynamical_mass(
    sigma_kms: float,
    sigma_err_kms: float,
    z: float,
    cosmology: CosmologySpec,
    *,
    velocity_bias: float = 1.0,
) -> dict[str, float]:
    """Evrard et al. (2008) dynamical mass, M200c and M500c [h^-1 Msun], with errors in dex.

    Parameters
    ----------
    sigma_kms, sigma_err_kms : float ['speed']
        Galaxy velocity dispersion and its 1-sigma error [km/s].
    z : float ['redshift']
        Cluster redshift.
    cosmology : CosmologySpec
        For E(z) and the M200c -> M500c conversion.
    velocity_bias : float
        b_v = sigma_gal / sigma_DM (1.0-1.1 in simulations, Lau et al. 2010).

    Returns
    -------
    dict
        ``log10_m200c``, ``log10_m500c``, ``err_stat_dex`` (from the dispersion error only),
        ``err_dex`` (adding Evrard's lnsigma scatter 0.0426 / alpha in quadrature).
    """
    if not (sigma_kms > 0 and math.isfinite(sigma_kms)):
        raise GalaxyTableError(f"velocity dispersion must be finite and > 0, got {sigma_kms}")
    a, s15 = EVRARD08["alpha"], EVRARD08["sigma15_kms"]
    sigma_dm = sigma_kms / velocity_bias
    m200 = 1e15 * (sigma_dm / s15) ** (1.0 / a) / efunc(z, cosmology)
    frac = sigma_err_kms / sigma_kms if sigma_err_kms > 0 else 0.0
    err_stat = frac / a / math.log(10)
    err_tot = math.hypot(frac, EVRARD08["scatter_lnsigma"]) / a / math.log(10)
    m500 = float(
        convert_mass_definition(np.array([m200]), np.array([z]), "200c", "500c", cosmology)[0]
    )
    return {
        "log10_m200c": math.log10(m200),
        "log10_m500c": math.log10(m500),
        "err_stat_dex": err_stat,
        "err_dex": err_tot,
        "velocity_bias": velocity_bias,
    }


@dataclass
class GalaxyResult:
    """Projected galaxies in the model cylinder and the dynamical summary.

    ``interlopers`` and ``estimator`` record the interloper method and the dispersion the mass
    was computed from; ``diagnostics`` is :func:`velocity_diagnostics`' dict (flags
    ``few_members`` and ``truncated``, the excess kurtosis, warnings).
    """

    x_mpc_h: np.ndarray
    y_mpc_h: np.ndarray
    v_los_km_s: np.ndarray
    is_member: np.ndarray
    n_input: int
    n_in_cylinder: int
    n_members: int
    n_gal_aperture: int
    aperture_mpc_h: float
    interlopers: str
    dispersion: dict[str, float]
    mass: dict[str, float]
    notes: list[str] = field(default_factory=list)
    estimator: str = "biweight"
    diagnostics: dict[str, Any] = field(default_factory=dict)

    def arrays(self) -> dict[str, np.ndarray]:
        """Return the ``galaxies`` product columns (mock convention)."""
        return {
            "x_mpc_h": self.x_mpc_h.astype(np.float64),
            "y_mpc_h": self.y_mpc_h.astype(np.float64),
            "v_los_km_s": self.v_los_km_s.astype(np.float64),
            "is_member": self.is_member.astype(bool),
        }


def analyse_galaxies(
    ra_deg: np.ndarray,
    dec_deg: np.ndarray,
    z: np.ndarray,
    *,
    ra_cl: float,
    dec_cl: float,
    z_cl: float,
    cosmology: CosmologySpec,
    interlopers: InterloperMethod = "mixture",
    aperture_mpc_h: float = HALF_WIDTH_MPC_H,
    estimator: Estimator = "auto",
    velocity_bias: float = 1.0,
    n_boot: int = 1000,
    seed: int = 0,
) -> GalaxyResult:
    """Project, clean and summarise a member-galaxy table (see module docstring).

    ``estimator='auto'`` takes the mixture's sigma with ``interlopers='mixture'`` and the
    biweight of the members otherwise.

    Raises
    ------
    GalaxyTableError
        Fewer than 5 members remain in the cylinder, or an unknown method.
    """
    if interlopers not in INTERLOPER_METHODS:
        raise GalaxyTableError(
            f"unknown interloper method {interlopers!r}; choose one of {list(INTERLOPER_METHODS)}"
        )
    x, y, v = project_galaxies(ra_deg, dec_deg, z, ra_cl, dec_cl, z_cl, cosmology)
    inside = (np.abs(x) <= HALF_WIDTH_MPC_H) & (np.abs(y) <= HALF_WIDTH_MPC_H)
    inside &= np.abs(v) <= V_MAX_KMS
    x, y, v = x[inside], y[inside], v[inside]
    r = np.hypot(x, y)
    fit: dict[str, float] = {}
    if interlopers == "mixture":
        if v.size < 5:
            member = np.zeros(v.size, dtype=bool)
        else:
            member, fit = mixture_members(v, n_boot=min(n_boot, 400), seed=seed)
    elif interlopers == "shifting_gapper":
        member = shifting_gapper_members(r, v)
    elif interlopers == "sigma_clip":
        member = sigma_clip_members(v)
    else:
        member = np.ones(v.size, dtype=bool)
    if member.sum() < 5:
        raise GalaxyTableError(
            f"only {int(member.sum())} members left in the +-{HALF_WIDTH_MPC_H} h^-1 Mpc, "
            f"+-{V_MAX_KMS} km/s cylinder of {len(ra_deg)} galaxies; check the centre and redshift"
        )
    disp = velocity_dispersion(v[member], n_boot=n_boot, seed=seed)
    if fit:
        disp.update(
            mixture=fit["sigma"],
            mixture_err=fit["sigma_err"],
            mixture_mean=fit["mean"],
            mixture_member_fraction=fit["member_fraction"],
        )
    if estimator == "auto":
        estimator = "mixture" if fit else "biweight"
    if estimator not in disp:
        raise GalaxyTableError(
            f"estimator {estimator!r} needs interlopers='mixture'; use biweight or gapper"
        )
    diagnostics = velocity_diagnostics(v, v[member], disp[estimator])
    diagnostics.update(interlopers=interlopers, estimator=estimator)
    mass = dynamical_mass(
        disp[estimator], disp[f"{estimator}_err"], z_cl, cosmology, velocity_bias=velocity_bias
    )
    notes = [
        f"interlopers: {interlopers}; {int((~member).sum())} of {v.size} galaxies in the cylinder "
        "flagged",
        f"dynamical mass from the {estimator} dispersion via Evrard et al. 2008 "
        f"(b_v={velocity_bias}), M200c->M500c with NFW + diemer19",
    ]
    for warning in diagnostics["warnings"]:
        logger.warning("%s", warning)
        notes.append(warning)
    return GalaxyResult(
        x_mpc_h=x,
        y_mpc_h=y,
        v_los_km_s=v,
        is_member=member,
        n_input=len(ra_deg),
        n_in_cylinder=int(inside.sum()),
        n_members=int(member.sum()),
        n_gal_aperture=int((member & (r <= aperture_mpc_h)).sum()),
        aperture_mpc_h=aperture_mpc_h,
        interlopers=interlopers,
        dispersion=disp,
        mass=mass,
        notes=notes,
        estimator=estimator,
        diagnostics=diagnostics,
    )
