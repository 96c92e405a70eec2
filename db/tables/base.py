"""Declarative base, naming convention and the allowed values of enumerated columns."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    DateTime,
    Integer,
    MetaData,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

CATALOGUE_KINDS = ("simulation", "survey")
PRODUCT_KINDS = (
    "xray_total",  # AGN + ICM + background photon counts (mock), bands along axis 0
    "xray_agn",  # AGN-only counts (mock)
    "xray_icm",  # ICM-only counts (mock)
    "xray_observed",  # a real image reprojected to the model grid
    "exposure",  # exposure map [s]
    "background",  # background model [counts/pixel]
    "mask",  # footprint / point-source mask
    "galaxies",  # member + interloper galaxy table (npz)
    "kde_cube",  # 64^3 KDE of (x, y, v_los)
    "saliency",  # attribution maps
    "weights",  # network weights (torch state dicts)
    "raw_file",  # an ingested source file, kept byte-for-byte
)
MODEL_KINDS = ("single", "multi", "multimodal")
FOLD_SCHEMES = ("octant", "snapshot", "none")
RUN_STATUSES = ("pending", "running", "done", "failed", "cancelled")
SCATTER_AXES = ("all", "mass", "z")
ATTRIBUTION_METHODS = ("saliency", "integrated_gradients", "smoothgrad")
INGEST_STATUSES = ("ingested", "partial", "rejected", "superseded")


def _in(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention (stable Alembic diffs)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSONB, list[int]: ARRAY(Integer)}


def _created() -> Mapped[dt.datetime]:
    return mapped_column(
        DateTime(timezone=True), server_default=func.now(), comment="Row creation time (UTC)"
    )
