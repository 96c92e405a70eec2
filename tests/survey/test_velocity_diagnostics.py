"""Velocity diagnostics and the default interloper method (issue 17, items 3 and 7)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from survey.cosmology import PLANCK18, comoving_transverse_mpc_h
from survey.galaxies import (
    C_KMS,
    MIN_MEMBERS,
    V_MAX_KMS,
    analyse_galaxies,
    mixture_members,
    project_galaxies,
)

ZC = 0.1
RA0, DEC0 = 150.0, 2.0


def _wide_field(n_members: int, n_interlopers: int, sigma: float, seed: int):
    """A Gaussian cluster (concentrated on the sky) plus interlopers uniform over the cylinder.

    The interlopers are uniform in projected position over the +-2.3 h^-1 Mpc field and in
    velocity over +-V_MAX: a wide-field redshift survey around a cluster.
    """
    rng = np.random.default_rng(seed)
    deg_per_mpc = np.degrees(1.0 / comoving_transverse_mpc_h(ZC, PLANCK18))
    r = np.abs(rng.normal(0, 0.6, n_members)).clip(0, 2.0)
    phi = rng.uniform(0, 2 * np.pi, n_members)
    xm, ym = r * np.cos(phi), r * np.sin(phi)
    xi, yi = rng.uniform(-2.25, 2.25, (2, n_interlopers))
    x, y = np.r_[xm, xi] * deg_per_mpc, np.r_[ym, yi] * deg_per_mpc
    v = np.r_[rng.normal(0, sigma, n_members), rng.uniform(-0.99, 0.99, n_interlopers) * V_MAX_KMS]
    ra = RA0 + x / np.cos(np.radians(DEC0))
    dec = DEC0 + y
    return ra, dec, ZC + v * (1 + ZC) / C_KMS


def _analyse(ra, dec, z, **kw):
    return analyse_galaxies(
        ra, dec, z, ra_cl=RA0, dec_cl=DEC0, z_cl=ZC, cosmology=PLANCK18, n_boot=200, **kw
    )


@pytest.mark.parametrize(("n_mem", "n_int", "seed"), [(600, 150, 1), (600, 400, 2), (300, 60, 3)])
def test_default_recovers_sigma_in_a_wide_field_where_the_gapper_does_not(
    n_mem: int, n_int: int, seed: int
) -> None:
    sigma = 1000.0
    ra, dec, z = _wide_field(n_mem, n_int, sigma, seed)
    default = _analyse(ra, dec, z)
    assert default.interlopers == "mixture" and default.estimator == "mixture"
    assert default.diagnostics["interlopers"] == "mixture"
    s, err = default.dispersion["mixture"], default.dispersion["mixture_err"]
    assert abs(s - sigma) < 2.5 * err, (s, err)
    gap = _analyse(ra, dec, z, interlopers="shifting_gapper")
    sg, sg_err = gap.dispersion["biweight"], gap.dispersion["biweight_err"]
    assert sg - sigma > 3 * sg_err, (sg, sg_err)  # interlopers fill every gap: biased high
    # a field that reaches the cylinder's +-V_MAX is not "truncated" by its maker, even when
    # the interlopers inflate sigma so that V_MAX lies at ~2.3 sigma
    assert not gap.diagnostics["truncated"] and not default.diagnostics["truncated"]
    # and so is the mass: the mixture's is within its error of the input sigma's mass
    assert gap.mass["log10_m500c"] - default.mass["log10_m500c"] > 0.1


def test_mixture_sigma_is_unbiased_over_seeds_and_its_error_is_honest() -> None:
    sigma, fits = 800.0, []
    for seed in range(12):
        ra, dec, z = _wide_field(400, 150, sigma, 100 + seed)
        _, _, v = project_galaxies(ra, dec, z, RA0, DEC0, ZC, PLANCK18)
        v = v[np.abs(v) <= V_MAX_KMS]
        _, fit = mixture_members(v, n_boot=100, seed=seed)
        fits.append((fit["sigma"], fit["sigma_err"]))
    s, e = np.array(fits).T
    assert abs(s.mean() - sigma) < 3 * s.std(ddof=1) / np.sqrt(s.size)  # no bias
    assert 0.6 < np.median(e) / s.std(ddof=1) < 1.6  # bootstrap error ~ the real scatter


def test_a_truncated_list_is_flagged_and_the_full_field_is_not() -> None:
    sigma = 990.0
    ra, dec, z = _wide_field(1900, 85, sigma, 7)  # Coma-like: 1,985 galaxies
    full = _analyse(ra, dec, z)
    assert not full.diagnostics["truncated"] and not full.diagnostics["few_members"]
    assert full.diagnostics["warnings"] == []
    v = C_KMS * (z - ZC) / (1 + ZC)
    keep = (v > -2.3 * sigma) & (v < 1.8 * sigma)  # hand-clipped as in the issue
    cut = _analyse(ra[keep], dec[keep], z[keep])
    d = cut.diagnostics
    assert d["truncated"] and d["excess_kurtosis"] < -0.3
    assert d["edges_sigma"][1] < 2.5 and any("truncated" in w for w in d["warnings"])
    assert any("truncated" in n for n in cut.notes)
    json.dumps(d, allow_nan=False)  # stored in products.meta (JSONB)


def test_too_few_members_are_flagged() -> None:
    ra, dec, z = _wide_field(15, 0, 700.0, 11)  # < MIN_MEMBERS, and < 20: no truncation test
    res = _analyse(ra, dec, z)
    d = res.diagnostics
    assert d["few_members"] and d["n_members"] < MIN_MEMBERS
    assert any(f"< {MIN_MEMBERS}" in w for w in d["warnings"])
    assert d["edges_sigma"] == [None, None]  # too few to test truncation: None, not NaN
    json.dumps(d, allow_nan=False)
    ra, dec, z = _wide_field(200, 0, 700.0, 12)
    assert not _analyse(ra, dec, z).diagnostics["few_members"]


def test_gapper_stays_available_and_is_recorded() -> None:
    ra, dec, z = _wide_field(300, 0, 700.0, 13)
    res = _analyse(ra, dec, z, interlopers="shifting_gapper")
    assert res.interlopers == "shifting_gapper" and res.estimator == "biweight"
    assert res.diagnostics["interlopers"] == "shifting_gapper"
    assert "mixture" not in res.dispersion
