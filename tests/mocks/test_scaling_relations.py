"""The mean mass-observable relations (mocks.scaling): pivots, slopes, E(z) and h conventions.

Each relation, evaluated at its pivot, returns its cited normalisation; a factor 2 in mass
multiplies the observable by 2^slope; masses arrive in h^-1 Msun and the literature pivots are
in Msun (M[Msun] = M[h^-1 Msun] / h).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from mocks.config import SCATTER_ORDER, IcmConfig, ScalingConfig
from mocks.scaling import (
    correlated_scatter,
    covariance,
    mean_ln_cool_core_boost,
    mean_ln_lx,
    mean_ln_mgas,
    mean_ln_mstar,
    mean_ln_ngal,
    mean_ln_sigma_dm,
    mean_ln_t,
)

H = 0.7  # not 1, so that h and 1/h differ
EZ = 1.3  # not 1, so that E(z) powers show
LN2 = math.log(2.0)


def _slope(f, m: float) -> float:
    """d ln X / d ln M from a factor 2 in mass."""
    return float((f(2 * m) - f(m)) / LN2)


def test_lx_is_pratt09_normalisation_at_2e14_msun_times_ez_squared() -> None:
    cfg = ScalingConfig()
    pivot_h = 2e14 * H  # 2e14 Msun in h^-1 Msun
    assert mean_ln_lx(pivot_h, 1.0, H, cfg) == pytest.approx(math.log(cfg.lx_norm_erg_s))
    assert mean_ln_lx(pivot_h, EZ, H, cfg) == pytest.approx(
        math.log(cfg.lx_norm_erg_s) + cfg.lx_ez_power * math.log(EZ)
    )
    assert _slope(lambda m: mean_ln_lx(m, EZ, H, cfg), pivot_h) == pytest.approx(cfg.lx_slope)


def test_temperature_is_5_kev_where_ez_m500_is_the_arnaud05_normalisation() -> None:
    cfg = ScalingConfig()
    m_h = cfg.mt_norm_msun / EZ * H  # E(z) M500 [Msun] = A
    assert mean_ln_t(m_h, EZ, H, cfg) == pytest.approx(math.log(5.0))
    assert _slope(lambda m: mean_ln_t(m, EZ, H, cfg), m_h) == pytest.approx(1 / cfg.mt_slope)


@pytest.mark.parametrize(
    "relation, fraction, slope",
    [
        (mean_ln_mgas, "mgas_fraction_pivot", "mgas_slope"),
        (mean_ln_mstar, "mstar_fraction_pivot", "mstar_slope"),
    ],
)
def test_baryon_masses_are_the_pivot_fraction_of_1e14_msun(relation, fraction, slope) -> None:
    """At M500 = 1e14 Msun, M_gas (M_star) = f_pivot M500, returned in h^-1 Msun."""
    cfg = ScalingConfig()
    pivot_h = 1e14 * H
    expected_h = getattr(cfg, fraction) * pivot_h
    assert relation(pivot_h, H, cfg) == pytest.approx(math.log(expected_h))
    assert _slope(lambda m: relation(m, H, cfg), pivot_h) == pytest.approx(getattr(cfg, slope))


def test_member_count_pivot_is_1e14_h_inverse_msun() -> None:
    cfg = ScalingConfig()
    assert mean_ln_ngal(1e14, cfg) == pytest.approx(math.log(cfg.ngal_pivot))
    assert _slope(lambda m: mean_ln_ngal(m, cfg), 1e14) == pytest.approx(cfg.ngal_slope)


def test_velocity_dispersion_is_evrard08_at_ez_m200c_1e15() -> None:
    cfg = ScalingConfig()
    m_h = 1e15 / EZ
    assert mean_ln_sigma_dm(m_h, EZ, cfg) == pytest.approx(math.log(cfg.sigma_dm_15_km_s))
    assert _slope(lambda m: mean_ln_sigma_dm(m, EZ, cfg), m_h) == pytest.approx(cfg.sigma_dm_slope)


def test_relations_take_arrays_of_masses() -> None:
    cfg = ScalingConfig()
    m = np.array([1e14, 3e14, 1e15])
    np.testing.assert_allclose(
        mean_ln_lx(m, EZ, H, cfg), [mean_ln_lx(x, EZ, H, cfg) for x in m], rtol=1e-12
    )


def test_cool_core_boost_is_the_mean_of_ln_1_plus_rho_over_the_lognormal() -> None:
    icm = IcmConfig(cool_core_fraction=0.4, cc_lum_ratio_median=0.8, cc_lum_ratio_scatter_ln=0.5)

    def integrand(x: float) -> float:
        rho = icm.cc_lum_ratio_median * math.exp(icm.cc_lum_ratio_scatter_ln * x)
        return math.log1p(rho) * math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)

    exact = icm.cool_core_fraction * integrate.quad(integrand, -40.0, 40.0, epsabs=1e-13)[0]
    assert mean_ln_cool_core_boost(icm) == pytest.approx(exact, rel=1e-9)
    assert mean_ln_cool_core_boost(icm, n_nodes=60) == pytest.approx(exact, rel=1e-9)
    # no spread: every cool core has rho = median; no cool cores: no boost
    flat = IcmConfig(cool_core_fraction=0.4, cc_lum_ratio_median=0.8, cc_lum_ratio_scatter_ln=0.0)
    assert mean_ln_cool_core_boost(flat) == pytest.approx(0.4 * math.log(1.8), rel=1e-12)
    assert mean_ln_cool_core_boost(IcmConfig(cool_core_fraction=0.0)) == 0.0


def test_covariance_is_correlation_times_the_outer_product_of_widths() -> None:
    cfg = ScalingConfig()
    cov = covariance(cfg)
    widths = np.array([cfg.scatter[k] for k in SCATTER_ORDER])
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), widths, rtol=1e-12)
    np.testing.assert_allclose(cov[0, 1], cfg.correlation[0][1] * widths[0] * widths[1])


def test_a_zero_width_gives_an_exactly_zero_deviation_not_nan() -> None:
    """A singular covariance (one width 0) is allowed: eigh, negative round-off clipped."""
    base = ScalingConfig()
    cfg = ScalingConfig(scatter={**base.scatter, "M_star": 0.0})
    d = correlated_scatter(np.random.default_rng(1), 20_000, cfg)
    assert np.all(np.isfinite(d))
    np.testing.assert_allclose(d[:, SCATTER_ORDER.index("M_star")], 0.0, atol=1e-7)
    np.testing.assert_allclose(d.std(axis=0)[0], base.scatter["T"], rtol=0.03)
    np.testing.assert_allclose(d.mean(axis=0), 0.0, atol=0.01)
