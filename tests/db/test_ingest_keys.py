"""Ingestion keys: clusters are keyed by (catalogue, external_id), observables by (cluster, name).

Re-ingesting the same rows updates them in place (same ids, no duplicates), however many
chunks the bulk write takes.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db import ingest
from db.tables import Cluster, Observable

pytestmark = pytest.mark.db


def test_chunks_are_consecutive_slices_of_at_most_size_rows() -> None:
    rows = list(range(2001))
    assert [len(c) for c in ingest.chunks(rows)] == [1000, 1000, 1]  # default: CHUNK rows
    parts = list(ingest.chunks(rows, 700))
    assert [len(c) for c in parts] == [700, 700, 601]
    assert [x for c in parts for x in c] == rows


def test_cluster_and_observable_upserts_are_idempotent_on_their_natural_keys(
    session: Session,
) -> None:
    cid = ingest.upsert_catalogue(session, name="keys", kind="simulation", cosmology={})
    assert ingest.catalogue_id_by_name(session, "keys") == cid
    assert ingest.catalogue_id_by_name(session, "no-such-catalogue") is None
    rows = [
        {"external_id": f"h{i}", "redshift": 0.1, "log10_m500c": 14.0} for i in range(1001)
    ]  # two chunks
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
