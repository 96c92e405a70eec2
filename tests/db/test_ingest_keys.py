"""Ingestion keys: clusters are keyed by (catalogue, external_id), observables by (cluster, name).

Re-ingesting the same rows updates them in place (same ids, no duplicates): the bulk writes go
through COPY into a temporary table and one merge per table (``db.ingest.copy_upsert``).
"""

from __future__ import annotations

import math

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from db import ingest
from db.tables import Cluster, Observable

pytestmark = pytest.mark.db


def test_cluster_and_observable_upserts_are_idempotent_on_their_natural_keys(
    session: Session,
) -> None:
    cid = ingest.upsert_catalogue(session, name="keys", kind="simulation", cosmology={})
    assert ingest.catalogue_id_by_name(session, "keys") == cid
    assert ingest.catalogue_id_by_name(session, "no-such-catalogue") is None
    rows = [{"external_id": f"h{i}", "redshift": 0.1, "log10_m500c": 14.0} for i in range(1001)]
    ids = ingest.upsert_clusters(session, cid, rows)
    assert sorted(ids) == sorted(r["external_id"] for r in rows)
    again = ingest.upsert_clusters(session, cid, [{**r, "log10_m500c": 14.5} for r in rows])
    assert again == ids
    n = session.scalar(select(func.count()).select_from(Cluster).where(Cluster.catalogue_id == cid))
    assert n == 1001
    assert session.scalar(select(Cluster.log10_m500c).where(Cluster.id == ids["h7"])) == 14.5
    assert session.scalar(select(Cluster.catalogue_id).where(Cluster.id == ids["h7"])) == cid

    obs = [
        {"cluster_id": ids[f"h{i}"], "name": "T", "value": 3.0, "unit": "keV"} for i in range(1001)
    ]
    assert ingest.upsert_observables(session, obs) == 1001
    changed = [{**o, "value": 4.0, "error": 0.5} for o in obs[:2]]
    assert ingest.upsert_observables(session, changed) == 2
    total = session.scalar(select(func.count()).select_from(Observable))
    assert total == 1001
    value, error, unit = session.execute(
        select(Observable.value, Observable.error, Observable.unit).where(
            Observable.cluster_id == ids["h1"], Observable.name == "T"
        )
    ).one()
    assert (value, error, unit) == (4.0, 0.5, "keV")
    untouched = session.scalar(
        select(Observable.value).where(Observable.cluster_id == ids["h2"], Observable.name == "T")
    )
    assert untouched == 3.0


def test_the_kind_refusal_says_what_to_do(session: Session) -> None:
    from db.errors import CatalogueKindError

    ingest.upsert_catalogue(session, name="kind-msg", kind="survey", cosmology={})
    with pytest.raises(
        CatalogueKindError,
        match=r"^catalogue 'kind-msg' already exists as a survey catalogue; a simulation catalogue "
        r"cannot take its name: choose another name$",
    ):
        ingest.upsert_catalogue(session, name="kind-msg", kind="simulation", cosmology={})


def _xmin(session: Session, cluster_id: int, name: str) -> str:
    """The transaction id that wrote the current version of an observable row."""
    return session.execute(
        text("SELECT xmin::text FROM observables WHERE cluster_id = :c AND name = :n"),
        {"c": cluster_id, "n": name},
    ).scalar_one()


def test_a_rerun_rewrites_only_the_rows_whose_values_changed(session: Session) -> None:
    """COPY + merge: an unchanged row keeps its version (no dead tuples for an idempotent
    re-run); a changed value is replaced; missing rows are inserted."""
    cid = ingest.upsert_catalogue(session, name="rerun", kind="simulation", cosmology={})
    ids = ingest.upsert_clusters(
        session, cid, [{"external_id": f"c{i}", "redshift": 0.2} for i in range(3)]
    )
    rows = [(ids[f"c{i}"], "T", 3.0 + i, "keV") for i in range(3)]
    assert ingest.copy_observables(session, rows) == 3
    session.commit()  # a later transaction: row versions of this one are recognisable
    before = {i: _xmin(session, ids[f"c{i}"], "T") for i in range(3)}
    changed = [rows[0], (ids["c1"], "T", 9.5, "keV"), rows[2], (ids["c2"], "L_X", 1.0, "")]
    assert ingest.copy_observables(session, changed) == 4
    after = {i: _xmin(session, ids[f"c{i}"], "T") for i in range(3)}
    assert after[0] == before[0] and after[2] == before[2]  # unchanged: not rewritten
    assert after[1] != before[1]
    values = dict(
        session.execute(
            select(Observable.cluster_id, Observable.value).where(Observable.name == "T")
        ).all()
    )
    assert values == {ids["c0"]: 3.0, ids["c1"]: 9.5, ids["c2"]: 5.0}
    assert session.scalar(select(func.count()).select_from(Observable)) == 4


