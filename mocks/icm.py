"""Intracluster-medium emission model: projected beta-model components with morphology.

Each cluster is a sum of isothermal components, each an elliptical projected beta model
(Cavaliere & Fusco-Femiano 1976): S(R) ∝ (1 + R^2/r_c^2)^(1/2 - 3 beta), whose enclosed
fraction 1 - (1 + R^2/r_c^2)^(3/2 - 3 beta) is analytic, so luminosities inside apertures and the
inverse-CDF photon sampling need no numerical projection. Components:

- ``ambient``: the bulk ICM (r_c ~ 0.18 R500, beta ~ 2/3), carrying the core-excised luminosity;
- ``cool core``: a compact, cooler component (r_c ~ 0.035 R500, kT = 0.6 kT) in cool-core
  clusters. Because its luminosity scatters widely (log-normal) and only cool cores have it, the
  total L_X scatters more than the core-excised one, as observed (Pratt et al. 2009; Maughan
  2007; Mantz et al. 2018);
- ``subcluster``: in merger transients, a second halo whose mass ratio comes from the
  Fakhouri+10 kernel (mocks/assembly.py) and whose separation follows its orbit after the first
  core passage (:func:`subcluster_offset`; its luminosity from the same L-M relation).

Merger transients (:func:`merger_boosts`), **off by default** (peak factors 1 in the config and
both presets; docs/mocks.md says why): when switched on, the ambient gas of a merging cluster is
temporarily more luminous and hotter than in equilibrium (idealised mergers of Ricker & Sarazin
2001, ApJ 561, 621; Randall, Sarazin & Ricker 2002, ApJ 577, 579), by a peak factor that grows
with the mass ratio and decays after the core passage. The extra luminosity comes from the
compressed cores, so it is a compact ``merger core`` component (kind MERGER_CORE) on the main
halo's centre, and the gas is hotter (the ambient and merger-core kT are boosted). The boosted
L and T are those of the components, so the photons and the truth columns carry the same boost.
With the boosts off no MERGER_CORE component is made and every boost is exactly 1.

Ellipticity keeps the area (R_ell^2 = q x'^2 + y'^2 / q), so aperture luminosities are those of
the circular model. Centroid offsets are Rayleigh distributed. Lengths are comoving h^-1 Mpc.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from mocks.config import IcmConfig

__all__ = [
    "AMBIENT",
    "COOL_CORE",
    "SUBCLUSTER",
    "MERGER_CORE",
    "Components",
    "enclosed_fraction",
    "emission_shape",
    "build_components",
    "merger_boosts",
    "subcluster_offset",
]

AMBIENT, COOL_CORE, SUBCLUSTER, MERGER_CORE = 0, 1, 2, 3


def enclosed_fraction(radius: NDArray, rc: NDArray, beta: NDArray) -> NDArray:
    """Fraction of a projected beta model's total flux inside projected ``radius`` (beta > 1/2)."""
    x2 = (np.asarray(radius, float) / np.asarray(rc, float)) ** 2
    return 1.0 - (1.0 + x2) ** (1.5 - 3.0 * np.asarray(beta, float))


def emission_shape(rc_r500: NDArray, beta: NDArray) -> NDArray:
    """Projected emission measure inside R500c per (M_gas(<R500c))^2, in units of R500c^-3.

    For a beta-model density rho = rho0 (1 + r^2/r_c^2)^(-3 beta / 2) with x_c = r_c / R500c and
    X = 1 / x_c: M_gas(<R500c) = 4 pi rho0 r_c^3 I_m with I_m = X^3/3 2F1(3/2, 3 beta/2; 5/2; -X^2),
    the emission measure over all space is rho0^2 4 pi r_c^3 sqrt(pi)/4 Gamma(3 beta - 3/2) /
    Gamma(3 beta), of which the fraction 1 - (1 + X^2)^(3/2 - 3 beta) projects inside R500c.
    At fixed M_gas and R500c the luminosity is proportional to this shape factor.
    """
    from scipy.special import gamma, hyp2f1

    xc = np.asarray(rc_r500, float)
    b = np.asarray(beta, float)
    big_x = 1.0 / xc
    i_m = big_x**3 / 3.0 * hyp2f1(1.5, 1.5 * b, 2.5, -(big_x**2))
    i_tot = np.sqrt(np.pi) / 4.0 * gamma(3 * b - 1.5) / gamma(3 * b)
    return i_tot * enclosed_fraction(1.0, xc, b) / (4 * np.pi * xc**3 * i_m**2)


