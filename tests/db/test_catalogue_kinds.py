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


def test_a_catalogue_of_another_kind_committed_meanwhile_is_not_taken_over(engine) -> None:
    """The kind check holds under a race: the check is part of the upsert, not a read before it.

    Connection A inserts a survey catalogue and holds its transaction open; connection B's
    upsert of a simulation catalogue of the same name then waits on A's row. When A commits,
    B's ``ON CONFLICT`` finds a survey catalogue: B must raise, not return that catalogue's id
    (which would let B add its mock clusters to the survey).
    """
    import threading

    name = "race-kind"
    outcome: dict[str, object] = {}
    try:
        with engine.connect() as conn_a:
            trans_a = conn_a.begin()
            with Session(bind=conn_a) as session_a:
                survey_id = ingest.upsert_catalogue(
                    session_a, name=name, kind="survey", cosmology={}
                )
                session_a.flush()

                def writer_b() -> None:
                    with Session(engine) as session_b:
                        try:
                            outcome["id"] = ingest.upsert_catalogue(
                                session_b, name=name, kind="simulation", cosmology={}
                            )
                            session_b.commit()
                        except CatalogueKindError as exc:
                            outcome["error"] = exc
                            session_b.rollback()

                thread = threading.Thread(target=writer_b)
                thread.start()
                # B waits on A's uncommitted row (a lock wait), it cannot have finished.
                thread.join(timeout=1.0)
                assert thread.is_alive(), f"B did not wait on A's row: {outcome}"
            trans_a.commit()
        thread.join(timeout=30)
        assert not thread.is_alive()
        assert "id" not in outcome, f"B took over the survey catalogue (id {outcome.get('id')})"
        assert "already exists as a survey catalogue" in str(outcome["error"])
        with Session(engine) as check:
            cat = check.scalar(select(Catalogue).where(Catalogue.name == name))
            assert cat is not None and cat.kind == "survey" and cat.id == survey_id
    finally:
        with engine.begin() as conn:
            conn.execute(Catalogue.__table__.delete().where(Catalogue.name == name))
