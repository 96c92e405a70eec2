"""What an ingestion is: file content + spec content + result-changing options.

Re-ingesting with a corrected spec or another method changes the database without ``--force``;
one file read into several catalogues keeps one provenance row per catalogue; a re-ingested
catalogue holds exactly the file's rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import sqlalchemy as sa
from astropy.table import Table
from sqlalchemy.engine import Engine

from db import tables as t
from services.jobs.ingest_catalogues import ingest_catalogue_file
from services.jobs.ingest_observed import ingest_galaxy_table
from survey.galaxies import C_KMS
from survey.specs import ClusterRef
from tests.survey.conftest import make_catalogue, tiny_spec


def _clusters(engine: Engine, catalogue: str) -> dict[str, float]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.Cluster.external_id, t.Cluster.log10_m500c)
            .join(t.Catalogue, t.Catalogue.id == t.Cluster.catalogue_id)
            .where(t.Catalogue.name == catalogue)
        ).all()
    return dict(rows)


def _observable_names(engine: Engine, catalogue: str) -> set[str]:
    with engine.connect() as conn:
        return set(
            conn.scalars(
                sa.select(t.Observable.name)
                .join(t.Cluster, t.Cluster.id == t.Observable.cluster_id)
                .join(t.Catalogue, t.Catalogue.id == t.Cluster.catalogue_id)
                .where(t.Catalogue.name == catalogue)
            )
        )


def _files(engine: Engine, sha256: str) -> list[tuple[str, str | None, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.IngestFile.status, t.Catalogue.name, t.IngestFile.target)
            .outerjoin(t.Catalogue, t.Catalogue.id == t.IngestFile.catalogue_id)
            .where(t.IngestFile.sha256 == sha256)
            .order_by(t.IngestFile.id)
        ).all()
    return [tuple(r) for r in rows]


def test_a_corrected_spec_reingests_the_same_file(survey_engine: Engine, tmp_path: Path) -> None:
    path = make_catalogue(tmp_path / "fix.fits", seed=4)
    wrong = tiny_spec("re_spec", mass={"column": "M500", "definition": "500c",
                                       "h_convention": "none"})  # fmt: skip
    first = ingest_catalogue_file(path, wrong, engine=survey_engine)
    before = _clusters(survey_engine, "re_spec")
    assert first.status == "ingested" and "L_X" in _observable_names(survey_engine, "re_spec")

    fixed = tiny_spec("re_spec", mass={"column": "M500", "definition": "500c",
                                       "h_convention": "h^-1"}, luminosity=None)  # fmt: skip
    second = ingest_catalogue_file(path, fixed, engine=survey_engine)
    after = _clusters(survey_engine, "re_spec")
    assert second.status == "ingested", second.message  # not "already ingested"
    assert after.keys() == before.keys()
    assert all(after[k] != before[k] for k in after)  # the corrected masses replaced the old
    assert "L_X" not in _observable_names(survey_engine, "re_spec")  # no longer mapped
    assert _files(survey_engine, first.sha256) == [
        ("superseded", "re_spec", "catalogue:re_spec"),
        ("ingested", "re_spec", "catalogue:re_spec"),
    ]
    # the first spec again is a change again (the database holds the second's values)
    third = ingest_catalogue_file(path, wrong, engine=survey_engine)
    assert third.status == "ingested" and _clusters(survey_engine, "re_spec") == before
    # and the same file with the same spec as the current ingestion is a no-op
    assert ingest_catalogue_file(path, wrong, engine=survey_engine).status == "skipped"


def test_a_reingested_catalogue_holds_exactly_the_files_rows(
    survey_engine: Engine, tmp_path: Path
) -> None:
    spec = tiny_spec("re_rows")
    ingest_catalogue_file(make_catalogue(tmp_path / "v1.fits", n=20), spec, engine=survey_engine)
    assert len(_clusters(survey_engine, "re_rows")) == 20
    smaller = make_catalogue(tmp_path / "v2.fits", n=15)  # CL0015..CL0019 dropped from the file
    rep = ingest_catalogue_file(smaller, spec, engine=survey_engine)
    assert sorted(_clusters(survey_engine, "re_rows")) == [f"CL{i:04d}" for i in range(15)]
    assert rep.extra["n_removed"] == 5 and "5 clusters no longer in the file" in rep.message


def test_one_file_read_into_two_catalogues_keeps_both_provenance_rows(
    survey_engine: Engine, tmp_path: Path
) -> None:
    path = make_catalogue(tmp_path / "shared.fits", seed=8)
    a = ingest_catalogue_file(path, tiny_spec("re_cat_a"), engine=survey_engine)
    b = ingest_catalogue_file(path, tiny_spec("re_cat_b"), engine=survey_engine)
    assert b.status == "ingested" and b.file_id != a.file_id
    assert len(_clusters(survey_engine, "re_cat_a")) == len(_clusters(survey_engine, "re_cat_b"))
    assert _files(survey_engine, a.sha256) == [
        ("ingested", "re_cat_a", "catalogue:re_cat_a"),
        ("ingested", "re_cat_b", "catalogue:re_cat_b"),
    ]
    forced = ingest_catalogue_file(path, tiny_spec("re_cat_b"), engine=survey_engine, force=True)
    assert forced.file_id == b.file_id  # force re-runs that ingestion, it re-points nothing
    assert [f[1] for f in _files(survey_engine, a.sha256)] == ["re_cat_a", "re_cat_b"]


def test_galaxies_with_another_interloper_method_reingest(
    survey_engine: Engine, tmp_path: Path
) -> None:
    rng = np.random.default_rng(5)
    n = 60
    v = rng.normal(0, 800, n)
    Table(
        {"ra": 210 + rng.normal(0, 0.05, n), "dec": -5 + rng.normal(0, 0.05, n),
         "z": 0.25 + v * 1.25 / C_KMS}
    ).write(tmp_path / "members.csv")  # fmt: skip
    data_dir = tmp_path / "store"
    catalogue = make_catalogue(tmp_path / "host.fits", n=1, RA=[210.0], DEC=[-5.0], Z=[0.25])
    ingest_catalogue_file(catalogue, tiny_spec("re_gal_host"), engine=survey_engine)
    ref = ClusterRef(catalogue="re_gal_host", external_id="CL0000")

    def ingest(method: str) -> str:
        rep = ingest_galaxy_table(
            tmp_path / "members.csv", cluster=ref, interlopers=method, engine=survey_engine,
            data_dir=data_dir,
        )  # fmt: skip
        return rep.status

    def stored_method() -> str:
        with survey_engine.connect() as conn:
            return conn.scalar(
                sa.select(t.Observable.note)
                .join(t.Cluster, t.Cluster.id == t.Observable.cluster_id)
                .where(t.Cluster.external_id == "CL0000", t.Observable.name == "sigma_v_gapper")
            )

    assert ingest("shifting_gapper") == "ingested" and "(shifting_gapper)" in stored_method()
    assert ingest("sigma_clip") == "ingested" and "(sigma_clip)" in stored_method()
    assert ingest("shifting_gapper") == "ingested" and "(shifting_gapper)" in stored_method()
    assert ingest("shifting_gapper") == "skipped"


def test_without_a_spec_a_file_ingested_with_any_spec_is_skipped(
    survey_engine: Engine, tmp_path: Path
) -> None:
    # The inbox ingests "whatever this file is": seeing a file again is a no-op, even when it
    # was ingested with a spec of the user's that the shipped specs cannot detect.
    path = make_catalogue(tmp_path / "inbox.fits", seed=12)
    first = ingest_catalogue_file(path, tiny_spec("re_inbox"), engine=survey_engine)
    again = ingest_catalogue_file(path, engine=survey_engine)
    assert again.status == "skipped" and again.file_id == first.file_id
