"""Ingestion keys: clusters are keyed by (catalogue, external_id), observables by (cluster, name).

Re-ingesting the same rows updates them in place (same ids, no duplicates): the bulk writes go
through COPY into a temporary table and one merge per table (``db.ingest.copy_upsert``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
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


def test_rows_the_text_format_cannot_hold_go_through_the_driver_in_between(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """numpy scalars are not written by ``repr`` (``np.float64(1.5)`` is no COPY value): they
    go through the driver, between text rows flushed in batches, and every value lands."""
    monkeypatch.setattr(ingest, "_BATCH", 3)  # several batch flushes in a handful of rows
    cid = ingest.upsert_catalogue(session, name="mixed", kind="simulation", cosmology={})
    ids = ingest.upsert_clusters(session, cid, [{"external_id": "a", "redshift": 0.1}])
    values: list[float] = [0.5, 1 / 3, 2.0, 7.25, 1e-300, 3.5, 11.0, -4.0]
    given: list[object] = list(values)
    given[2], given[6] = np.float64(2.0), np.int64(11)  # not plain Python numbers
    rows = [(ids["a"], f"q{i}", v, "u") for i, v in enumerate(given)]
    rows[6] = (np.int64(ids["a"]), "q6", np.float64(11.0), "u")  # every number a numpy scalar
    assert ingest.copy_observables(session, rows) == len(rows)
    back = dict(
        session.execute(
            select(Observable.name, Observable.value).where(Observable.cluster_id == ids["a"])
        ).all()
    )
    assert back == {f"q{i}": v for i, v in enumerate(values)}


def _product(cluster_id: int, label: str, meta: object) -> tuple[object, ...]:
    return (
        cluster_id,
        "xray_total",
        label,
        f"{label}.npz",
        "0" * 64,
        "npz",
        [2, 3],
        "<f4",
        24,
        meta,
    )


_PRODUCT_COLUMNS = (
    "cluster_id",
    "kind",
    "label",
    "path",
    "sha256",
    "format",
    "shape",
    "dtype",
    "size_bytes",
    "meta",
)


def test_json_values_are_stored_as_json_and_none_as_sql_null(session: Session) -> None:
    """A dict in a JSONB column is stored as that JSON document; ``None`` is SQL NULL (which
    ``products.meta``'s NOT NULL refuses), never the JSON value ``null``."""
    cid = ingest.upsert_catalogue(session, name="json", kind="simulation", cosmology={})
    ids = ingest.upsert_clusters(session, cid, [{"external_id": "a", "redshift": 0.1}])
    meta = {"band": [0.5, 2.0], "note": "x"}
    ingest.copy_upsert(
        session,
        "products",
        _PRODUCT_COLUMNS,
        [_product(ids["a"], "m", meta)],
        key=("cluster_id", "kind", "label"),
    )
    stored = session.execute(
        text("SELECT meta, shape FROM products WHERE cluster_id = :c AND label = 'm'"),
        {"c": ids["a"]},
    ).one()
    assert tuple(stored) == (meta, [2, 3])
    with (
        pytest.raises(IntegrityError, match=r"(?s)null value in column \"meta\""),
        session.begin_nested(),
    ):
        ingest.copy_upsert(
            session,
            "products",
            _PRODUCT_COLUMNS,
            [_product(ids["a"], "none", None)],
            key=("cluster_id", "kind", "label"),
        )


def test_copy_upsert_returns_the_rows_it_was_asked_for(session: Session) -> None:
    """``returning`` gives ``(*columns, inserted)`` per row, for a plain insert (``new``) and
    for a key-only upsert (``DO NOTHING``: existing rows are reported, not duplicated);
    without ``returning`` the result is an empty list."""
    cid = ingest.upsert_catalogue(session, name="ret", kind="simulation", cosmology={})
    ids = ingest.upsert_clusters(session, cid, [{"external_id": "a", "redshift": 0.1}])
    got = ingest.copy_upsert(
        session,
        "observables",
        ("cluster_id", "name", "value"),
        [(ids["a"], "T", 1.0), (ids["a"], "L_X", 2.0)],
        key=("cluster_id", "name"),
        returning=("name",),
        new=True,
    )
    assert sorted(got) == [("L_X", True), ("T", True)]
    none = ingest.copy_upsert(
        session,
        "observables",
        ("cluster_id", "name", "value"),
        [(ids["a"], "T", 5.0)],
        key=("cluster_id", "name"),
    )
    assert none == []
    run = session.execute(
        text(
            "INSERT INTO model_runs (run_key, kind, config, seed, fold_scheme) "
            "VALUES ('ret', 'single', '{}', 1, 'octant') RETURNING id"
        )
    ).scalar_one()
    key = ("run_id", "fold")
    first = ingest.copy_upsert(
        session, "model_run_folds", key, [(run, 0), (run, 1)], key=key, returning=("fold",)
    )
    assert sorted(first) == [(0, True), (1, True)]
    again = ingest.copy_upsert(
        session, "model_run_folds", key, [(run, 1), (run, 2)], key=key, returning=("fold",)
    )
    assert sorted(again) == [(1, False), (2, True)]
    n = session.scalar(text("SELECT count(*) FROM model_run_folds WHERE run_id = :r"), {"r": run})
    assert n == 3


def test_a_copy_error_names_the_copy_statement(session: Session) -> None:
    cid = ingest.upsert_catalogue(session, name="copy-stmt", kind="simulation", cosmology={})
    ids = ingest.upsert_clusters(session, cid, [{"external_id": "a", "redshift": 0.1}])
    with pytest.raises(DataError) as err:
        ingest.copy_observables(session, [(ids["a"], "T", "nan-ish", "")])
    assert str(err.value.statement).startswith("COPY _cm_stage_observables_")
    assert err.value.connection_invalidated is False


def test_a_connection_lost_during_copy_is_reported_as_invalidated(engine: Engine) -> None:
    """The server going away mid-COPY surfaces as SQLAlchemy's error with
    ``connection_invalidated`` set (the pool and the retry logic rely on it)."""
    s = Session(engine)
    try:
        pid = s.execute(text("SELECT pg_backend_pid()")).scalar_one()

        def rows() -> Iterator[tuple[int, str, float, str]]:
            yield (1, "first", 1.0, "")
            with engine.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            for i in range(50_000):
                yield (1, f"o{i}", float(i), "")

        with pytest.raises(OperationalError) as err:
            ingest.copy_observables(s, rows())
        assert err.value.connection_invalidated is True
    finally:
        s.connection().invalidate()  # the pool must not get the dead connection back
        s.close()


def test_a_rows_own_catalogue_id_is_ignored(session: Session) -> None:
    """Clusters go into the catalogue given as the argument, whatever the rows say."""
    cid = ingest.upsert_catalogue(session, name="mine", kind="simulation", cosmology={})
    other = ingest.upsert_catalogue(session, name="other", kind="simulation", cosmology={})
    ids = ingest.upsert_clusters(
        session, cid, [{"catalogue_id": other, "external_id": "a", "redshift": 0.1}]
    )
    assert session.scalar(select(Cluster.catalogue_id).where(Cluster.id == ids["a"])) == cid


def test_observable_columns_some_rows_lack_take_the_defaults(session: Session) -> None:
    """``unit`` and ``note`` that one row gives and another lacks are '' in the other; an
    empty call writes nothing and says so."""
    assert ingest.upsert_observables(session, []) == 0
    cid = ingest.upsert_catalogue(session, name="defaults", kind="simulation", cosmology={})
    ids = ingest.upsert_clusters(session, cid, [{"external_id": "a", "redshift": 0.1}])
    rows = [
        {"cluster_id": ids["a"], "name": "T", "value": 3.0, "unit": "keV", "note": "fit"},
        {"cluster_id": ids["a"], "name": "Y", "value": 1.0},
    ]
    assert ingest.upsert_observables(session, rows) == 2
    got = {
        n: (u, note)
        for n, u, note in session.execute(
            select(Observable.name, Observable.unit, Observable.note).where(
                Observable.cluster_id == ids["a"]
            )
        ).all()
    }
    assert got == {"T": ("keV", "fit"), "Y": ("", "")}
