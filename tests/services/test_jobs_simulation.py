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
