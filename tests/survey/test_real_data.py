"""The real catalogues and images in the shared data folder (skipped when absent)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from astropy.table import Table
from sqlalchemy.engine import Engine

from db import tables as t
from services.jobs.ingest_catalogues import crossmatch_catalogues, ingest_catalogue_file
from services.jobs.ingest_observed import ingest_image_set, observed_model_input
from survey.errors import BandError
from survey.specs import SPEC_DIR

EXPECTED_ROWS = {"mcxc.fits": 1743, "efeds_masstable.fits": 542, "spiders_codex_dr16.fits": 2740}


@pytest.fixture(scope="module")
def ingested(shared_data: Path, survey_engine: Engine) -> dict:
    reports = {
        f: ingest_catalogue_file(shared_data / "catalogues" / f, engine=survey_engine)
        for f in EXPECTED_ROWS
    }
    match = crossmatch_catalogues("mcxc", "spiders_codex", engine=survey_engine)
    return {"reports": reports, "match": match}


def test_catalogue_row_counts(ingested: dict, survey_engine: Engine) -> None:
    for f, n in EXPECTED_ROWS.items():
        rep = ingested["reports"][f]
        assert (rep.status, rep.n_rows, rep.n_rejected) == ("ingested", n, 0), rep.message
    with survey_engine.connect() as conn:
        counts = dict(
            conn.execute(
                sa.select(t.Catalogue.name, sa.func.count(t.Cluster.id))
                .join(t.Cluster)
                .group_by(t.Catalogue.name)
            ).all()
        )
    assert counts == {"mcxc": 1743, "efeds": 542, "spiders_codex": 2740}


def test_a3158_catalogue_mass(ingested: dict, survey_engine: Engine) -> None:
    with survey_engine.connect() as conn:
        row = conn.execute(
            sa.select(t.Cluster.name, t.Cluster.log10_m500c, t.Cluster.r500c_mpc_h).where(
                t.Cluster.external_id == "J0342.8-5338"
            )
        ).one()
    # MCXC: M500 = 3.6513e14 Msun and R500 = 1.0667 Mpc for h = 0.7
    assert row.name == "A3158"
    assert row.log10_m500c == pytest.approx(math.log10(3.6513e14 * 0.7), abs=1e-6)
    assert row.r500c_mpc_h == pytest.approx(1.0667 * 0.7)


def test_mcxc_spiders_crossmatch_agrees_with_the_spiders_ids(
    ingested: dict, shared_data: Path, survey_engine: Engine
) -> None:
    match = ingested["match"]
    assert match.n_matches == 221
    spiders = Table.read(shared_data / "catalogues" / "spiders_codex_dr16.fits")
    listed = {
        str(c).strip(): str(m).strip()
        for c, m in zip(spiders["CLUS_ID"], spiders["MCXC"].filled(""), strict=True)
        if str(m).strip()
    }
    a, b = sa.orm.aliased(t.Cluster), sa.orm.aliased(t.Cluster)
    with survey_engine.connect() as conn:
        pairs = conn.execute(
            sa.select(a.external_id, b.external_id)
            .select_from(t.ClusterMatch)
            .join(a, a.id == t.ClusterMatch.cluster_id_a)
            .join(b, b.id == t.ClusterMatch.cluster_id_b)
        ).all()
    found = {spiders_id: mcxc_id for mcxc_id, spiders_id in pairs}
    agree = sum(found.get(k) == v for k, v in listed.items())
    assert len(listed) == 220 and agree == 220


def test_a3158_rosat_image_to_model_input(
    ingested: dict, survey_engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data_dir = tmp_path_factory.mktemp("store")
    rep = ingest_image_set(
        SPEC_DIR / "images" / "a3158_rosat.yaml", engine=survey_engine, data_dir=data_dir
    )
    assert rep.status == "ingested"
    image, meta = observed_model_input(
        rep.cluster_ids[0], "single", engine=survey_engine, data_dir=data_dir
    )
    assert image.shape == (1, 128, 128) and np.isfinite(image).all() and image.min() >= 0
    assert meta["cluster"] == "A3158" and meta["instrument"] == "ROSAT PSPC"
    assert 0 < meta["masked_fraction"] < 0.2
    assert meta["bands_kev_achieved"] == [[0.4, 2.0]]
    assert any("ROSAT PSPC is not eROSITA" in c for c in meta["caveats"])
    # the A3158 field (z = 0.059) is ~1.5 deg: ~10^4 of the image's 11,722 counts fall in it
    assert 9000 < sum(ingest_counts(survey_engine, rep.cluster_ids[0])) < 11722
    with pytest.raises(BandError, match="use the single-band model"):
        observed_model_input(rep.cluster_ids[0], "multi", engine=survey_engine, data_dir=data_dir)


def ingest_counts(engine: Engine, cluster_id: int) -> list[float]:
    with engine.connect() as conn:
        meta = conn.scalar(
            sa.select(t.Product.meta).where(
                t.Product.cluster_id == cluster_id, t.Product.kind == "xray_observed"
            )
        )
    return meta["counts_in_field"]


@pytest.mark.slow
def test_efeds_image_gives_three_bands(
    ingested: dict, survey_engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data_dir = tmp_path_factory.mktemp("store")
    rep = ingest_image_set(
        SPEC_DIR / "images" / "efeds_J092121.yaml", engine=survey_engine, data_dir=data_dir
    )
    image, meta = observed_model_input(
        rep.cluster_ids[0], "multi", engine=survey_engine, data_dir=data_dir
    )
    assert image.shape == (3, 128, 128)
    assert meta["bands_kev_achieved"] == [[0.6, 1.1], [1.1, 2.2], [2.2, 7.0]]
    assert meta["catalogue"] == "efeds" and meta["catalogue_log10_m500c"] > 14


def test_rosat_to_erosita_count_rate_ratio(shared_data: Path) -> None:
    from survey.responses import count_rate_ratio, read_area_curve

    rosat = read_area_curve(shared_data / "images/a3158_rosat/pspcb_gain2_256.rsp", (0.4, 2.0))
    erosita = read_area_curve(
        shared_data / "images/efeds_mbproj2d/responses/eFEDS_Example/spec_020_ARF_00001.fits"
    )
    e = 0.5 * (rosat.e_lo + rosat.e_hi)
    assert 150 < rosat.area_cm2[np.searchsorted(e, 1.0)] < 260  # PSPC: ~200 cm^2 at 1 keV
    ratio = count_rate_ratio(erosita, rosat, kt_kev=5.0, target_band_kev=(0.5, 7.0))
    assert 6 < ratio < 10
