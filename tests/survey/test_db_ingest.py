"""Ingestion into PostgreSQL: one transaction per file, rejects recorded, idempotent, no loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from astropy.table import Table
from sqlalchemy.engine import Engine

from db import tables as t
from db.errors import ClusterNotFoundError
from services.jobs.ingest_catalogues import crossmatch_catalogues, ingest_catalogue_file
from services.jobs.ingest_inbox import ingest_path
from services.jobs.ingest_observed import (
    ingest_galaxy_table,
    ingest_image_set,
    observed_model_input,
)
from survey.errors import CatalogueReadError, ImageError
from survey.galaxies import C_KMS
from survey.specs import ClusterRef
from tests.survey.conftest import make_catalogue, make_image, tiny_spec


def _count(engine: Engine, table: type, *where: sa.ColumnElement) -> int:
    with engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(table).where(*where))


def _spec_file(tmp_path: Path, name: str) -> Path:
    import yaml

    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(tiny_spec(name).model_dump(mode="json")))
    return p


def test_ingest_rejects_and_idempotence(survey_engine: Engine, tmp_path: Path) -> None:
    m = np.full(20, 1.0)
    m[2] = np.nan
    path = make_catalogue(tmp_path / "a.fits", M500=m, Z=np.r_[0.0, np.full(19, 0.2)])
    rep = ingest_catalogue_file(path, tiny_spec("cat_a"), engine=survey_engine)
    assert rep.status == "partial" and rep.n_rows == 18 and rep.n_rejected == 2
    assert any("a.fits row 3 column 'M500'" in r for r in rep.rejects)
    cat_id = sa.select(t.Catalogue.id).where(t.Catalogue.name == "cat_a").scalar_subquery()
    assert _count(survey_engine, t.Cluster, t.Cluster.catalogue_id == cat_id) == 18
    assert _count(survey_engine, t.Observable) >= 18
    with survey_engine.connect() as conn:
        rejects = conn.execute(
            sa.select(t.IngestReject.row_index, t.IngestReject.column_name, t.IngestReject.reason)
            .where(t.IngestReject.file_id == rep.file_id)
            .order_by(t.IngestReject.row_index)
        ).all()
    assert [(r[0], r[1]) for r in rejects] == [(1, "Z"), (3, "M500")]  # 1-based data rows
    # the same file again: a no-op with a clear message
    again = ingest_catalogue_file(path, tiny_spec("cat_a"), engine=survey_engine)
    assert again.status == "skipped" and "already ingested" in again.message
    assert _count(survey_engine, t.Cluster, t.Cluster.catalogue_id == cat_id) == 18
    assert _count(survey_engine, t.IngestFile, t.IngestFile.sha256 == rep.sha256) == 1
    # force re-ingests as upserts: still no duplicates
    forced = ingest_catalogue_file(path, tiny_spec("cat_a"), engine=survey_engine, force=True)
    assert forced.status == "partial"
    assert _count(survey_engine, t.Cluster, t.Cluster.catalogue_id == cat_id) == 18
    assert _count(survey_engine, t.IngestReject, t.IngestReject.file_id == rep.file_id) == 2


def test_bad_file_ingests_nothing_and_keeps_existing_rows(
    survey_engine: Engine, tmp_path: Path
) -> None:
    good = make_catalogue(tmp_path / "good.fits", seed=1)
    ingest_catalogue_file(good, tiny_spec("cat_b"), engine=survey_engine)
    before = _count(survey_engine, t.Cluster)
    # truncated copy of a (different) catalogue
    other = make_catalogue(tmp_path / "other.fits", n=300, seed=2).read_bytes()
    cut = tmp_path / "cut.fits"
    cut.write_bytes(other[:-2000])
    with pytest.raises(CatalogueReadError, match="truncated"):
        ingest_catalogue_file(cut, tiny_spec("cat_b"), engine=survey_engine)
    # a file whose rows are mostly invalid is refused as a whole
    worse = make_catalogue(tmp_path / "worse.fits", seed=3, Z=np.zeros(20))
    with pytest.raises(CatalogueReadError, match="nothing ingested"):
        ingest_catalogue_file(worse, tiny_spec("cat_b"), engine=survey_engine)
    assert _count(survey_engine, t.Cluster) == before
    with survey_engine.connect() as conn:
        statuses = dict(
            conn.execute(
                sa.select(t.IngestFile.path, t.IngestFile.status).where(
                    t.IngestFile.path.like("%cut.fits") | t.IngestFile.path.like("%worse.fits")
                )
            ).all()
        )
    assert sorted(statuses.values()) == ["rejected", "rejected"]
    # the watcher entry point reports instead of raising
    rep = ingest_path(cut, engine=survey_engine)
    assert rep.status == "rejected" and "truncated" in rep.message


def test_ingest_path_dispatch(survey_engine: Engine, tmp_path: Path) -> None:
    make_catalogue(tmp_path / "d.fits", seed=4)
    spec = _spec_file(tmp_path, "cat_c")
    (tmp_path / "drop.yaml").write_text(spec.read_text() + "file: d.fits\n")
    rep = ingest_path(tmp_path / "drop.yaml", engine=survey_engine)
    assert rep.status == "ingested" and rep.catalogue == "cat_c" and rep.n_rows == 20
    assert ingest_path(tmp_path / "drop.yaml", engine=survey_engine).status == "skipped"
    img = make_image(tmp_path / "img.fits", np.ones((10, 10)))
    rep = ingest_path(img, engine=survey_engine)
    assert rep.status == "rejected" and "image-set YAML" in rep.message
    (tmp_path / "notes.txt").write_text("hello")
    assert ingest_path(tmp_path / "notes.txt", engine=survey_engine).status == "rejected"


def test_crossmatch_is_stored(survey_engine: Engine, tmp_path: Path) -> None:
    a = make_catalogue(tmp_path / "x.fits", seed=5)
    tab = Table.read(a)
    tab["DEC"] = np.clip(tab["DEC"] + 30 / 3600, -90, 90)  # 30 arcsec away
    tab["ID"] = [f"B{i}" for i in range(len(tab))]
    tab[:5].write(tmp_path / "y.fits")
    ingest_catalogue_file(a, tiny_spec("cat_x"), engine=survey_engine)
    ingest_catalogue_file(tmp_path / "y.fits", tiny_spec("cat_y"), engine=survey_engine)
    rep = crossmatch_catalogues("cat_x", "cat_y", max_sep_arcsec=60, engine=survey_engine)
    assert rep.n_matches == 5 and rep.median_sep_arcsec == pytest.approx(30, abs=0.5)
    again = crossmatch_catalogues("cat_x", "cat_y", max_sep_arcsec=60, engine=survey_engine)
    assert again.n_matches == 5
    assert _count(survey_engine, t.ClusterMatch) == 5  # upserts, no duplicates
    with pytest.raises(ClusterNotFoundError, match="no catalogue named 'nope'"):
        crossmatch_catalogues("cat_x", "nope", engine=survey_engine)


def _latest_pairs(engine: Engine, catalogues: list[str]) -> list[tuple[int, float]]:
    """(match_set_id, delta_z) of the pairs the views use, between the named catalogues."""
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.text(
                    "SELECT m.match_set_id, m.delta_z FROM v_cluster_matches m "
                    "JOIN v_clusters c ON c.cluster_id = m.cluster_id_a "
                    "WHERE m.is_latest AND c.catalogue_name = ANY(:names)"
                ),
                {"names": catalogues},
            )
        ]


def test_crossmatches_are_versioned_sets_and_the_latest_is_used(
    survey_engine: Engine, tmp_path: Path
) -> None:
    """Cross-matches never pile up (issue 17): one set per parameters, the newest is in use."""
    a = make_catalogue(tmp_path / "x.fits", seed=6)
    tab = Table.read(a)
    tab["DEC"] = np.clip(tab["DEC"] + 30 / 3600, -90, 90)  # 30 arcsec away
    tab["ID"] = [f"B{i}" for i in range(len(tab))]
    tab["Z"][:3] += 0.2  # three pairs with |dz| = 0.2
    tab[:8].write(tmp_path / "y.fits")
    ingest_catalogue_file(a, tiny_spec("pile_x"), engine=survey_engine)
    ingest_catalogue_file(tmp_path / "y.fits", tiny_spec("pile_y"), engine=survey_engine)
    loose = crossmatch_catalogues(
        "pile_x", "pile_y", max_sep_arcsec=60, max_dz=0.5, engine=survey_engine
    )
    strict = crossmatch_catalogues(
        "pile_y", "pile_x", max_sep_arcsec=60, max_dz=0.05, engine=survey_engine
    )
    assert (loose.n_matches, strict.n_matches) == (8, 5)
    assert loose.match_set_id != strict.match_set_id and not strict.replaced
    latest = _latest_pairs(survey_engine, ["pile_x", "pile_y"])
    assert len(latest) == 5 and {s for s, _ in latest} == {strict.match_set_id}
    assert max(abs(dz) for _, dz in latest) <= 0.05
    # the loose set is kept as its own version, with its own pairs
    assert (
        _count(survey_engine, t.ClusterMatch, t.ClusterMatch.match_set_id == loose.match_set_id)
        == 8
    )
    # the same parameters again: that set's pairs are replaced (no duplicates); it is the latest
    again = crossmatch_catalogues(
        "pile_x", "pile_y", max_sep_arcsec=60, max_dz=0.5, engine=survey_engine
    )
    assert again.match_set_id == loose.match_set_id and again.replaced and again.n_previous == 8
    assert (
        _count(survey_engine, t.ClusterMatch, t.ClusterMatch.match_set_id == loose.match_set_id)
        == 8
    )
    latest = _latest_pairs(survey_engine, ["pile_x", "pile_y"])
    assert len(latest) == 8 and {s for s, _ in latest} == {loose.match_set_id}
    assert _count(survey_engine, t.MatchSet) >= 2


def test_image_and_galaxies_become_products(survey_engine: Engine, tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    make_image(tmp_path / "c.fits", rng.poisson(1.5, (400, 400)).astype(float), pix_deg=0.001)
    make_image(tmp_path / "e.fits", np.full((400, 400), 1000.0), pix_deg=0.001)
    (tmp_path / "set.yaml").write_text(
        "kind: image_set\ninstrument: TestScope\n"
        "cluster: {ra: 150.0, dec: 2.0, z: 0.3, name: TESTCL}\n"
        "bands: [{band_kev: [0.5, 2.0], counts: c.fits, exposure: e.fits}]\n"
    )
    data_dir = tmp_path / "store"
    rep = ingest_image_set(tmp_path / "set.yaml", engine=survey_engine, data_dir=data_dir)
    assert rep.status == "ingested" and set(rep.products) == {"xray_observed", "exposure", "mask"}
    cid = rep.cluster_ids[0]
    again = ingest_image_set(tmp_path / "set.yaml", engine=survey_engine, data_dir=data_dir)
    assert again.status == "skipped"
    image, meta = observed_model_input(cid, "single", engine=survey_engine, data_dir=data_dir)
    assert image.shape == (1, 128, 128) and meta["cluster"] == "TESTCL"
    assert meta["input_domain"] == "observed" and meta["caveats"]
    with survey_engine.connect() as conn:
        pmeta = conn.scalar(
            sa.select(t.Product.meta).where(
                t.Product.cluster_id == cid, t.Product.kind == "xray_observed"
            )
        )
    assert meta["masked_fraction"] == 0 and meta["exposure_scale"] == [pytest.approx(2.0)]
    assert image.sum() == pytest.approx(2 * pmeta["counts_in_field"][0], rel=1e-5)
    # galaxies of the same cluster, found by name
    n = 60
    v = rng.normal(0, 800, n)
    Table(
        {"ra": 150 + rng.normal(0, 0.05, n), "dec": 2 + rng.normal(0, 0.05, n),
         "z": 0.3 + v * 1.3 / C_KMS}
    ).write(tmp_path / "gal.csv")  # fmt: skip
    grep = ingest_galaxy_table(
        tmp_path / "gal.csv", cluster=ClusterRef(name="TESTCL"), engine=survey_engine,
        data_dir=data_dir,
    )  # fmt: skip
    assert grep.cluster_ids == [cid] and "galaxies" in grep.products
    with survey_engine.connect() as conn:
        names = set(
            conn.scalars(sa.select(t.Observable.name).where(t.Observable.cluster_id == cid))
        )
    assert {"sigma_v_biweight", "sigma_v_gapper", "N_gal", "log10_M500c_dyn"} <= names
    # the default interloper method, the estimator and the diagnostics are recorded
    assert "sigma_v_mixture" in names
    assert grep.extra["interlopers"] == "mixture" and grep.extra["estimator"] == "mixture"
    assert grep.extra["diagnostics"]["few_members"] is False
    with survey_engine.connect() as conn:
        gmeta = conn.scalar(
            sa.select(t.Product.meta).where(
                t.Product.cluster_id == cid, t.Product.kind == "galaxies"
            )
        )
    assert gmeta["interlopers"] == "mixture" and gmeta["diagnostics"]["truncated"] is False
    with pytest.raises(ClusterNotFoundError, match="no cluster named"):
        ingest_galaxy_table(tmp_path / "gal.csv", cluster=ClusterRef(name="NOPE"),
                            engine=survey_engine, data_dir=data_dir, force=True)  # fmt: skip


def test_image_without_wcs_is_refused(survey_engine: Engine, tmp_path: Path) -> None:
    make_image(tmp_path / "c.fits", np.ones((50, 50)), with_wcs=False)
    (tmp_path / "set.yaml").write_text(
        "kind: image_set\ninstrument: T\ncluster: {ra: 10.0, dec: 2.0, z: 0.3}\n"
        "bands: [{band_kev: [0.5, 2.0], counts: c.fits, exposure_s: 1000}]\n"
    )
    before = _count(survey_engine, t.Product)
    with pytest.raises(ImageError, match="no celestial WCS"):
        ingest_image_set(tmp_path / "set.yaml", engine=survey_engine, data_dir=tmp_path)
    assert _count(survey_engine, t.Product) == before
    rep = ingest_path(tmp_path / "set.yaml", engine=survey_engine, data_dir=tmp_path)
    assert rep.status == "rejected" and "WCS" in rep.message