def merger_boosts(xi: NDArray, t_since_gyr: NDArray, icm: IcmConfig) -> tuple[NDArray, NDArray]:
    """Transient L_X and T boosts of a merging cluster (1 where there is no merger).

    Peak boosts at the core passage B(xi) = B(1)^(xi^p), with B(1) and p fixed by the 1:1 and
    1:3 luminosity jumps of Ricker & Sarazin (2001) (``merger_lx_boost_equal_mass``,
    ``merger_lx_boost_one_third``); the temperature uses the same xi^p. Each decays
    exponentially with the time since core passage: B(xi, t) = 1 + (B(xi) - 1) exp(-t / tau).

    Parameters
    ----------
    xi : ndarray
        Mass ratio M2/M1 in (0, 1]; 0 (or NaN time) means no merger.
    t_since_gyr : ndarray
        Time since the first core passage [Gyr]; NaN where there is no merger.
    icm : IcmConfig
        Boost parameters.

    Returns
    -------
    boost_l, boost_t : ndarray
        Multiplicative factors (>= 1) for the ambient luminosity and temperature.
    """
    x = np.asarray(xi, float)
    t = np.asarray(t_since_gyr, float)
    on = (x > 0) & np.isfinite(t)
    b1, b3 = icm.merger_lx_boost_equal_mass, icm.merger_lx_boost_one_third
    p = np.log(np.log(b3) / np.log(b1)) / np.log(1.0 / 3.0) if b3 > 1 else 1.0
    xs = np.where(on, np.clip(x, 1e-6, 1.0), 1.0) ** p
    tt = np.where(on, np.maximum(t, 0.0), 0.0)
    peak_l = icm.merger_lx_boost_equal_mass**xs
    peak_t = icm.merger_t_boost_equal_mass**xs
    boost_l = 1.0 + (peak_l - 1.0) * np.exp(-tt / icm.merger_lx_decay_gyr)
    boost_t = 1.0 + (peak_t - 1.0) * np.exp(-tt / icm.merger_t_decay_gyr)
    return np.where(on, boost_l, 1.0), np.where(on, boost_t, 1.0)


def subcluster_offset(
    phase: NDArray, orient: NDArray, r500_com: NDArray, icm: IcmConfig
) -> tuple[NDArray, NDArray]:
    """Projected position of the subcluster relative to the main halo (comoving, like r500_com).

    After the first core passage the subcluster moves out to the apocentre and back:
    r(t) = r_apo sin(pi t / t_vis) (3D, r_apo = ``sub_apocentre_r500`` R500c), seen at an angle
    arccos(cos_i) to the line of sight and at position angle ``orient[:, 1]`` on the sky.

    Parameters
    ----------
    phase : ndarray
        Time since core passage over the visibility window, in [0, 1] (NaN: no merger -> 0).
    orient : ndarray
        Shape (n, 2): cos of the orbit's angle to the line of sight, position angle [rad].
    r500_com : ndarray
        R500c of the main halo.
    """
    ph = np.nan_to_num(np.asarray(phase, float), nan=0.0)
    o = np.nan_to_num(np.asarray(orient, float), nan=0.0)
    r3d = icm.sub_apocentre_r500 * np.sin(np.pi * np.clip(ph, 0.0, 1.0)) * r500_com
    proj = r3d * np.sqrt(np.clip(1.0 - o[:, 0] ** 2, 0.0, 1.0))
    return proj * np.cos(o[:, 1]), proj * np.sin(o[:, 1])


