"""Results tables (revision 0002): proxy mass estimates and bootstrap intervals.

Declared on :class:`db.tables.base.Base` and re-exported by :mod:`db.tables`
(``tables.ProxyEstimate``, ``tables.ScatterBootstrap``). Conventions as in :mod:`db.tables`.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from db.tables.base import SCATTER_AXES, Base, _created, _in

__all__ = ["ProxyEstimate", "ScatterBootstrap"]


class ProxyEstimate(Base):
    """A cluster's mass inferred from one scalar proxy by inverting a fitted scaling relation.

    Filled by :func:`db.results.fit_proxy_estimates` (per-snapshot OLS of
    ``ln s = pi + alpha * ln(M / 2e14)``, as for the scalar proxies of Ho et al. 2023,
    arXiv:2303.00005) or by the official baselines; the results functions bin these exactly as they bin network predictions.
    """

    __tablename__ = "proxy_estimates"
    __table_args__ = (
        UniqueConstraint("cluster_id", "proxy"),
        Index("ix_proxy_estimates_proxy", "proxy"),
        {"comment": "Masses inferred from scalar proxies (inverted scaling relations)"},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    proxy: Mapped[str] = mapped_column(String(64), comment="Observable name (observables.name)")
    log10_m500c_est: Mapped[float] = mapped_column(
        Float, info={"unit": "dex(solMass / littleh)"}, comment="Inferred log10 M500c [h^-1 Msun]"
    )
    method: Mapped[str] = mapped_column(
        String(64), comment="How it was inferred, e.g. 'ols_per_snapshot'"
    )
    fit_group: Mapped[str] = mapped_column(
        String(64), comment="Sample the relation was fitted on, e.g. 'snapshot:3' or 'all'"
    )
    slope: Mapped[float] = mapped_column(
        Float, info={"unit": ""}, comment="Fitted slope alpha = d ln s / d ln M"
    )
    intercept: Mapped[float] = mapped_column(
        Float, info={"unit": ""}, comment="Fitted intercept pi = ln s at M = 2e14 h^-1 Msun"
    )
    n_fit: Mapped[int] = mapped_column(Integer, comment="Clusters in the fit")
    created_at: Mapped[dt.datetime] = _created()


class ScatterBootstrap(Base):
    """Bootstrap confidence interval on sigma_lnM in one bin of one run's predictions."""

    __tablename__ = "scatter_bootstrap"
    __table_args__ = (
        UniqueConstraint(
            "run_id",
            "input_domain",
            "axis",
            "bin_lo",
            "bin_hi",
            "ci_level",
            "n_resamples",
            "seed",
            name="uq_scatter_bootstrap_natural_key",
        ),
        CheckConstraint(_in("axis", SCATTER_AXES), name="axis"),
        CheckConstraint("bin_lo < bin_hi", name="bin_order"),
        CheckConstraint("ci_level > 0 AND ci_level < 1", name="ci_level"),
        CheckConstraint("n_resamples > 0", name="n_resamples_positive"),
        {"comment": "Bootstrap CIs of the scatter per bin (written by db.results.store_bootstrap)"},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("model_runs.id", ondelete="CASCADE"))
    input_domain: Mapped[str] = mapped_column(
        String(16), comment="Predictions used: 'mock' or 'observed' (predictions.input_domain)"
    )
    axis: Mapped[str] = mapped_column(
        String(8), comment="Binned quantity: 'mass' (log10 M500c), 'z' or 'all' (one bin)"
    )
    bin_lo: Mapped[float] = mapped_column(
        Float, comment="Lower bin edge (inclusive; log10 h^-1 Msun or redshift)"
    )
    bin_hi: Mapped[float] = mapped_column(Float, comment="Upper bin edge (exclusive)")
    n: Mapped[int] = mapped_column(Integer, comment="Predictions in the bin")
    bias_dex: Mapped[float | None] = mapped_column(
        Float, info={"unit": "dex"}, comment="Mean residual log10 M_pred - log10 M_true [dex]"
    )
    sigma_lnm: Mapped[float | None] = mapped_column(
        Float, info={"unit": ""}, comment="stddev_samp(residual) * ln 10 (NULL when n < 2)"
    )
    ci_lo: Mapped[float | None] = mapped_column(
        Float, info={"unit": ""}, comment="Lower bootstrap percentile of sigma_lnM"
    )
    ci_hi: Mapped[float | None] = mapped_column(
        Float, info={"unit": ""}, comment="Upper bootstrap percentile of sigma_lnM"
    )
    ci_level: Mapped[float] = mapped_column(
        Float, comment="Central probability of [ci_lo, ci_hi], e.g. 0.68"
    )
    n_resamples: Mapped[int] = mapped_column(Integer, comment="Bootstrap resamples")
    seed: Mapped[int] = mapped_column(BigInteger, comment="numpy SeedSequence entropy")
    created_at: Mapped[dt.datetime] = _created()
