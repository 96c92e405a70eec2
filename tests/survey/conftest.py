"""Fixtures for the survey readers: tiny synthetic files, a private database, the real data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from sqlalchemy.engine import Engine

from survey.specs import CatalogueSpec
from tests.conftest import create_database, drop_database


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real survey files (skips when they are not on this machine)."""
    from services.paths import shared_data_dir
    from services.settings import get_settings

    get_settings.cache_clear()
    path = shared_data_dir()
    if path is None or not (path / "catalogues" / "mcxc.fits").is_file():
        pytest.skip(
            "real survey data not found: set CLUSTERMASS_SHARED_DATA_DIR or put them in "
            "../shared/data or /work/shared/data"
        )
    return path


@pytest.fixture(scope="module")
def survey_engine(admin_url: str) -> Iterator[Engine]:
    """A private migrated database for tests that commit (ingestion owns its transactions)."""
    from db import migrate

    url = create_database(admin_url, "cmsurvey")
    migrate.upgrade(url, "head")
    eng = sa.create_engine(url)
    yield eng
    eng.dispose()
    drop_database(admin_url, url)


def write_table(path: Path, columns: dict[str, Any], units: dict[str, str] | None = None) -> Path:
    """Write a FITS (or CSV/ECSV, by suffix) table; units written as TUNIT strings verbatim."""
    t = Table({k: np.asarray(v) for k, v in columns.items()})
    if path.suffix == ".fits":
        hdu = fits.BinTableHDU(t)
        for i, name in enumerate(t.colnames, start=1):
            if units and name in units:
                hdu.header[f"TUNIT{i}"] = units[name]
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)
    else:
        for k, v in (units or {}).items():
            t[k].unit = v
        t.write(path, overwrite=True)
    return path


def make_catalogue(path: Path, n: int = 20, seed: int = 0, **override: Any) -> Path:
    """A small valid catalogue: ids, RA/Dec, z, M500 [1e14 Msun], L [1e44 erg/s]."""
    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {
        "ID": np.array([f"CL{i:04d}" for i in range(n)]),
        "RA": rng.uniform(0, 360, n),
        "DEC": np.degrees(np.arcsin(rng.uniform(-1, 1, n))),
        "Z": rng.uniform(0.05, 0.8, n),
        "M500": 10 ** rng.uniform(-0.5, 1.0, n),
        "LX": 10 ** rng.uniform(-1, 1, n),
    }
    cols.update(override)
    return write_table(path, cols, {"RA": "deg", "DEC": "deg", "M500": "10+14Msun", "LX": "10+37W"})


def tiny_spec(name: str = "tiny", **override: Any) -> CatalogueSpec:
    """Spec for :func:`make_catalogue` files (physical Msun for h = 0.7)."""
    doc: dict[str, Any] = {
        "name": name,
        "citation": "synthetic",
        "id_column": "ID",
        "position": {"ra": {"column": "RA"}, "dec": {"column": "DEC"}},
        "redshift": {"column": "Z", "unit": ""},
        "cosmology": {"name": "flat70", "H0": 70.0, "Om0": 0.3},
        "mass": {"column": "M500", "definition": "500c", "h_convention": "none"},
        "luminosity": {
            "name": "L_X", "kind": "luminosity", "column": "LX", "store_unit": "erg / s",
            "band_kev": [0.1, 2.4], "required": False,
        },
    }  # fmt: skip
    doc.update(override)
    return CatalogueSpec.model_validate(doc)


def make_image(
    path: Path,
    data: np.ndarray,
    *,
    ra: float = 150.0,
    dec: float = 2.0,
    pix_deg: float = 0.005,
    with_wcs: bool = True,
) -> Path:
    """Write a 2-D image with a TAN WCS centred on (ra, dec)."""
    header = fits.Header()
    if with_wcs:
        w = WCS(naxis=2)
        w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        w.wcs.crval = [ra, dec]
        w.wcs.crpix = [(data.shape[1] + 1) / 2, (data.shape[0] + 1) / 2]
        w.wcs.cdelt = [-pix_deg, pix_deg]
        header = w.to_header()
    fits.PrimaryHDU(data, header=header).writeto(path, overwrite=True)
    return path
