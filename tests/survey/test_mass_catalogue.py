"""The mass catalogue end to end (issue 17): two catalogues, two member tables of one cluster,
two cross-matches with different cuts, CNN predictions of two runs, read through
``v_mass_catalogue`` as ``clustermass_reader``; names searchable; catalogues deleted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from astropy.table import Table
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cli.main import app
from db import cluster_info, mass_catalogue
from db import tables as t
from db.errors import CatalogueInUseError
from db.session import session_scope
from services.jobs.ingest_catalogues import crossmatch_catalogues, ingest_catalogue_file
from services.jobs.ingest_observed import FEW_MEMBERS, dynamical_flags, ingest_galaxy_table
from services.settings import get_settings
from survey.cosmology import PLANCK18
from survey.galaxies import C_KMS, analyse_galaxies
from survey.specs import ClusterRef
from tests.survey.conftest import make_catalogue, tiny_spec

READER = "clustermass_reader"
COMA = (194.9530, 27.9806, 0.0231)
N = 12  # clusters in catalogue "alpha"; "beta" holds the first 8 of them, moved 30 arcsec


def _reader(engine: Engine) -> sa.Engine:
    url = make_url(engine.url.render_as_string(False)).set(username=READER, password=None)
    return sa.create_engine(url)


def _galaxies(path: Path, n: int, sigma: float, clip: float | None, seed: int) -> Path:
    """A member table of Coma: Gaussian velocities (clipped at +-clip sigma when given)."""
    rng = np.random.default_rng(seed)
    v = rng.normal(0, sigma, 4 * n)
    if clip is not None:
        v = v[np.abs(v) < clip * sigma]
    v = v[:n]
    ra = COMA[0] + rng.normal(0, 0.15, v.size) / np.cos(np.radians(COMA[1]))
    dec = COMA[1] + rng.normal(0, 0.15, v.size)
    Table({"ra": ra, "dec": dec, "z": COMA[2] + v * (1 + COMA[2]) / C_KMS}).write(path)
    return path


@pytest.fixture(scope="module")
def built(survey_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("masscat")
    rng = np.random.default_rng(17)
    ra, dec = rng.uniform(0, 360, N), rng.uniform(-60, 60, N)
    z = rng.uniform(0.1, 0.5, N)
    ra[0], dec[0], z[0] = COMA
    names = np.array([f"X{i}" for i in range(N)], dtype="<U20")
    names[0] = "Coma"
    alt = np.array([""] * N, dtype="<U20")
    alt[0] = "A1656"
    a = make_catalogue(tmp / "alpha.fits", n=N, seed=1, RA=ra, DEC=dec, Z=z, NAME=names, ALT=alt)
    tab = Table.read(a)[:8]
    tab["DEC"] = tab["DEC"] + 30 / 3600
    tab["ID"] = [f"B{i}" for i in range(8)]
    tab["NAME"] = ["ABELL 1656"] + [f"Y{i}" for i in range(1, 8)]
    tab["ALT"] = [""] * 8
    tab["Z"][5:] += 0.2  # three pairs only a loose redshift cut accepts
    tab.write(tmp / "beta.fits")
    spec = {"name_columns": ["NAME", "ALT"]}
    ingest_catalogue_file(a, tiny_spec("alpha", **spec), engine=survey_engine)
    ingest_catalogue_file(tmp / "beta.fits", tiny_spec("beta", **spec), engine=survey_engine)
    # two member tables of Coma: the full field, and a list hard-clipped in velocity
    coma = ClusterRef(catalogue="alpha", external_id="CL0000")
    full = ingest_galaxy_table(
        _galaxies(tmp / "coma_full.csv", 300, 1000.0, None, 3), cluster=coma,
        engine=survey_engine, data_dir=tmp / "store",
    )  # fmt: skip
    clipped = ingest_galaxy_table(
        _galaxies(tmp / "coma_clipped.csv", 300, 1000.0, 1.6, 4), cluster=coma,
        engine=survey_engine, data_dir=tmp / "store",
    )  # fmt: skip
    loose = crossmatch_catalogues("alpha", "beta", max_sep_arcsec=60, max_dz=0.5,
                                  engine=survey_engine)  # fmt: skip
    strict = crossmatch_catalogues("beta", "alpha", max_sep_arcsec=60, max_dz=0.05,
                                   engine=survey_engine)  # fmt: skip
    # CNN predictions of Coma (catalogue alpha's row) by two runs
    with session_scope(survey_engine) as s:
        cid = s.scalar(
            sa.select(t.Cluster.id)
            .join(t.Catalogue)
            .where(t.Catalogue.name == "alpha", t.Cluster.external_id == "CL0000")
        )
        runs = []
        for i, (m, e) in enumerate(((14.6, 0.12), (14.8, 0.10))):
            run = t.ModelRun(run_key=f"masscat{i}", name=f"cnn{i}", kind="single", config={},
                             seed=i, fold_scheme="none", status="done")  # fmt: skip
            s.add(run)
            s.flush()
            s.add(t.Prediction(run_id=run.id, cluster_id=cid, log10_m500c_pred=m,
                               log10_m500c_pred_err=e, input_domain="observed"))  # fmt: skip
            runs.append(run.id)
    yield {"full": full, "clipped": clipped, "loose": loose, "strict": strict, "coma": cid,
           "runs": runs, "tmp": tmp}  # fmt: skip


def _catalogue(engine: Engine, sql: str = "SELECT * FROM v_mass_catalogue", **p: object) -> list:
    reader = _reader(engine)
    with reader.connect() as conn:
        assert conn.scalar(sa.text("SELECT current_user")) == READER
        rows = [dict(r._mapping) for r in conn.execute(sa.text(sql), p)]
    reader.dispose()
    return rows


def _ours(rows: list[dict]) -> list[dict]:
    return [r for r in rows if set(r["catalogues"]) <= {"alpha", "beta"}]


def test_one_row_per_physical_cluster_from_the_latest_match_set(
    built: dict, survey_engine: Engine
) -> None:
    assert (built["loose"].n_matches, built["strict"].n_matches) == (8, 5)
    rows = _ours(_catalogue(survey_engine))
    # 12 + 8 clusters, 5 pairs merged by the strict (latest) set; the 3 |dz| = 0.2 pairs are
    # not merged: no stale pairs of the loose set survive in the view
    assert len(rows) == N + 8 - 5
    merged = [r for r in rows if r["n_catalogues"] == 2]
    assert len(merged) == 5
    for r in merged:
        cat = {m["catalogue"]: m for m in r["catalogue_masses"]}
        assert set(cat) == {"alpha", "beta"}
        # the physical id is the member ingested first (catalogue alpha's row)
        assert r["physical_id"] == cat["alpha"]["cluster_id"] == min(r["cluster_ids"])
        assert cat["alpha"]["log10_m500c"] == pytest.approx(cat["beta"]["log10_m500c"])
    # the loose set, chosen explicitly, merges all 8 pairs
    chosen = _ours(
        _catalogue(
            survey_engine, "SELECT * FROM mass_catalogue(:s)", s=[built["loose"].match_set_id]
        )
    )
    assert len(chosen) == N and sum(r["n_catalogues"] == 2 for r in chosen) == 8
    stale = _catalogue(
        survey_engine,
        "SELECT count(*) AS n FROM v_cluster_matches WHERE is_latest AND abs(delta_z) > 0.05",
    )
    assert stale[0]["n"] == 0


def test_both_dynamical_results_and_both_runs_are_kept_with_flags(
    built: dict, survey_engine: Engine
) -> None:
    (coma,) = [r for r in _catalogue(survey_engine) if r["physical_id"] == built["coma"]]
    assert coma["name"] == "Coma" and coma["n_catalogues"] == 2
    dyn = {d["source"]: d for d in coma["dynamical_masses"]}
    assert set(dyn) == {"galaxies:observed/coma_full.csv", "galaxies:observed/coma_clipped.csv"}
    full, clipped = (
        dyn["galaxies:observed/coma_full.csv"],
        dyn["galaxies:observed/coma_clipped.csv"],
    )
    assert full["log10_m500c"] == pytest.approx(built["full"].extra["mass"]["log10_m500c"])
    assert clipped["log10_m500c"] == pytest.approx(built["clipped"].extra["mass"]["log10_m500c"])
    # the clipped list gives a lower dispersion and mass, and is flagged; the full field is not
    assert clipped["log10_m500c"] < full["log10_m500c"] - 0.1
    assert full["flags"] == [] and clipped["flags"] == ["truncated_velocities"]
    assert full["n_members"] > FEW_MEMBERS and full["interlopers"] == "mixture"
    assert "truncated_velocities" in coma["flags"] and "out_of_domain" in coma["flags"]
    # the newest dynamical result is the summary column
    assert coma["log10_m500c_dyn"] == pytest.approx(clipped["log10_m500c"])
    cnn = {c["run_id"]: c for c in coma["cnn_masses"]}
    assert set(cnn) == set(built["runs"])
    assert [cnn[r]["log10_m500c"] for r in built["runs"]] == pytest.approx([14.6, 14.8])
    assert coma["cnn_run_id"] == max(built["runs"]) and coma["log10_m500c_cnn_err"] == 0.10


def test_names_are_searchable_case_and_spacing_insensitively(
    built: dict, survey_engine: Engine
) -> None:
    reader = _reader(survey_engine)
    with Session(bind=reader) as s:
        hits = {
            q: mass_catalogue.find_clusters_by_name(s, q)
            for q in ("A1656", "Abell 1656", "ABELL1656", "abell_1656", "coma", "A 1656")
        }
        found = cluster_info.find_clusters(s, "Abell 1656")
    reader.dispose()
    both = hits["A1656"]
    assert len(both) == 2 and built["coma"] in both  # alpha's ALT column and beta's NAME
    assert all(v == both for v in hits.values() if v is not hits["coma"])
    assert hits["coma"] == [built["coma"]]
    assert {r["cluster_id"] for r in found} == set(both)
    (coma,) = [r for r in _catalogue(survey_engine) if r["physical_id"] == built["coma"]]
    assert {"Coma", "A1656", "ABELL 1656", "CL0000", "B0"} <= set(coma["names"])


def test_reader_reads_matches_match_sets_and_rejects(built: dict, survey_engine: Engine) -> None:
    for table in ("cluster_matches", "match_sets", "ingest_rejects", "v_match_sets"):
        _catalogue(survey_engine, f"SELECT * FROM {table} LIMIT 1")
    sets = _catalogue(
        survey_engine, "SELECT * FROM v_match_sets WHERE catalogue_a IN ('alpha', 'beta')"
    )
    latest = [s for s in sets if s["is_latest"]]
    assert len(sets) == 2 and [s["match_set_id"] for s in latest] == [built["strict"].match_set_id]


def test_query_catalogue_writes_csv_fits_and_votable(
    built: dict, survey_engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CLUSTERMASS_DATABASE_URL", survey_engine.url.render_as_string(False))
    monkeypatch.delenv("CLUSTERMASS_READ_ONLY_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        for fmt in ("csv", "fits", "votable"):
            out = tmp_path / f"cat.{fmt}"
            res = runner.invoke(app, ["query", "catalogue", "--format", fmt, "--out", str(out)])
            assert res.exit_code == 0, res.output
            tab = Table.read(out, format="ascii.csv" if fmt == "csv" else fmt)
            row = tab[list(tab["physical_id"]).index(built["coma"])]
            assert str(row["name"]) == "Coma" and row["n_dynamical"] == 2
            assert float(row["log10_m500c_cnn_run" + str(built["runs"][0])]) == pytest.approx(14.6)
            assert np.isfinite(float(row["log10_m500c_alpha"]))
            assert "truncated_velocities" in str(row["flags"])
        res = runner.invoke(app, ["query", "cluster", "ABELL1656", "--format", "json"])
        assert res.exit_code == 0, res.output
        reports = {r["cluster"]["catalogue_name"]: r for r in json.loads(res.output)}
        assert set(reports) == {"alpha", "beta"}
        methods = [e["method"] for e in reports["alpha"]["mass_estimates"]]
        assert methods.count("dynamical:mixture") == 2 and methods.count("cnn:single") == 2
        assert {"name": "A1656", "source": "ALT"} in reports["alpha"]["names"]
    finally:
        get_settings.cache_clear()


def test_another_interloper_method_adds_a_result_and_a_reingest_replaces_its_own(
    built: dict, survey_engine: Engine
) -> None:
    coma = ClusterRef(catalogue="alpha", external_id="CL0000")
    for _ in range(2):  # the second time: forced, same table and method -> same row
        rep = ingest_galaxy_table(
            built["tmp"] / "coma_full.csv", cluster=coma, interlopers="sigma_clip",
            engine=survey_engine, data_dir=built["tmp"] / "store", force=True,
        )  # fmt: skip
    with survey_engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.MassEstimate.method, t.MassEstimate.source, t.MassEstimate.id)
            .where(t.MassEstimate.cluster_id == built["coma"])
            .order_by(t.MassEstimate.id)
        ).all()
    assert [(m, src) for m, src, _ in rows] == [
        ("dynamical:mixture", "galaxies:observed/coma_full.csv"),
        ("dynamical:mixture", "galaxies:observed/coma_clipped.csv"),
        ("dynamical:sigma_clip", "galaxies:observed/coma_full.csv"),
    ]
    assert rows[-1][2] == rep.extra["mass_estimate_id"]


def test_few_members_are_flagged() -> None:
    rng = np.random.default_rng(5)
    n = FEW_MEMBERS - 5
    v = rng.normal(0, 800, n)
    res = analyse_galaxies(
        COMA[0] + rng.normal(0, 0.1, n), COMA[1] + rng.normal(0, 0.1, n),
        COMA[2] + v * (1 + COMA[2]) / C_KMS, ra_cl=COMA[0], dec_cl=COMA[1], z_cl=COMA[2],
        cosmology=PLANCK18, interlopers="none", n_boot=50,
    )  # fmt: skip
    assert res.n_members == n and dynamical_flags(res) == ["few_members"]


def test_delete_catalogue_refuses_while_runs_use_it_then_removes_everything(
    built: dict, survey_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLUSTERMASS_DATABASE_URL", survey_engine.url.render_as_string(False))
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        listed = runner.invoke(app, ["catalogue", "list"])
        assert listed.exit_code == 0 and "alpha" in listed.output and "beta" in listed.output
        res = runner.invoke(app, ["catalogue", "delete", "alpha"])
        assert res.exit_code == 2 and "used by 2 model run(s)" in res.output
        assert "--force" in res.output
    finally:
        get_settings.cache_clear()
    with (
        pytest.raises(CatalogueInUseError, match="used by 2 model run"),
        session_scope(survey_engine) as s,
    ):
        mass_catalogue.delete_catalogue(s, "alpha")
    with session_scope(survey_engine) as s:
        n = mass_catalogue.delete_catalogue(s, "beta")
    assert n["clusters"] == 8 and n["match_sets"] == 2 and n["matches"] == 13
    rows = _ours(_catalogue(survey_engine))
    assert len(rows) == N and all(r["catalogues"] == ["alpha"] for r in rows)
    with session_scope(survey_engine) as s:
        n = mass_catalogue.delete_catalogue(s, "alpha", force=True)
    assert n["mass_estimates"] == 3 and n["predictions"] == 2 and n["runs"] == built["runs"]
    assert _ours(_catalogue(survey_engine)) == []
    with survey_engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(t.MassEstimate)) == 0
        # the catalogue's ingestions no longer count: ingesting the file again is not a no-op
        status = conn.scalars(
            sa.select(t.IngestFile.status).where(t.IngestFile.path.like("%alpha.fits"))
        ).all()
    assert status == ["superseded"]
    rep = ingest_catalogue_file(
        built["tmp"] / "alpha.fits", tiny_spec("alpha", name_columns=["NAME", "ALT"]),
        engine=survey_engine,
    )  # fmt: skip
    assert rep.status == "ingested" and rep.n_rows == N
