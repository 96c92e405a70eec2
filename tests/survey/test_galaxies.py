"""Member galaxies: projection, interlopers, dispersions, the Evrard et al. 2008 mass."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from survey.cosmology import PLANCK18, comoving_transverse_mpc_h, convert_mass_definition
from survey.errors import GalaxyTableError
from survey.galaxies import (
    C_KMS,
    EVRARD08,
    analyse_galaxies,
    dynamical_mass,
    gapper_scale,
    project_galaxies,
    read_galaxy_table,
    shifting_gapper_members,
    sigma_clip_members,
    velocity_dispersion,
)

ZC = 0.1


def test_projection_and_rest_frame_velocity() -> None:
    dm = comoving_transverse_mpc_h(ZC, PLANCK18)
    z = np.array([ZC, ZC + 0.01, ZC])
    x, y, v = project_galaxies(
        np.array([150.0, 150.0, 150.0 - 0.05 / math.cos(math.radians(2.0))]),
        np.array([2.05, 2.0, 2.0]), z, 150.0, 2.0, ZC, PLANCK18,
    )  # fmt: skip
    assert y[0] == pytest.approx(math.radians(0.05) * dm, rel=1e-3) and abs(x[0]) < 1e-3
    assert x[2] == pytest.approx(math.radians(0.05) * dm, rel=1e-3)  # west is +x
    assert v[1] == pytest.approx(C_KMS * 0.01 / (1 + ZC))
    assert v[0] == 0.0


def test_gapper_matches_the_formula_and_sigma() -> None:
    v = np.array([-300.0, -100.0, 0.0, 50.0, 400.0])
    n = 5
    gaps = np.diff(np.sort(v))
    expect = (
        math.sqrt(math.pi) / (n * (n - 1)) * sum((i * (n - i)) * g for i, g in enumerate(gaps, 1))
    )
    assert gapper_scale(v) == pytest.approx(expect)
    rng = np.random.default_rng(7)
    big = rng.normal(0, 700, 4000)
    assert gapper_scale(big) == pytest.approx(700, rel=0.03)


def test_dispersion_and_bootstrap_errors() -> None:
    rng = np.random.default_rng(8)
    v = rng.normal(0, 800.0, 300)
    d = velocity_dispersion(v, n_boot=400, seed=1)
    expect_err = 800 / math.sqrt(2 * 300)  # Gaussian: sigma / sqrt(2N)
    for k in ("biweight", "gapper"):
        assert abs(d[k] - 800) < 3 * d[f"{k}_err"]
        assert d[f"{k}_err"] == pytest.approx(expect_err, rel=0.35)
    with pytest.raises(GalaxyTableError, match="at least 5"):
        velocity_dispersion(v[:3])


def test_evrard_relation_round_trip() -> None:
    m200_h = 6e14  # h^-1 Msun
    ez = PLANCK18.astropy().efunc(ZC)
    # sigma_DM = 1082.9 (h(z) M200c / 1e15 Msun)^0.3361 with h(z) M = E(z) M[h^-1 Msun]
    sigma = EVRARD08["sigma15_kms"] * (ez * m200_h / 1e15) ** EVRARD08["alpha"]
    res = dynamical_mass(sigma, 0.1 * sigma, ZC, PLANCK18)
    assert res["log10_m200c"] == pytest.approx(math.log10(m200_h), abs=1e-9)
    m500 = convert_mass_definition(np.array([m200_h]), np.array([ZC]), "200c", "500c", PLANCK18)
    assert res["log10_m500c"] == pytest.approx(math.log10(m500[0]))
    # 10% in sigma -> 0.1/alpha in ln M
    assert res["err_stat_dex"] == pytest.approx(0.1 / 0.3361 / math.log(10))
    assert res["err_dex"] > res["err_stat_dex"]
    biased = dynamical_mass(sigma * 1.1, 0.0, ZC, PLANCK18, velocity_bias=1.1)
    assert biased["log10_m200c"] == pytest.approx(res["log10_m200c"])


def test_interloper_rejection() -> None:
    rng = np.random.default_rng(9)
    v = np.concatenate([rng.normal(0, 600, 150), rng.normal(3300, 80, 12)])
    r = np.concatenate([rng.uniform(0, 1.5, 150), rng.uniform(0, 1.5, 12)])
    gap = shifting_gapper_members(r, v)
    assert gap[:150].mean() > 0.97 and not gap[150:].any()
    clip = sigma_clip_members(v)
    assert clip[:150].mean() > 0.97 and not clip[150:].any()


def _mock_cluster(n: int = 150, sigma: float = 700.0, seed: int = 10):
    rng = np.random.default_rng(seed)
    v = rng.normal(0, sigma, n)
    ra = 150 + rng.normal(0, 0.08, n)
    dec = 2 + rng.normal(0, 0.08, n)
    return ra, dec, ZC + v * (1 + ZC) / C_KMS


def test_analyse_galaxies_recovers_the_mass() -> None:
    ra, dec, z = _mock_cluster(sigma=900.0)
    far = (np.array([153.0]), np.array([2.0]), np.array([ZC]))  # outside the cylinder
    res = analyse_galaxies(np.r_[ra, far[0]], np.r_[dec, far[1]], np.r_[z, far[2]],
                           ra_cl=150.0, dec_cl=2.0, z_cl=ZC, cosmology=PLANCK18, n_boot=200)  # fmt: skip
    assert res.n_input == 151 and res.n_in_cylinder == 150
    assert set(res.arrays()) == {"x_mpc_h", "y_mpc_h", "v_los_km_s", "is_member"}
    sigma = res.dispersion["biweight"]
    assert abs(sigma - 900) < 3 * res.dispersion["biweight_err"]
    expect = dynamical_mass(900.0, 0.0, ZC, PLANCK18)["log10_m500c"]
    assert abs(res.mass["log10_m500c"] - expect) < 3 * res.mass["err_stat_dex"]
    with pytest.raises(GalaxyTableError, match="only"):
        analyse_galaxies(ra[:3], dec[:3], z[:3], ra_cl=150.0, dec_cl=2.0, z_cl=ZC,
                         cosmology=PLANCK18)  # fmt: skip


def test_read_galaxy_table_with_velocities_and_bad_rows(tmp_path: Path) -> None:
    ra, dec, z = _mock_cluster(n=20)
    cz = z * C_KMS
    ra[3] = np.nan
    cz[4] = -5000.0  # blueshifts down to cz = -3000 km/s are allowed
    path = tmp_path / "members.ecsv"
    Table({"RAdeg": ra, "DEdeg": dec, "cz": cz}).write(path)
    r, d, zz, rejects = read_galaxy_table(path)
    assert len(r) == 18
    # 1-based data rows, and the line an editor shows (the ECSV header lines counted)
    text = path.read_text().splitlines()
    header = next(i for i, t in enumerate(text) if not t.startswith("#")) + 1
    assert {(x.row, x.line, x.column) for x in rejects} == {
        (4, header + 4, "RAdeg"),
        (5, header + 5, "cz"),
    }
    assert text[header + 4 - 1].startswith("nan")
    assert zz == pytest.approx(np.delete(z, [3, 4]))


def test_a_hard_clipped_velocity_list_is_flagged_and_a_full_one_is_not() -> None:
    """Issue 17: a member list clipped at -2.3/+1.8 sigma biases sigma_v low without a word."""
    from scipy.stats import norm

    from survey.galaxies import truncation_warning

    rng = np.random.default_rng(17)
    sigma = 990.0
    v = rng.normal(0.0, sigma, 1985)
    assert truncation_warning(v, float(np.std(v))) == ""  # the full field: no warning
    clipped = v[(v > -2.3 * sigma) & (v < 1.8 * sigma)]
    msg = truncation_warning(clipped, float(np.std(clipped)))
    assert "truncated" in msg and "biased low" in msg
    # the numbers it quotes follow from the Gaussian: ~N P(x > edge) beyond the upper edge
    hi = (clipped.max() - np.median(clipped)) / np.std(clipped)
    assert f"~{clipped.size * norm.sf(hi):.0f} beyond" in msg
    # Gaussian samples of every size stay quiet (the 1% false-alarm design)
    quiet = sum(
        truncation_warning(x, float(np.std(x))) == ""
        for x in (rng.normal(0, sigma, n) for n in (30, 100, 300, 1000, 3000) for _ in range(20))
    )
    assert quiet >= 98
