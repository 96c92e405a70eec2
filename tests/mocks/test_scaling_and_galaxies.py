"""Input scaling relations are recovered from the generated observables; galaxy dynamics."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.cosmology import Planck18

from mocks import MockCatalogue, MockConfig
from mocks.config import HALF_WIDTH_MPC_H, SCATTER_ORDER
from mocks.scaling import correlated_scatter, covariance


def _col(t, name: str) -> np.ndarray:  # noqa: ANN001
    c = t[name]
    return np.asarray(getattr(c, "value", c), dtype=float)


def _slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """OLS slope and its standard error."""
    a = np.column_stack([np.ones_like(x), x])
    coef, res, *_ = np.linalg.lstsq(a, y, rcond=None)
    sigma2 = np.sum((y - a @ coef) ** 2) / (x.size - 2)
    se = np.sqrt(sigma2 / np.sum((x - x.mean()) ** 2))
    return float(coef[1]), float(se)


@pytest.mark.parametrize(
    ("column", "mass", "expected", "mask"),
    [
        ("T", "m500c", 1 / 1.71, "all"),
        ("M_gas", "m500c", 1.2, "all"),
        ("M_star", "m500c", 0.59, "all"),
        ("L_X", "m500c", 1.62, "all"),
        ("L_X_ce", "m500c", 1.62, "all"),
        ("n_expected_members", "m500c", 1 / 1.356, "all"),
        ("sigma_dm", "m200c", 0.3361, "relaxed"),
        ("sigma_v_true", "m200c", 0.3361, "relaxed"),
    ],
)
def test_input_slopes_are_recovered(
    small_cat: MockCatalogue, column: str, mass: str, expected: float, mask: str
) -> None:
    t = small_cat.truth
    snap = np.asarray(t["snapshot"])
    sel = np.ones(len(t), bool) if mask == "all" else ~np.asarray(t["merger"])
    for s in np.unique(snap):
        k = sel & (snap == s) & np.isfinite(_col(t, column))
        slope, se = _slope(np.log(_col(t, mass)[k]), np.log(_col(t, column)[k]))
        assert abs(slope - expected) < 4 * se + 0.02, (column, s, slope, se)


def test_normalisations_follow_the_cited_relations(small_cat: MockCatalogue) -> None:
    t = small_cat.truth
    h = Planck18.h
    z = _col(t, "redshift")
    ez = Planck18.efunc(z)
    m = _col(t, "m500c") / h  # Msun
    # Arnaud+05: E(z) M500 = 3.84e14 Msun (kT / 5 keV)^1.71 -> median residual ~ 0
    res_t = np.log(_col(t, "T")) - np.log(5 * (ez * m / 3.84e14) ** (1 / 1.71))
    assert abs(np.median(res_t)) < 0.05
    # Pratt+09: <ln L_X> on the relation (the cool-core boost is a scatter, not a bias)
    res_l = np.log(_col(t, "L_X")) - np.log(0.514e44 * ez**2 * (m / 2e14) ** 1.62)
    assert abs(np.mean(res_l)) < 4 * np.std(res_l) / np.sqrt(len(t)) + 0.03
    # Evrard+08: sigma_DM = 1082.9 (E(z) M200c[h^-1 Msun] / 1e15)^0.3361, 0.0426 scatter
    relaxed = ~np.asarray(t["merger"])
    sig = 1082.9 * (ez * _col(t, "m200c") / 1e15) ** 0.3361
    res_s = np.log(_col(t, "sigma_dm")) - np.log(sig)
    # the median of n normal deviates has a standard error of 1.2533 sigma / sqrt(n)
    assert abs(np.median(res_s[relaxed])) < 4 * 1.2533 * 0.0426 / np.sqrt(relaxed.sum())
    assert np.std(res_s[relaxed]) == pytest.approx(0.0426, rel=0.2)
    assert np.mean(res_s[~relaxed]) > np.mean(res_s[relaxed])  # the merger tail


def test_core_excision_tightens_lx(small_cat: MockCatalogue) -> None:
    t = small_cat.truth
    snap = np.asarray(t["snapshot"])
    for s in np.unique(snap):
        k = snap == s
        x = np.log(_col(t, "m500c")[k])
        tot = np.log(_col(t, "L_X")[k])
        ce = np.log(_col(t, "L_X_ce")[k])
        r_tot = tot - np.polyval(np.polyfit(x, tot, 1), x)
        r_ce = ce - np.polyval(np.polyfit(x, ce, 1), x)
        assert np.std(r_ce) < 0.7 * np.std(r_tot)
    cc = np.asarray(t["cool_core"])
    f_core = _col(t, "L_X_core") / _col(t, "L_X")
    assert np.median(f_core[cc]) > 0.35 and np.median(f_core[~cc]) < 0.3


def test_correlated_scatter_has_the_configured_covariance() -> None:
    sc = MockConfig().scaling
    d = correlated_scatter(np.random.default_rng(0), 200_000, sc)
    np.testing.assert_allclose(np.cov(d, rowvar=False), covariance(sc), atol=3e-4)
    assert d.shape[1] == len(SCATTER_ORDER)


def test_galaxy_catalogue_is_consistent(small_cat: MockCatalogue) -> None:
    g, t = small_cat.galaxies, small_cat.truth
    assert np.all(np.diff(g["cluster_index"]) >= 0)
    assert np.all(np.abs(g["x_mpc_h"]) < HALF_WIDTH_MPC_H) and np.all(
        np.abs(g["y_mpc_h"]) < HALF_WIDTH_MPC_H
    )
    assert np.all(np.abs(g["v_los_km_s"]) < small_cat.config.galaxies.los_window_km_s)
    n_obs = np.bincount(g["cluster_index"], minlength=len(t))
    np.testing.assert_array_equal(n_obs, t["N_gal_obs"])
    members = np.bincount(g["cluster_index"], weights=g["is_member"], minlength=len(t))
    assert np.all(members <= np.asarray(t["N_gal"]))
    assert np.sum(members) > 0.9 * np.sum(t["N_gal"])  # few members fall outside the cylinder
    # the observed dispersion is that of the cylinder (interlopers inflate it)
    i = int(np.argmax(_col(t, "N_gal")))
    v = small_cat.galaxies_of(i)["v_los_km_s"].astype(float)
    assert np.std(v, ddof=1) == pytest.approx(_col(t, "sigma_v_obs")[i], rel=1e-4)
    relaxed = ~np.asarray(t["merger"])
    assert np.median(_col(t, "sigma_v_obs")[relaxed] / _col(t, "sigma_v_true")[relaxed]) > 1.2


def test_members_trace_a_projected_nfw(small_cat: MockCatalogue) -> None:
    g, t = small_cat.galaxies, small_cat.truth
    m = g[g["is_member"]]
    r200 = (_col(t, "r200c") * (1 + _col(t, "redshift")))[m["cluster_index"]]
    rp = np.hypot(m["x_mpc_h"], m["y_mpc_h"]) / r200
    assert np.all(rp <= 1.0 + 1e-5)  # members live inside R200c
    assert 0.25 < np.median(rp) < 0.55  # concentrated towards the centre (c ~ 4)
