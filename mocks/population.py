"""The mock population: one set of halos followed along their mass accretion histories.

As in a simulation box (Magneticum Box2/hr for Ho et al. 2023), the same halos are seen at
several snapshots: a halo drawn at the latest snapshot (lowest redshift, ``z0``) from the
Tinker+08 M500c function is followed back in time along its mass accretion history (MAH) and
appears at every snapshot where it is above the mass cut. Its comoving position drifts with a
peculiar velocity, so the spatial octant folds keep its snapshots together.

Physics, per halo (all persistent across snapshots; the relations are in mocks/assembly.py):

- an *assembly deviate* ``delta`` ~ N(0, 1) sets the concentration at fixed mass,
  ``c200c = c_diemer19(M200c, z) 10^(sigma_c delta)``, with the N-body scatter sigma_c
  (Bhattacharya et al. 2013, ApJ 766, 32: sigma_ln c ~ 0.33; Diemer & Kravtsov 2015, ApJ 799,
  108: ~0.16 dex); early-forming halos are the concentrated ones;
- the MAH of Wechsler et al. (2002, ApJ 568, 52, eqs. 3 and 8):
  ``M(a) = M(a0) exp[-alpha (a0/a - 1)]`` with ``alpha = 2 a_c/a0 = 2 c1 / c_vir(a0)``,
  ``c1 = 4.1``: the concentration fixes the formation epoch ``a_c`` and the growth rate;
  the half-mass formation redshift follows as ``a0/a_half = 1 + ln 2 / alpha``;
- major mergers: the Fakhouri, Ma & Boylan-Kolchin (2010, MNRAS 406, 2267, eq. 1) merger rate
  per halo, dN/dz/dxi = A (M/1e12 Msun)^a xi^b exp[(xi/xi_t)^g] (1+z)^eta, integrated over
  mass ratios xi >= ``merger_min_ratio``, scaled for each halo by its accretion rate relative to
  the mean at its mass (the mergers *are* its accretion), as a Poisson process in cosmic time;
  a merger is visible for ``merger_visible_crossings`` crossing times R200c/V200c = 1/(10 H(z));
  each merger's mass ratio is drawn from the same FMBK10 kernel xi^b exp[(xi/xi_t)^g] restricted
  to the major range [``merger_min_ratio``, 1], and its event time is the first core passage,
  so the time since core passage (which sets the subcluster's orbit and, where switched on,
  the transient L_X and T boosts, mocks/icm.py) advances consistently from snapshot to snapshot.

The mass growth applies the Wechsler+02 virial-mass history to M500c (the growth of the
spherical-overdensity masses differs by a few per cent over z = 0.07-0.47). Distinct halos
that merge between two snapshots are followed as their main progenitor only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy import units as u
from numpy.typing import NDArray

from mocks.assembly import (
    c_vir_over_c200c,
    fakhouri_rate_per_dz,
    mass_and_concentration,
    merger_ratio_quantile,
)
from mocks.config import MockConfig
from mocks.halos import HaloMassFunction, get_cosmology

__all__ = ["Population", "sample_population"]

_KM_S_GYR_IN_MPC = (1 * u.km / u.s * u.Gyr).to_value(u.Mpc)


@dataclass(frozen=True)
class Population:
    """The (halo, snapshot) rows of a run, ordered by snapshot then halo.

    Attributes
    ----------
    snapshot : ndarray of int
        Snapshot index of each row.
    halo_id : ndarray of int
        The halo (repeats across snapshots).
    m500c, m200c : ndarray
        Masses at the snapshot [h^-1 Msun].
    c200c : ndarray
        NFW concentration at the snapshot (diemer19 mean times the halo's deviate).
    pos : ndarray
        Comoving box position [h^-1 Mpc], shape (n, 3); column 2 is the line of sight.
    delta : ndarray
        The halo's assembly deviate (standard normal; > 0: early forming, concentrated).
    z_form : ndarray
        Half-mass formation redshift of the halo's MAH.
    accretion_rate : ndarray
        d ln M / d ln a at the snapshot (Wechsler+02 MAH).
    merger : ndarray of bool
        A major merger (mass ratio >= merger_min_ratio) within the visibility window.
    merger_ratio : ndarray
        Mass ratio xi = M2/M1 <= 1 of the most recent visible merger (0 where none).
    t_since_merger : ndarray
        Time since that merger's first core passage [Gyr] (NaN where none).
    merger_phase : ndarray
        ``t_since_merger`` over the visibility window, in [0, 1) (NaN where none).
    merger_orient : ndarray
        Orbit orientation of that merger, shape (n, 2): cos of the angle to the line of sight
        (uniform in [-1, 1]) and the position angle on the sky [rad] (NaN where none).
    relax : ndarray
        The halo's relaxation latent (standard normal, correlated with ``delta``): cool cores
        are the most relaxed non-merging halos.
    fgas_dev : ndarray
        The halo's ln gas-fraction deviate at fixed mass (standard normal, correlated with
        ``delta``).
    """

    snapshot: NDArray[np.int64]
    halo_id: NDArray[np.int64]
    m500c: NDArray[np.float64]
    m200c: NDArray[np.float64]
    c200c: NDArray[np.float64]
    pos: NDArray[np.float64]
    delta: NDArray[np.float64]
    z_form: NDArray[np.float64]
    accretion_rate: NDArray[np.float64]
    merger: NDArray[np.bool_]
    merger_ratio: NDArray[np.float64]
    t_since_merger: NDArray[np.float64]
    merger_phase: NDArray[np.float64]
    merger_orient: NDArray[np.float64]
    relax: NDArray[np.float64]
    fgas_dev: NDArray[np.float64]


def _halo_pool(cfg: MockConfig, rng: np.random.Generator, n: int, hmf: HaloMassFunction) -> dict:
    """Draw ``n`` halos at z0 with their assembly, position, velocity and latents."""
    a = cfg.assembly
    m0 = hmf.sample(n, rng)
    delta = rng.standard_normal(n)
    relax = a.cool_core_assembly_correlation * delta + np.sqrt(
        1 - a.cool_core_assembly_correlation**2
    ) * rng.standard_normal(n)
    fgas_dev = a.fgas_concentration_correlation * delta + np.sqrt(
        1 - a.fgas_concentration_correlation**2
    ) * rng.standard_normal(n)
    pos = rng.random((n, 3)) * cfg.box_size
    vel = rng.normal(0.0, a.peculiar_velocity_km_s, (n, 3))
    u_merge = rng.random((n, 4))  # uniform draws for the merger process (event times)
    u_ratio = rng.random((n, 4))  # mass ratio of each event (FMBK10 kernel)
    u_orient = rng.random((n, 4, 2))  # orbit orientation of each event
    return dict(
        m0=m0, delta=delta, relax=relax, fgas_dev=fgas_dev, pos=pos, vel=vel, u_merge=u_merge,
        u_ratio=u_ratio, u_orient=u_orient,
    )  # fmt: skip


def _cohort(
    cfg: MockConfig,
    rng: np.random.Generator,
    k: int,
    anchor: int,
    hmf: HaloMassFunction,
    first_id: int,
) -> list[dict]:
    """Rows of ``k`` halos drawn at snapshot ``anchor`` and followed back to higher redshift."""
    cosmo = get_cosmology(cfg.cosmology)
    h = cosmo.h
    zs = np.asarray(cfg.snapshot_redshifts, float)
    a_s = 1.0 / (1.0 + zs)
    za, aa = float(zs[anchor]), float(a_s[anchor])
    t_s = cosmo.age(zs).to_value(u.Gyr)
    ta = float(t_s[anchor])
    t_vis = cfg.assembly.merger_visible_crossings / (10 * cosmo.H(zs).to_value(1 / u.Gyr))
    pool = _halo_pool(cfg, rng, k, hmf)
    _, c200_a = mass_and_concentration(pool["m0"], za, cfg, pool["delta"])
    c_vir = c200_a * c_vir_over_c200c(c200_a, cosmo, za)
    alpha = 2 * cfg.assembly.wechsler_c1 / c_vir  # Wechsler+02: alpha = 2 a_c / a_obs
    z_form = (1 + np.log(2) / alpha) / aa - 1
    later = np.arange(anchor, zs.size)
    mass = pool["m0"][:, None] * np.exp(-alpha[:, None] * (aa / a_s[None, later] - 1))
    present = mass >= 10**cfg.log10_m500c_min
    # mergers: a Poisson process in cosmic time, FMBK10 rate at the halo's mass and the mean
    # snapshot redshift, times the halo's accretion rate relative to the mean at its mass
    z_mid = float(zs.mean())
    dz_dt = float(cosmo.H(z_mid).to_value(1 / u.Gyr)) * (1 + z_mid)
    sig = cfg.assembly.concentration_scatter_dex
    acc = 10 ** (-sig * pool["delta"]) / np.exp(0.5 * (sig * np.log(10)) ** 2)
    rate = fakhouri_rate_per_dz(pool["m0"] / h, z_mid, cfg) * dz_dt * acc  # per Gyr
    span = ta - (t_s.min() - t_vis.max())
    n_ev = np.minimum(rng.poisson(rate * span), pool["u_merge"].shape[1])
    times = ta - pool["u_merge"] * span
    ratios = merger_ratio_quantile(pool["u_ratio"], cfg)
    cos_i = 2 * pool["u_orient"][..., 0] - 1
    pa = 2 * np.pi * pool["u_orient"][..., 1]
    rows = []
    for i in range(k):
        ev = times[i, : n_ev[i]]
        for j, s in enumerate(later):
            if not present[i, j]:
                continue
            dt = ta - t_s[s]
            vis = np.flatnonzero((ev <= t_s[s]) & (ev > t_s[s] - t_vis[s]))
            e = int(vis[np.argmax(ev[vis])]) if vis.size else -1  # the most recent one
            rows.append(
                dict(
                    snapshot=int(s),
                    halo_id=first_id + i,
                    m500c=float(mass[i, j]),
                    pos=(pool["pos"][i] - pool["vel"][i] * dt * _KM_S_GYR_IN_MPC * h
                         * (1 + zs[s])) % cfg.box_size,
                    delta=float(pool["delta"][i]),
                    z_form=float(z_form[i]),
                    accretion_rate=float(alpha[i] * aa / a_s[s]),
                    merger=e >= 0,
                    merger_ratio=float(ratios[i, e]) if e >= 0 else 0.0,
                    t_since_merger=float(t_s[s] - ev[e]) if e >= 0 else np.nan,
                    merger_phase=float((t_s[s] - ev[e]) / t_vis[s]) if e >= 0 else np.nan,
                    merger_orient=(cos_i[i, e], pa[i, e]) if e >= 0 else (np.nan, np.nan),
                    relax=float(pool["relax"][i]),
                    fgas_dev=float(pool["fgas_dev"][i]),
                )
            )  # fmt: skip
    return rows


def sample_population(cfg: MockConfig) -> Population:
    """Draw halos and follow them along their accretion histories through every snapshot.

    Halos drawn at the latest snapshot are followed back in time. Halos that are distinct at a
    higher redshift but merge into a bigger one before the latest snapshot (no main progenitor
    of a z0 halo) are added where the followed halos fall short of the Tinker+08 abundance
    n(>M_cut, z): at snapshot s, halos drawn from the mass function at z_s, followed back from
    there. The row count per snapshot thus follows the mass function, as in a simulation box.
    Exactly ``cfg.n_clusters`` rows are returned (the surplus comes off the last-drawn halos'
    highest-redshift appearances; a shortfall is filled with more halos of the latest snapshot).
    """
    rng = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(0,)))
    zs = np.asarray(cfg.snapshot_redshifts, float)
    hmfs = [
        HaloMassFunction.build(
            float(z), cfg.cosmology, cfg.log10_m500c_min, cfg.log10_m500c_max, cfg.mass_function
        )
        for z in zs
    ]
    ratio = np.array([hm.number_density() for hm in hmfs]) / hmfs[0].number_density()
    n0 = max(1, int(np.ceil(cfg.n_clusters / ratio.sum())))
    rows: list[dict] = []
    count = np.zeros(zs.size)
    next_id = 0
    for s in range(zs.size):
        k = n0 if s == 0 else int(max(0.0, np.round(n0 * ratio[s] - count[s])))
        if k == 0:
            continue
        new = _cohort(cfg, rng, k, s, hmfs[s], next_id)
        next_id += k
        rows.extend(new)
        count += np.bincount([r["snapshot"] for r in new], minlength=zs.size)
    while len(rows) < cfg.n_clusters:  # shortfall: more halos of the latest snapshot
        k = max(8, (cfg.n_clusters - len(rows)) // 4)
        rows.extend(_cohort(cfg, rng, k, 0, hmfs[0], next_id))
        next_id += k
    # surplus: drop the last-drawn halos' highest-redshift appearances first
    rows.sort(key=lambda r: (r["halo_id"], r["snapshot"]))
    surplus = len(rows) - cfg.n_clusters
    if surplus > 0:
        order = sorted(range(len(rows)), key=lambda i: (-rows[i]["halo_id"], -rows[i]["snapshot"]))
        drop = set(order[:surplus])
        rows = [r for i, r in enumerate(rows) if i not in drop]
    rows.sort(key=lambda r: (r["snapshot"], r["halo_id"]))
    snap = np.array([r["snapshot"] for r in rows], dtype=np.int64)
    m500 = np.array([r["m500c"] for r in rows])
    delta = np.array([r["delta"] for r in rows])
    m200 = np.empty_like(m500)
    c200 = np.empty_like(m500)
    for s in np.unique(snap):
        sel = snap == s
        m200[sel], c200[sel] = mass_and_concentration(m500[sel], float(zs[s]), cfg, delta[sel])
    return Population(
        snapshot=snap,
        halo_id=np.array([r["halo_id"] for r in rows], dtype=np.int64),
        m500c=m500,
        m200c=m200,
        c200c=c200,
        pos=np.array([r["pos"] for r in rows]).reshape(-1, 3),
        delta=delta,
        z_form=np.array([r["z_form"] for r in rows]),
        accretion_rate=np.array([r["accretion_rate"] for r in rows]),
        merger=np.array([r["merger"] for r in rows], dtype=bool),
        merger_ratio=np.array([r["merger_ratio"] for r in rows]),
        t_since_merger=np.array([r["t_since_merger"] for r in rows]),
        merger_phase=np.array([r["merger_phase"] for r in rows]),
        merger_orient=np.array([r["merger_orient"] for r in rows], dtype=float).reshape(-1, 2),
        relax=np.array([r["relax"] for r in rows]),
        fgas_dev=np.array([r["fgas_dev"] for r in rows]),
    )