def test_upsert_clusters_reports_the_clusters_it_inserted(session: Session) -> None:
    cid = ingest.upsert_catalogue(session, name="fresh", kind="simulation", cosmology={})
    first: set[int] = set()
    ids = ingest.upsert_clusters(
        session, cid, [{"external_id": "a", "redshift": 0.1}], new_ids=first
    )
    assert first == {ids["a"]}
    again: set[int] = set()
    rows = [{"external_id": "a", "redshift": 0.3}, {"external_id": "b", "redshift": 0.1}]
    both = ingest.upsert_clusters(session, cid, rows, new_ids=again)
    assert both["a"] == ids["a"]
    assert again == {both["b"]}  # 'a' existed (and was updated), 'b' is new
    assert session.scalar(select(Cluster.redshift).where(Cluster.id == ids["a"])) == 0.3


def test_a_plain_insert_of_an_existing_row_is_refused_not_duplicated(session: Session) -> None:
    cid = ingest.upsert_catalogue(session, name="dup", kind="simulation", cosmology={})
    ids = ingest.upsert_clusters(session, cid, [{"external_id": "a", "redshift": 0.1}])
    ingest.copy_observables(session, [(ids["a"], "T", 1.0, "keV")], new=True)
    with (
        pytest.raises(IntegrityError, match="uq_observables_cluster_id_name"),
        session.begin_nested(),
    ):
        ingest.copy_observables(session, [(ids["a"], "T", 2.0, "keV")], new=True)
    assert session.scalar(select(func.count()).select_from(Observable)) == 1


def test_copy_upsert_refuses_names_that_are_not_the_schemas(session: Session) -> None:
    with pytest.raises(KeyError):
        ingest.copy_upsert(session, "observables; DROP TABLE clusters", ["name"], [], key=["name"])
    with pytest.raises(KeyError, match="no column"):
        ingest.copy_upsert(session, "observables", ["name; --"], [], key=["name"])


def test_values_round_trip_exactly_through_copy(session: Session) -> None:
    """COPY text: escapes, NULL, non-finite and shortest-repr floats come back unchanged."""
    cid = ingest.upsert_catalogue(session, name="copy-text", kind="survey", cosmology={})
    odd = "tab\there\\back\nnew\rline ünï \\N"
    ids = ingest.upsert_clusters(
        session,
        cid,
        [
            {"external_id": odd, "name": None, "redshift": 0.1 + 0.2, "mass_note": odd},
            {"external_id": "\\N", "name": "", "redshift": 5e-324, "mass_note": ""},
        ],
    )
    assert set(ids) == {odd, "\\N"}
    got = session.execute(
        select(Cluster.name, Cluster.redshift, Cluster.mass_note).where(Cluster.id == ids[odd])
    ).one()
    assert tuple(got) == (None, 0.1 + 0.2, odd)
    assert session.scalar(select(Cluster.redshift).where(Cluster.id == ids["\\N"])) == 5e-324
    values = {"a": math.inf, "b": -math.inf, "c": 1 / 3, "d": -0.0, "e": 1e308}
    rows = [(ids[odd], k, v, "") for k, v in values.items()] + [(ids[odd], "f", math.nan, "")]
    assert ingest.copy_observables(session, rows) == 6
    back = dict(
        session.execute(
            select(Observable.name, Observable.value).where(Observable.cluster_id == ids[odd])
        ).all()
    )
    assert math.isnan(back.pop("f"))
    assert back == values


def test_a_bad_value_fails_the_copy_with_the_column_and_line_named(session: Session) -> None:
    """A driver error inside COPY surfaces as SQLAlchemy's (what the retry logic inspects)."""
    cid = ingest.upsert_catalogue(session, name="bad-copy", kind="simulation", cosmology={})
    ids = ingest.upsert_clusters(session, cid, [{"external_id": "a", "redshift": 0.1}])
    rows = [(ids["a"], "T", 1.0, "keV"), (ids["a"], "L_X", "not a number", "")]
    with pytest.raises(DataError, match=r"(?s)double precision.*line 2, column value"):
        ingest.copy_observables(session, rows)
