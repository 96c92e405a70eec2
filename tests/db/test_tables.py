"""Schema conventions: units parse, natural keys hold, constraints reject nonsense."""

from __future__ import annotations

import astropy.units as u
import pytest
import sqlalchemy as sa
from astropy.cosmology import units as cu
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db import tables


def test_every_unit_annotation_parses_with_astropy() -> None:
    checked = 0
    with u.add_enabled_units(cu):  # littleh: masses are in h^-1 Msun
        for table in tables.Base.metadata.tables.values():
            for column in table.columns:
                unit = column.info.get("unit")
                if unit is None:
                    continue
                u.Unit(unit)  # raises on a unit astropy cannot parse
                checked += 1
    assert checked >= 15


def test_masses_in_h_inverse_msun_say_so_in_their_unit() -> None:
    # issue 17: a value in h^-1 Msun labelled dex(solMass) reads as Msun (off by log10 h)
    checked = 0
    with u.add_enabled_units(cu):
        for table in tables.Base.metadata.tables.values():
            for column in table.columns:
                if "[h^-1 Msun]" not in (column.comment or ""):
                    continue
                unit = u.Unit(column.info["unit"])
                assert unit.physical_unit == u.Unit("solMass / littleh"), (table.name, column.name)
                checked += 1
    assert checked >= 5


def test_every_table_and_column_documented() -> None:
    for table in tables.Base.metadata.tables.values():
        assert table.comment, f"table {table.name} has no comment"


def _catalogue(session: Session, name: str = "cat") -> tables.Catalogue:
    cat = tables.Catalogue(name=name, kind="simulation", cosmology={"name": "Planck18"}, seed=1)
    session.add(cat)
    session.flush()
    return cat


def test_cluster_natural_key_upsert_is_idempotent(session: Session) -> None:
    cat = _catalogue(session)
    row = dict(catalogue_id=cat.id, external_id="c1", redshift=0.1, log10_m500c=14.2)
    for value in (14.2, 14.3):
        stmt = insert(tables.Cluster).values(**{**row, "log10_m500c": value})
        stmt = stmt.on_conflict_do_update(
            constraint="uq_clusters_catalogue_id_external_id",
            set_={"log10_m500c": stmt.excluded.log10_m500c},
        )
        session.execute(stmt)
    n = session.scalar(sa.select(sa.func.count()).select_from(tables.Cluster))
    m = session.scalar(sa.select(tables.Cluster.log10_m500c))
    assert (n, m) == (1, 14.3)


@pytest.mark.parametrize(
    "field, value",
    [
        ("redshift", 0.0),
        ("redshift", -0.1),
        ("ra_deg", 360.0),
        ("dec_deg", -91.0),
        ("r500c_mpc_h", 0.0),
    ],
)
def test_cluster_constraints_reject_bad_values(session: Session, field: str, value: float) -> None:
    cat = _catalogue(session)
    row = dict(catalogue_id=cat.id, external_id="bad", redshift=0.2)
    row[field] = value
    with pytest.raises(sa.exc.IntegrityError) as info, session.begin_nested():
        session.execute(insert(tables.Cluster).values(**row))
    assert "ck_clusters" in str(info.value)


def test_unknown_product_kind_rejected(session: Session) -> None:
    with pytest.raises(sa.exc.IntegrityError, match="ck_products_kind"), session.begin_nested():
        session.execute(
            insert(tables.Product).values(
                kind="photo",
                path="x",
                sha256="0" * 64,
                format="npz",
                shape=[1],
                dtype="f4",
                size_bytes=1,
            )
        )


def test_deleting_a_catalogue_cascades_to_its_clusters(session: Session) -> None:
    cat = _catalogue(session)
    session.add(tables.Cluster(catalogue_id=cat.id, external_id="a", redshift=0.3))
    session.flush()
    session.execute(sa.delete(tables.Catalogue).where(tables.Catalogue.id == cat.id))
    assert session.scalar(sa.select(sa.func.count()).select_from(tables.Cluster)) == 0