@dataclass(frozen=True)
class Components:
    """Flat arrays over all emission components of a batch (one row per component).

    Attributes
    ----------
    cluster : ndarray of int
        Index of the owning cluster within the batch.
    kind : ndarray of int
        AMBIENT, COOL_CORE, SUBCLUSTER or MERGER_CORE.
    x0, y0 : ndarray
        Centre relative to the map centre, comoving [h^-1 Mpc].
    rc : ndarray
        Core radius, comoving [h^-1 Mpc].
    beta : ndarray
        Beta-model slope.
    q, theta : ndarray
        Axis ratio (<= 1) and position angle [rad] of the major axis from the x axis.
    lum500 : ndarray
        Rest 0.5-2 keV luminosity inside projected ``r_norm`` [erg/s].
    r_norm : ndarray
        Aperture of ``lum500`` (the R500c of the halo the component belongs to), comoving.
    kt : ndarray
        Temperature [keV].
    """

    cluster: NDArray[np.int64]
    kind: NDArray[np.int64]
    x0: NDArray[np.float64]
    y0: NDArray[np.float64]
    rc: NDArray[np.float64]
    beta: NDArray[np.float64]
    q: NDArray[np.float64]
    theta: NDArray[np.float64]
    lum500: NDArray[np.float64]
    r_norm: NDArray[np.float64]
    kt: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.cluster.size)

    def luminosity_within(self, radius: NDArray) -> NDArray:
        """Luminosity inside projected ``radius`` around each component's own centre [erg/s]."""
        return (
            self.lum500
            * enclosed_fraction(radius, self.rc, self.beta)
            / enclosed_fraction(self.r_norm, self.rc, self.beta)
        )


def _rayleigh(rng: np.random.Generator, scale: NDArray) -> tuple[NDArray, NDArray]:
    r = scale * np.sqrt(-2.0 * np.log1p(-rng.random(scale.shape)))
    phi = rng.uniform(0, 2 * np.pi, scale.shape)
    return r * np.cos(phi), r * np.sin(phi)


