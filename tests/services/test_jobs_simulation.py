"""Mock catalogues are named by seed, size and configuration: different mocks never collide."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import service_environment


def _manifest(**config: object) -> dict:
    from mocks import MockConfig

    cfg = MockConfig(**config)
    return {"n_clusters": cfg.n_clusters, "seed": cfg.seed, "config": cfg.to_dict()}


def test_configs_with_the_same_seed_and_size_get_distinct_names() -> None:
    from services.jobs.simulation import catalogue_name_for

    a = _manifest(n_clusters=40, seed=3)
    b = _manifest(n_clusters=40, seed=3, snapshot_redshifts=(0.1, 0.3))
    c = _manifest(n_clusters=40, seed=3, xray={"exposure_median_s": 1000.0})
    names = {catalogue_name_for(m) for m in (a, b, c)}
    assert len(names) == 3
    assert catalogue_name_for(_manifest(n_clusters=40, seed=3)) == catalogue_name_for(a)
    assert all(n.startswith("mock-s3-n40-") for n in names)


@pytest.mark.db
def test_two_mocks_with_the_same_seed_and_size_are_two_catalogues(
    admin_url: str, tmp_path: Path
) -> None:
    from mocks import MockConfig, generate
    from services.jobs.simulation import ingest_mock_directory

    base = {"n_clusters": 4, "seed": 9, "snapshot_redshifts": (0.2,)}
    generate(MockConfig(**base)).write(tmp_path / "a")
    generate(MockConfig(**base, cosmology="WMAP9")).write(tmp_path / "b")
    with service_environment(admin_url, tmp_path / "store", prefix="cmsim") as url:
        first = ingest_mock_directory(tmp_path / "a")
        second = ingest_mock_directory(tmp_path / "b")
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT cat.name, count(c.id) FROM catalogues cat "
                    "JOIN clusters c ON c.catalogue_id = cat.id GROUP BY cat.name"
                )
            ).all()
        engine.dispose()
    assert first.catalogue_name != second.catalogue_name
    assert first.catalogue_id != second.catalogue_id
    assert dict(rows) == {first.catalogue_name: 4, second.catalogue_name: 4}


@pytest.mark.db
def test_the_paper_preset_goes_through_generation_ingest_and_training_inputs(
    admin_url: str, tmp_path: Path
) -> None:
    """Both presets use the same ingest and training paths (issue 13): the paper preset's
    catalogue records its preset, and the maps training loads hold ICM + AGN photons only."""
    import numpy as np

    from services.jobs.data import load_catalogue_data
    from services.jobs.simulation import generate_mock, ingest_mock_directory

    with service_environment(admin_url, tmp_path / "store", prefix="cmpaper") as url:
        out = generate_mock({"preset": "paper", "n_clusters": 30, "seed": 4}, tmp_path / "p")
        summary = ingest_mock_directory(out)
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            cfg = conn.scalar(
                sa.text("SELECT config FROM catalogues WHERE id = :i"),
                {"i": summary.catalogue_id},
            )
            zs = conn.scalars(
                sa.text("SELECT DISTINCT redshift FROM clusters WHERE catalogue_id = :i"),
                {"i": summary.catalogue_id},
            ).all()
        data = load_catalogue_data(engine, summary.catalogue_id, tmp_path / "store")
        engine.dispose()
    from mocks.config import PAPER_REDSHIFTS

    assert cfg["preset"] == "paper" and cfg["xray"]["diffuse_background"] is False
    assert set(np.round(zs, 6)) <= set(np.round(PAPER_REDSHIFTS, 6))
    assert summary.n_clusters == 30
    # no diffuse background: every photon is an ICM or an AGN photon
    np.testing.assert_array_equal(data.arrays.images, data.counts_icm + data.counts_agn)


def _table_counts(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        out = {
            t: conn.scalar(sa.text(f"SELECT count(*) FROM {t}"))
            for t in ("catalogues", "clusters", "observables", "products")
        }
    engine.dispose()
    return out


@pytest.mark.db
def test_reingest_restores_deleted_clusters_and_keeps_the_others_rows(
    admin_url: str, tmp_path: Path
) -> None:
    """COPY ingest, mixed case: clusters inserted by this run get plain inserts of their
    observables and products, existing ones are merged; the result is the full catalogue once."""
    from mocks import MockConfig, generate
    from services.jobs.simulation import ingest_mock_directory

    generate(MockConfig(n_clusters=6, seed=5, snapshot_redshifts=(0.2,))).write(tmp_path / "m")
    with service_environment(admin_url, tmp_path / "store", prefix="cmsimmix") as url:
        first = ingest_mock_directory(tmp_path / "m")
        full = _table_counts(url)
        assert full["clusters"] == 6 and full["products"] == 24
        assert full["observables"] == first.n_observables > 6 * 20
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            kept = dict(conn.execute(sa.text("SELECT external_id, id FROM clusters")).all())
            gone = sorted(kept)[:2]
            conn.execute(sa.text("DELETE FROM clusters WHERE external_id = ANY(:e)"), {"e": gone})
            conn.execute(sa.text("UPDATE observables SET value = -1 WHERE name = 'T'"))
        again = ingest_mock_directory(tmp_path / "m")
        assert _table_counts(url) == full
        assert (again.n_clusters, again.n_observables, again.n_products) == (
            6,
            full["observables"],
            24,
        )
        with engine.connect() as conn:
            now = dict(conn.execute(sa.text("SELECT external_id, id FROM clusters")).all())
            bad_t = conn.scalar(sa.text("SELECT count(*) FROM observables WHERE value = -1"))
            hdus = conn.scalars(sa.text("SELECT DISTINCT meta->>'hdu' FROM products")).all()
        engine.dispose()
    assert {e: now[e] for e in now if e not in gone} == {e: kept[e] for e in kept if e not in gone}
    assert all(now[e] not in kept.values() for e in gone)  # re-inserted: new ids
    assert bad_t == 0  # the changed values were replaced by the file's
    assert sorted(hdus) == ["AGN", "GALAXIES", "ICM", "TOTAL"]


@pytest.mark.db
def test_a_map_that_fails_its_checksum_leaves_the_database_untouched(
    admin_url: str, tmp_path: Path
) -> None:
    """The maps are stored while the database is written: a bad map still rolls back all."""
    from db.errors import ProductIntegrityError
    from mocks import MockConfig, generate
    from services.jobs.simulation import ingest_mock_directory

    generate(MockConfig(n_clusters=5, seed=6, snapshot_redshifts=(0.2,))).write(tmp_path / "m")
    last = sorted((tmp_path / "m" / "maps").glob("*.fits"))[-1]
    data = bytearray(last.read_bytes())
    data[-1] ^= 0xFF
    last.write_bytes(bytes(data))
    with service_environment(admin_url, tmp_path / "store", prefix="cmsimbad") as url:
        with pytest.raises(ProductIntegrityError, match=last.name):
            ingest_mock_directory(tmp_path / "m")
        assert _table_counts(url) == dict.fromkeys(
            ("catalogues", "clusters", "observables", "products"), 0
        )


@pytest.mark.db
def test_simulate_reports_real_progress_of_generation_and_ingest(
    admin_url: str, tmp_path: Path
) -> None:
    """The mock and ingest tasks report clusters done / total (issue 16: progress for every long
    command); in eager mode the reports reach this process's listener, i.e. the CLI's bars."""
    from cli.commands._progress import BATCH_LABELS
    from services import tasks
    from services.progress import listen

    seen: list[dict] = []
    with service_environment(admin_url, tmp_path / "store", prefix="cmprog"), listen(seen.append):
        out = tasks.generate_mock.apply(
            args=({"n_clusters": 6, "seed": 2, "snapshot_redshifts": [0.2]}, str(tmp_path / "m"))
        ).get()
        tasks.ingest_simulation.apply(args=(out,)).get()
    for kind in ("mock", "ingest"):
        reports = [m for m in seen if m.get("kind") == kind]
        assert reports, f"no {kind} progress"
        assert all(m["total"] == 6 for m in reports)
        done = [m["done"] for m in reports]
        assert done == sorted(done) and done[-1] == 6 and reports[-1]["final"]
        assert kind in BATCH_LABELS  # drawn as a bar by the CLI
