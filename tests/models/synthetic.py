"""A tiny synthetic cluster catalogue in the mock generator's output contract (test helper).

Beta-model (Cavaliere & Fusco-Femiano 1976, beta = 2/3) surface-brightness blobs whose total
counts scale with mass as M^1.3 and dim with redshift, split into three bands with a softer
spectrum for cooler (less massive) clusters, plus a flat background, Poisson-sampled. Galaxies:
members with a dispersion following Evrard et al. (2008) plus uniform interlopers. Scalars with
log-normal scatter at fixed mass. Not physics-grade: just enough structure that a CNN must learn
a mass trend and the proxy fits have known slopes.
"""

from __future__ import annotations

from types import SimpleNamespace

import astropy.units as u
import numpy as np
from astropy.table import QTable

from models.data import ClusterArrays

SNAPSHOT_Z = {0: 0.1, 1: 0.25, 2: 0.4}
#: True log-slopes of the synthetic scalars on mass (per ln M).
SLOPES = {"T": 1 / 1.71, "L_X": 1.6, "M_gas": 1.1, "N_gal": 0.8, "N_phot": 1.3}
#: ln-scatter at fixed mass of the synthetic scalars.
SCATTER = {"T": 0.12, "L_X": 0.4, "M_gas": 0.1, "N_gal": 0.2, "N_phot": 0.25}


def make_catalogue(
    n: int = 96,
    size: int = 32,
    seed: int = 0,
    *,
    box_size: float = 352.0,
    counts_scale: float = 1.0,
) -> SimpleNamespace:
    """Return an object with the contract's ``truth``, ``counts_*`` and ``galaxies``."""
    rng = np.random.default_rng(seed)
    logm = rng.uniform(13.5, 15.0, n)
    snap = rng.integers(0, len(SNAPSHOT_Z), n)
    z = np.array([SNAPSHOT_Z[s] for s in snap])
    pos = rng.uniform(0, box_size, (n, 3))
    lnm = np.log(10**logm / 2e14)

    def scalar(name: str, norm: float) -> np.ndarray:
        return norm * np.exp(SLOPES[name] * lnm + SCATTER[name] * rng.standard_normal(n))

    T = scalar("T", 3.0)
    L_X = scalar("L_X", 1e44)
    M_gas = scalar("M_gas", 2e13)
    n_phot_mean = scalar("N_phot", 2500.0) * counts_scale * ((1 + 0.1) / (1 + z)) ** 4
    r500 = 0.7 * (10**logm / 1e14) ** (1 / 3)  # h^-1 Mpc, rough
    half = 2.3
    pix = 2 * half / size
    c = (np.arange(size) + 0.5) * pix - half
    X, Y = np.meshgrid(c, c, indexing="ij")
    counts_icm = np.zeros((n, 3, size, size), np.int32)
    counts_agn = np.zeros((n, 3, size, size), np.int32)
    soft = np.clip(0.8 - 0.12 * np.log(T / 1.0), 0.5, 0.85)
    fr = np.stack([soft, 0.7 * (1 - soft), 0.3 * (1 - soft)], axis=1)
    for i in range(n):
        rc = 0.15 * r500[i]
        prof = (1 + (X**2 + Y**2) / rc**2) ** -1.5
        prof /= prof.sum()
        for b in range(3):
            lam = n_phot_mean[i] * fr[i, b] * prof + 0.02 * counts_scale
            counts_icm[i, b] = rng.poisson(lam)
        if rng.random() < 0.3:  # a point source somewhere
            ix, iy = rng.integers(0, size, 2)
            counts_agn[i, :, ix, iy] = rng.poisson(30, 3)
    counts_total = counts_icm + counts_agn

    n_mem = np.maximum(np.rint(scalar("N_gal", 40.0)), 6).astype(int)
    sig_v = 1082.9 * (0.7 * 10**logm / 1e15) ** 0.3361 * np.exp(0.05 * rng.standard_normal(n))
    rows = []
    sv_obs = np.empty(n)
    for i in range(n):
        m = n_mem[i]
        n_int = rng.poisson(0.3 * m)
        xm = rng.normal(0, 0.4 * r500[i], m)
        ym = rng.normal(0, 0.4 * r500[i], m)
        vm = rng.normal(0, sig_v[i], m)
        xi, yi = rng.uniform(-half, half, (2, n_int))
        vi = rng.uniform(-3785, 3785, n_int)
        x, y, v = np.r_[xm, xi], np.r_[ym, yi], np.r_[vm, vi]
        sv_obs[i] = v.std()
        mem = np.r_[np.ones(m, bool), np.zeros(n_int, bool)]
        rows.append(np.rec.fromarrays([np.full(x.size, i), x, y, v, mem]))
    gal = (
        np.concatenate(rows)
        .view(np.ndarray)
        .astype(
            [
                ("cluster_index", "i8"),
                ("x_mpc_h", "f8"),
                ("y_mpc_h", "f8"),
                ("v_los_km_s", "f8"),
                ("is_member", "?"),
            ]
        )
    )
    r_pix = np.sqrt(X**2 + Y**2)
    n500 = np.array([counts_total[i].sum(axis=0)[r_pix < r500[i]].sum() for i in range(n)])
    truth = QTable()
    truth["cluster_id"] = np.arange(n) + 1000
    truth["snapshot"] = snap
    truth["redshift"] = z
    for k, name in enumerate(("pos_x", "pos_y", "pos_z")):
        truth[name] = pos[:, k] * u.Mpc
    truth["log10_m500c"] = logm
    truth["m500c"] = 10**logm * u.Msun
    truth["r500c"] = r500 * u.Mpc
    truth["T"] = T * u.keV
    truth["L_X"] = L_X * u.erg / u.s
    truth["M_gas"] = M_gas * u.Msun
    truth["M_star"] = 1e12 * np.exp(0.59 * lnm + 0.2 * rng.standard_normal(n)) * u.Msun
    truth["N_gal"] = n_mem
    truth["sigma_v_true"] = sig_v * u.km / u.s
    truth["sigma_v_obs"] = sv_obs * u.km / u.s
    truth["N_phot"] = counts_total.reshape(n, -1).sum(axis=1)
    truth["N_phot_500c"] = n500
    truth["L_X_500c_true"] = L_X * 0.8 * u.erg / u.s
    truth["cool_core"] = rng.random(n) < 0.4
    return SimpleNamespace(
        truth=truth,
        counts_total=counts_total,
        counts_agn=counts_agn,
        counts_icm=counts_icm,
        galaxies=gal,
    )


def make_arrays(n: int = 96, size: int = 32, seed: int = 0, **kw) -> ClusterArrays:
    """The synthetic catalogue as :class:`ClusterArrays`."""
    cat = make_catalogue(n, size, seed, **kw)
    return ClusterArrays.from_parts(cat.truth, cat.counts_total, cat.galaxies)
