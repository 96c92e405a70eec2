"""A catalogue's kind never changes: a mock can never take over a survey catalogue (issue 15, bug 4).

Before the fix, ``db.ingest.upsert_catalogue`` updated ``kind`` on conflict, so
``clustermass simulate --name mcxc`` turned the real MCXC catalogue into a simulation and added
its mock clusters to the 1,743 real ones.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db import ingest
from db.errors import CatalogueKindError
from db.tables import Catalogue, Cluster

pytestmark = pytest.mark.db


def _cluster(external_id: str) -> dict:
    return {"external_id": external_id, "redshift": 0.1, "log10_m500c": 14.5}


def test_a_simulation_cannot_take_a_survey_catalogues_name(session: Session) -> None:
    cid = ingest.upsert_catalogue(session, name="mcxc-kind", kind="survey", cosmology={})
    ingest.upsert_clusters(session, cid, [_cluster("real-1")])
    with pytest.raises(CatalogueKindError, match="already exists as a survey catalogue"):
        ingest.upsert_catalogue(session, name="mcxc-kind", kind="simulation", cosmology={})
    cat = session.scalar(select(Catalogue).where(Catalogue.name == "mcxc-kind"))
    assert cat.kind == "survey"
    n = session.scalar(select(func.count()).select_from(Cluster).where(Cluster.catalogue_id == cid))
    assert n == 1


def test_a_survey_cannot_take_a_simulations_name(session: Session) -> None:
    ingest.upsert_catalogue(session, name="mock-kind", kind="simulation", cosmology={})
    with pytest.raises(CatalogueKindError, match="already exists as a simulation catalogue"):
        ingest.upsert_catalogue(session, name="mock-kind", kind="survey", cosmology={})


def test_same_kind_upsert_updates_fields_and_keeps_the_id(session: Session) -> None:
    first = ingest.upsert_catalogue(
        session, name="sim-upd", kind="simulation", cosmology={}, description="a"
    )
    again = ingest.upsert_catalogue(
        session, name="sim-upd", kind="simulation", cosmology={}, description="b"
    )
    assert first == again
    assert session.get(Catalogue, first).description == "b"