def build_components(
    rng: np.random.Generator,
    icm: IcmConfig,
    r500_com: NDArray,
    lum_ambient: NDArray,
    kt: NDArray,
    cool_core: NDArray,
    merger: NDArray,
    cc_ratio: NDArray,
    sub_lum: NDArray,
    sub_kt: NDArray,
    sub_r500_com: NDArray,
    *,
    sub_offset: tuple[NDArray, NDArray],
    merger_core_lum: NDArray | None = None,
    rc_r500: NDArray | None = None,
    beta: NDArray | None = None,
) -> Components:
    """Draw shapes and positions and assemble the emission components of a batch.

    Parameters
    ----------
    rng : Generator
        Random stream of the batch.
    icm : IcmConfig
        Structure parameters.
    r500_com : ndarray
        R500c of each cluster, comoving [h^-1 Mpc], shape (n,).
    lum_ambient : ndarray
        Ambient-component luminosity inside R500c [erg/s].
    kt : ndarray
        Cluster temperature [keV].
    cool_core, merger : ndarray of bool
        Dynamical state flags.
    cc_ratio : ndarray
        L(cool core, < R500c) / lum_ambient (used where ``cool_core``).
    sub_lum, sub_kt, sub_r500_com : ndarray
        Subcluster luminosity inside its own R500c, temperature and R500c (where ``merger``).
    sub_offset : (ndarray, ndarray)
        Projected subcluster position relative to the main halo's X-ray centre (comoving; from
        :func:`subcluster_offset`, where ``merger``).
    merger_core_lum : ndarray, optional
        Transient luminosity of the compressed merging cores inside R500c [erg/s] (the
        ``(boost_l - 1)`` part of :func:`merger_boosts` times the ambient luminosity); a compact
        component where > 0.
    rc_r500, beta : ndarray, optional
        Core radius / R500c and beta of the ambient component, set by the halo (mock v2);
        drawn from the config's log-normal / normal when not given.

    Returns
    -------
    Components
    """
    n = r500_com.size
    idx = np.arange(n)
    disturbed = ~cool_core
    # ambient component: shape, orientation and centroid offset
    beta_draw = np.clip(rng.normal(icm.beta_mean, icm.beta_sd, n), 0.56, 1.1)
    rc_draw = np.clip(
        icm.rc_median_r500 * np.exp(icm.rc_scatter_ln * rng.standard_normal(n)), 0.03, 0.6
    )
    beta = beta_draw if beta is None else np.clip(beta, 0.56, 1.1)
    rc = rc_draw if rc_r500 is None else np.clip(rc_r500, 0.03, 0.6)
    q = np.where(
        merger,
        rng.uniform(*icm.axis_ratio_merger, n),
        rng.uniform(*icm.axis_ratio_relaxed, n),
    )
    theta = rng.uniform(0, np.pi, n)
    off_scale = np.where(disturbed, icm.offset_disturbed_r500, icm.offset_relaxed_r500) * r500_com
    dx, dy = _rayleigh(rng, off_scale)
    # cool-core component (same centre and orientation; rounder, compact, cooler)
    cc_rc = np.clip(icm.cc_rc_median_r500 * np.exp(0.3 * rng.standard_normal(n)), 0.01, 0.1)
    # subcluster: separation and direction, own shape
    sub_dx, sub_dy = sub_offset
    sub_q = rng.uniform(0.6, 1.0, n)
    sub_theta = rng.uniform(0, np.pi, n)
    sub_beta = np.clip(rng.normal(icm.beta_mean, icm.beta_sd, n), 0.56, 1.1)

    parts = [
        dict(
            cluster=idx,
            kind=np.full(n, AMBIENT),
            x0=dx,
            y0=dy,
            rc=rc * r500_com,
            beta=beta,
            q=q,
            theta=theta,
            lum500=lum_ambient,
            r_norm=r500_com,
            kt=kt,
        )
    ]
    c = np.flatnonzero(cool_core)
    parts.append(
        dict(
            cluster=c,
            kind=np.full(c.size, COOL_CORE),
            x0=dx[c],
            y0=dy[c],
            rc=cc_rc[c] * r500_com[c],
            beta=np.full(c.size, icm.cc_beta),
            q=np.sqrt(q[c]),
            theta=theta[c],
            lum500=cc_ratio[c] * lum_ambient[c],
            r_norm=r500_com[c],
            kt=icm.cc_temperature_ratio * kt[c],
        )
    )
    m = np.flatnonzero(merger)
    parts.append(
        dict(
            cluster=m,
            kind=np.full(m.size, SUBCLUSTER),
            x0=dx[m] + sub_dx[m],
            y0=dy[m] + sub_dy[m],
            rc=icm.rc_median_r500 * sub_r500_com[m],
            beta=sub_beta[m],
            q=sub_q[m],
            theta=sub_theta[m],
            lum500=sub_lum[m],
            r_norm=sub_r500_com[m],
            kt=sub_kt[m],
        )
    )
    mc = np.flatnonzero(merger_core_lum > 0) if merger_core_lum is not None else idx[:0]
    parts.append(
        dict(
            cluster=mc,
            kind=np.full(mc.size, MERGER_CORE),
            x0=dx[mc],
            y0=dy[mc],
            rc=np.full(mc.size, icm.merger_core_rc_r500) * r500_com[mc],
            beta=beta[mc],
            q=q[mc],
            theta=theta[mc],
            lum500=merger_core_lum[mc] if merger_core_lum is not None else np.zeros(0),
            r_norm=r500_com[mc],
            kt=kt[mc],
        )
    )
    merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.lexsort((merged["kind"], merged["cluster"]))
    return Components(**{k: v[order] for k, v in merged.items()})
