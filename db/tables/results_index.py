"""The scatter index of a run (revision 0011): what makes binned scatter fast on big runs.

``scatter_by_mass`` / ``scatter_by_z`` must answer for arbitrary bin edges with exact
percentiles. Over a run of 10^6 predictions the plain query (docs/sql.md) reads and sorts every
prediction of each bin (~340 ms). The index summarises a run once, after its predictions are
written (``results_build_index(run_id)``, called by ``refresh_results()``):

* :class:`ResultsIndexBlock`: the run's predictions of one (input domain, catalogue) sorted along
  an axis (``mass`` = ``cluster_log10_m500c``, ``z`` = ``cluster_redshift``) and cut into blocks
  of ``block_rows`` predictions (rows with equal axis values never straddle two blocks); each
  block keeps its axis range, count, sum of residuals and sum of squared deviations;
* :class:`ResultsIndexCell`: per block, the count of residuals in cells of ``cell_width_dex``.

A bin sums the blocks that lie inside it and reads the predictions of the partial blocks at its
edges directly: N, the mean and the variance are exact. The cells locate the residual cell that
holds each percentile's order statistics; only that cell's predictions in the bin are read and
sorted, so the percentiles are exact (``percentile_cont``'s definition) too.

:class:`ResultsIndexRun` marks a run's index as current. Any write to the run's predictions
(insert, update, delete; also the trigger-kept copies of a cluster's mass and redshift) deletes
the mark and with it the blocks and cells, and the functions fall back to the plain query until
the next build: the index can be missing, never stale.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, CheckConstraint, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from db.tables.base import Base, _created, _in

__all__ = ["INDEX_AXES", "ResultsIndexBlock", "ResultsIndexCell", "ResultsIndexRun"]

INDEX_AXES = ("mass", "z")


class ResultsIndexRun(Base):
    """A run whose scatter index is current (deleted by any write to its predictions)."""

    __tablename__ = "results_index_runs"
    __table_args__ = (
        CheckConstraint("block_rows > 0", name="block_rows_positive"),
        CheckConstraint("cell_width_dex > 0", name="cell_width_positive"),
        {"comment": "Runs whose scatter index (blocks and cells) is current"},
    )

    run_id: Mapped[int] = mapped_column(
        ForeignKey("model_runs.id", ondelete="CASCADE"), primary_key=True
    )
    block_rows: Mapped[int] = mapped_column(
        Integer, comment="Predictions per block (more where equal axis values straddle a cut)"
    )
    cell_width_dex: Mapped[float] = mapped_column(
        Float, info={"unit": "dex"}, comment="Width of the residual cells [dex]"
    )
    n_predictions: Mapped[int] = mapped_column(
        BigInteger, comment="Predictions with a residual when the index was built"
    )
    built_at: Mapped[dt.datetime] = _created()


class ResultsIndexBlock(Base):
    """A block of a run's predictions along one axis, with its exact sums."""

    __tablename__ = "results_index_blocks"
    __table_args__ = (
        CheckConstraint(_in("axis", INDEX_AXES), name="axis"),
        CheckConstraint("lo <= hi", name="range_order"),
        {"comment": "Blocks of a run's predictions sorted along an axis (scatter index)"},
    )

    run_id: Mapped[int] = mapped_column(
        ForeignKey("results_index_runs.run_id", ondelete="CASCADE"), primary_key=True
    )
    axis: Mapped[str] = mapped_column(
        String(8), primary_key=True, comment="'mass' (log10 M500c) or 'z' (redshift)"
    )
    input_domain: Mapped[str] = mapped_column(String(16), primary_key=True)
    catalogue_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    block: Mapped[int] = mapped_column(Integer, primary_key=True, comment="Order along the axis")
    lo: Mapped[float] = mapped_column(
        Float, info={"unit": ""}, comment="Smallest axis value in the block (dex or redshift)"
    )
    hi: Mapped[float] = mapped_column(
        Float, info={"unit": ""}, comment="Largest axis value in the block (dex or redshift)"
    )
    n: Mapped[int] = mapped_column(BigInteger, comment="Predictions in the block")
    s1: Mapped[float] = mapped_column(
        Float, info={"unit": "dex"}, comment="Sum of the residuals [dex]"
    )
    m2: Mapped[float] = mapped_column(
        Float,
        info={"unit": "dex2"},
        comment="Sum of squared deviations of the residuals from their mean [dex^2]",
    )


class ResultsIndexCell(Base):
    """How many residuals of a block fall in one residual cell."""

    __tablename__ = "results_index_cells"
    __table_args__ = ({"comment": "Residual counts per block and cell (scatter index)"},)

    run_id: Mapped[int] = mapped_column(
        ForeignKey("results_index_runs.run_id", ondelete="CASCADE"), primary_key=True
    )
    axis: Mapped[str] = mapped_column(String(8), primary_key=True)
    input_domain: Mapped[str] = mapped_column(String(16), primary_key=True)
    catalogue_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    block: Mapped[int] = mapped_column(Integer, primary_key=True)
    cell: Mapped[int] = mapped_column(
        BigInteger, primary_key=True, comment="floor(residual_dex / cell_width_dex)"
    )
    n: Mapped[int] = mapped_column(BigInteger, comment="Residuals of the block in the cell")
