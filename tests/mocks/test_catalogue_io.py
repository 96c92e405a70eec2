"""Writing and reading catalogues: round trip, manifest, byte determinism, clear errors."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from mocks import (
    MockCatalogue,
    MockCatalogueError,
    MockConfig,
    MockFileMissingError,
    generate,
    read_catalogue,
)
from mocks.columns import REQUIRED_COLUMNS


def test_round_trip(small_cat: MockCatalogue, written_cat: Path) -> None:
    back = read_catalogue(written_cat)
    assert back.config == small_cat.config
    assert back.cosmology.name == "Planck18"
    np.testing.assert_array_equal(back.counts_total, small_cat.counts_total)
    np.testing.assert_array_equal(back.counts_agn, small_cat.counts_agn)
    np.testing.assert_array_equal(back.counts_icm, small_cat.counts_icm)
    for name in small_cat.galaxies.dtype.names:
        np.testing.assert_array_equal(back.galaxies[name], small_cat.galaxies[name])
    for name in REQUIRED_COLUMNS:
        a, b = small_cat.truth[name], back.truth[name]
        assert getattr(a, "unit", None) == getattr(b, "unit", None), name
        np.testing.assert_array_equal(
            np.asarray(getattr(a, "value", a)), np.asarray(getattr(b, "value", b))
        )
    assert str(back.truth["m500c"].unit) == "solMass / littleh"


def test_manifest_contents(written_cat: Path, small_cat: MockCatalogue) -> None:
    m = json.loads((written_cat / "manifest.json").read_text())
    assert m["n_clusters"] == len(small_cat) and m["seed"] == small_cat.config.seed
    assert m["cosmology"]["name"] == "Planck18" and m["cosmology"]["sigma8"] == pytest.approx(
        0.8102
    )
    assert {"numpy", "astropy", "colossus"} <= set(m["package_versions"])
    files = m["files"]
    assert "truth.ecsv" in files and "truth.fits" in files
    assert sum(k.startswith("maps/") for k in files) == len(small_cat)
    assert all(len(v) == 64 for v in files.values())


def test_map_file_headers_and_wcs(written_cat: Path, small_cat: MockCatalogue) -> None:
    cid = str(small_cat.truth["cluster_id"][3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with fits.open(written_cat / "maps" / f"{cid}.fits") as hdul:
            hdul.verify("exception")
            assert [h.name for h in hdul] == ["PRIMARY", "TOTAL", "AGN", "ICM", "GALAXIES"]
            h = hdul[0].header
            for key in ("CLUSTER", "REDSHIFT", "M500C", "EXPOSURE", "BANDS", "PIXSCALE"):
                assert key in h
            assert h["CLUSTER"] == cid and "DATE" not in h
            assert h["BANDS"] == "0.5-1.2,1.2-2,2-7"
            w = WCS(hdul["TOTAL"].header).celestial
            assert w.wcs.ctype[0] == "RA---TAN"
            assert abs(w.wcs.cdelt[1]) * 3600 == pytest.approx(h["PIXSCALE"])
            assert hdul["TOTAL"].data.dtype.kind == "i" and hdul["TOTAL"].data.shape == (
                3,
                128,
                128,
            )
            gal = hdul["GALAXIES"].data
            assert gal["is_member"].dtype == bool


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    cfg = MockConfig(n_clusters=6, seed=21, snapshot_redshifts=(0.15,))
    generate(cfg).write(tmp_path / "a")
    generate(cfg).write(tmp_path / "b")
    files_a = sorted(
        p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file()
    )
    assert files_a == sorted(
        p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file()
    )
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_compressed_maps_round_trip(tmp_path: Path) -> None:
    cfg = MockConfig(n_clusters=4, seed=2, snapshot_redshifts=(0.3,), compress_maps=True)
    cat = generate(cfg)
    cat.write(tmp_path)
    back = read_catalogue(tmp_path)
    np.testing.assert_array_equal(back.counts_total, cat.counts_total)


@pytest.fixture
def copy_of(written_cat: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(written_cat, dst)
    return dst


def test_missing_manifest_or_file_is_named(copy_of: Path) -> None:
    victim = sorted((copy_of / "maps").iterdir())[5]
    victim.unlink()
    with pytest.raises(MockFileMissingError, match=victim.name):
        read_catalogue(copy_of)
    (copy_of / "manifest.json").unlink()
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        read_catalogue(copy_of)


def test_changed_file_fails_the_checksum(copy_of: Path) -> None:
    victim = sorted((copy_of / "maps").iterdir())[2]
    data = bytearray(victim.read_bytes())
    data[-100] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(MockCatalogueError, match=f"{victim.name}.*sha256"):
        read_catalogue(copy_of)


def test_inconsistent_map_is_named_even_without_checksums(copy_of: Path) -> None:
    victim = sorted((copy_of / "maps").iterdir())[1]
    with fits.open(victim) as hdul:
        hdul["AGN"].data[0, 64, 64] += 10_000
        hdul.writeto(victim, overwrite=True)
    with pytest.raises(MockCatalogueError, match=f"{victim.name}.*TOTAL < AGN"):
        read_catalogue(copy_of, verify=False)


def test_bad_manifest(copy_of: Path) -> None:
    (copy_of / "manifest.json").write_text("{not json")
    with pytest.raises(MockCatalogueError, match="manifest.json.*JSON"):
        read_catalogue(copy_of)


def test_read_without_maps(written_cat: Path) -> None:
    back = read_catalogue(written_cat, load_maps=False, verify=False)
    assert back.counts_total.shape[0] == 0 and len(back.truth) > 0


def test_fast_reader_agrees_with_astropy(written_cat: Path) -> None:
    from mocks import fitsio

    path = sorted((written_cat / "maps").iterdir())[7]
    hdus = fitsio.read_hdus(path.read_bytes())
    with fits.open(path) as hdul:
        assert [str(h.get("EXTNAME", "PRIMARY")) for h, _ in hdus] == [h.name for h in hdul]
        for (head, data), hdu in zip(hdus, hdul, strict=True):
            for key in ("CLUSTER", "REDSHIFT", "M500C", "BANDS", "CDELT1", "EXTNAME", "BUNIT"):
                if key in hdu.header:
                    assert head[key] == hdu.header[key], key
            if isinstance(hdu, fits.ImageHDU) and hdu.data is not None:
                np.testing.assert_array_equal(data, hdu.data)
            if isinstance(hdu, fits.BinTableHDU):
                for name in hdu.columns.names:
                    np.testing.assert_array_equal(data[name], hdu.data[name])


def test_truncated_map_is_named(copy_of: Path) -> None:
    victim = sorted((copy_of / "maps").iterdir())[4]
    victim.write_bytes(victim.read_bytes()[:5000])
    with pytest.raises(MockCatalogueError, match=victim.name):
        read_catalogue(copy_of, verify=False)
