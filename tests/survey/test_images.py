"""Images on the model grid: counts preserved, exposure rescaled, footprint masked, bands."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from survey.cosmology import PLANCK18, comoving_transverse_mpc_h
from survey.errors import BandError, ImageError
from survey.images import load_band_images, model_grid_wcs, read_fits_image, reproject_to_grid
from survey.model_input import model_input, plan_bands
from survey.specs import ImageSetSpec
from tests.survey.conftest import make_image

Z = 0.3  # model field ~0.28 deg wide


def _set(tmp_path: Path, counts: np.ndarray, exposure: np.ndarray | None = None,
         band=(0.5, 2.0), instrument="TestScope", **img) -> ImageSetSpec:  # fmt: skip
    make_image(tmp_path / "c.fits", counts, **img)
    band_doc = {"band_kev": list(band), "counts": "c.fits"}
    if exposure is None:
        band_doc["exposure_s"] = 1000.0
    else:
        make_image(tmp_path / "e.fits", exposure, **img)
        band_doc["exposure"] = "e.fits"
    return ImageSetSpec.model_validate(
        {"instrument": instrument, "cluster": {"name": "X"}, "bands": [band_doc]}
    )


def test_grid_pixel_is_4p6_over_128_comoving() -> None:
    wcs, pix_mpc, pix_deg = model_grid_wcs(150.0, 2.0, Z, PLANCK18)
    assert pix_mpc == pytest.approx(4.6 / 128)
    assert math.radians(pix_deg) * comoving_transverse_mpc_h(Z, PLANCK18) == pytest.approx(pix_mpc)
    assert wcs.wcs.cdelt[0] < 0 < wcs.wcs.cdelt[1]  # east left, north up


def test_counts_are_preserved_by_the_reprojection(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    counts = np.zeros((300, 300))
    # a Poisson "cluster" inside the field, on a 3.6 arcsec grid (finer than the model grid)
    yy, xx = np.mgrid[0:300, 0:300]
    beta = 40.0 * (1 + ((xx - 150) ** 2 + (yy - 140) ** 2) / 15.0**2) ** -1.5
    counts[:] = rng.poisson(beta)
    counts[:40] = 0  # keep the source well inside the model field
    counts[-40:] = 0
    counts[:, :40] = 0
    counts[:, -40:] = 0
    spec = _set(tmp_path, counts, pix_deg=0.001)
    grid = reproject_to_grid(load_band_images(spec, tmp_path), 150.0, 2.0, Z, PLANCK18,
                             instrument="TestScope")  # fmt: skip
    assert grid.counts.shape == (1, 128, 128)
    assert grid.counts.sum() == pytest.approx(counts.sum(), rel=1e-4)
    # the peak stays near the image centre (1 model pixel ~ 7.6 arcsec ~ 2 input pixels)
    iy, ix = np.unravel_index(np.argmax(grid.counts[0]), (128, 128))
    assert abs(ix - 63.5) < 4 and abs(iy - 63.5 + 10 * 3.6 / 7.6) < 4


def test_exposure_is_rescaled_to_the_training_exposure(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    counts = rng.poisson(2.0, (400, 400)).astype(float)
    exposure = np.full((400, 400), 500.0)
    spec = _set(tmp_path, counts, exposure, pix_deg=0.001)
    grid = reproject_to_grid(load_band_images(spec, tmp_path), 150.0, 2.0, Z, PLANCK18,
                             instrument="TestScope")  # fmt: skip
    assert not grid.mask.any()
    assert np.allclose(grid.exposure, 500.0)
    image, meta = model_input(grid, "single", training_exposure_s=2000.0)
    assert image.sum() == pytest.approx(4 * grid.counts.sum(), rel=1e-5)
    assert meta["exposure_scale"] == [pytest.approx(4.0)]
    assert meta["input_domain"] == "observed" and meta["instrument"] == "TestScope"
    assert any("TestScope is not eROSITA" in c for c in meta["caveats"])
    assert any("0.5-7 keV is fed by 0.5-2 keV" in c for c in meta["caveats"])


def test_out_of_footprint_pixels_are_masked_and_filled(tmp_path: Path) -> None:
    counts = np.ones((200, 200))
    # image centred 0.1 deg east of the cluster: the western part of the field is uncovered
    spec = _set(tmp_path, counts, pix_deg=0.001, ra=150.1)
    grid = reproject_to_grid(load_band_images(spec, tmp_path), 150.0, 2.0, Z, PLANCK18,
                             instrument="TestScope")  # fmt: skip
    frac = grid.masked_fraction
    assert 0.2 < frac < 0.9
    assert grid.mask[:, -1].all() and not grid.mask[:, 0].all()  # +x is west
    image, meta = model_input(grid, fill="zero")
    assert np.all(image[0][grid.mask] == 0)
    assert meta["masked_fraction"] == pytest.approx(frac)
    assert any("outside the footprint" in c for c in meta["caveats"])
    radial, _ = model_input(grid, fill="radial")
    assert np.all(radial[0][grid.mask] > 0)


def test_field_outside_the_image_is_an_error(tmp_path: Path) -> None:
    spec = _set(tmp_path, np.ones((50, 50)), pix_deg=0.001, ra=170.0)
    with pytest.raises(ImageError, match="does not overlap"):
        reproject_to_grid(load_band_images(spec, tmp_path), 150.0, 2.0, Z, PLANCK18,
                          instrument="TestScope")  # fmt: skip


def test_image_without_wcs_truncated_or_mismatched(tmp_path: Path) -> None:
    make_image(tmp_path / "nowcs.fits", np.ones((20, 20)), with_wcs=False)
    with pytest.raises(ImageError, match=r"nowcs\.fits: counts image has no celestial WCS"):
        read_fits_image(tmp_path / "nowcs.fits")
    good = make_image(tmp_path / "g.fits", np.ones((100, 100)))
    (tmp_path / "cut.fits").write_bytes(good.read_bytes()[:5000])
    with pytest.raises(ImageError, match=r"cut\.fits: truncated"):
        read_fits_image(tmp_path / "cut.fits")
    (tmp_path / "txt.fits").write_text("not an image")
    with pytest.raises(ImageError, match="not a FITS file"):
        read_fits_image(tmp_path / "txt.fits")
    fits.PrimaryHDU().writeto(tmp_path / "empty.fits")
    with pytest.raises(ImageError, match="no 2-D image"):
        read_fits_image(tmp_path / "empty.fits")
    spec = _set(tmp_path, np.ones((60, 60)), np.ones((50, 50)))
    with pytest.raises(ImageError, match="exposure map grid differs"):
        load_band_images(spec, tmp_path)


def test_band_planning() -> None:
    efeds = [(0.3, 0.6), (0.6, 1.1), (1.1, 1.6), (1.6, 2.2), (2.2, 3.5), (3.5, 5.0), (5.0, 7.0)]
    groups, achieved, notes = plan_bands(efeds, "multi")
    assert groups == [[1], [2, 3], [4, 5, 6]]
    assert achieved == [(0.6, 1.1), (1.1, 2.2), (2.2, 7.0)]
    assert any("0.3-0.6 keV dropped" in n for n in notes)
    groups, achieved, _ = plan_bands(efeds, "single")
    assert groups == [[1, 2, 3, 4, 5, 6]] and achieved == [(0.6, 7.0)]
    assert plan_bands([(0.4, 2.0)], "single")[0] == [[0]]
    with pytest.raises(BandError, match="ROSAT PSPC has band.*use the single-band model"):
        plan_bands([(0.4, 2.0)], "multi", instrument="ROSAT PSPC")
    with pytest.raises(BandError, match="unknown model kind"):
        plan_bands([(0.5, 7.0)], "triple")  # type: ignore[arg-type]


def test_multiband_sums_bands_after_exposure_correction(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    docs = []
    for i, (lo, hi) in enumerate([(0.5, 1.2), (1.2, 2.0), (2.0, 4.0), (4.0, 7.0)]):
        make_image(tmp_path / f"c{i}.fits", rng.poisson(1.0 + i, (400, 400)).astype(float),
                   pix_deg=0.001)  # fmt: skip
        docs.append({"band_kev": [lo, hi], "counts": f"c{i}.fits", "exposure_s": 1000.0 * (i + 1)})
    spec = ImageSetSpec.model_validate(
        {"instrument": "eROSITA", "cluster": {"name": "X"}, "bands": docs}
    )
    grid = reproject_to_grid(load_band_images(spec, tmp_path), 150.0, 2.0, Z, PLANCK18,
                             instrument="eROSITA")  # fmt: skip
    image, meta = model_input(grid, "multi", training_exposure_s=2000.0)
    per_band = grid.counts.sum(axis=(1, 2)) * np.array([2.0, 1.0, 2 / 3, 0.5])
    assert image.shape == (3, 128, 128)
    assert image.sum(axis=(1, 2)) == pytest.approx(
        [per_band[0], per_band[1], per_band[2] + per_band[3]], rel=1e-5
    )
    assert meta["bands_kev_achieved"] == [[0.5, 1.2], [1.2, 2.0], [2.0, 7.0]]
    assert not any("is not eROSITA" in c for c in meta["caveats"])


def test_count_rate_scale_and_response_ratio(tmp_path: Path) -> None:
    from survey.responses import AreaCurve, count_rate_ratio

    e = np.linspace(0.1, 10, 200)
    flat = AreaCurve(e[:-1], e[1:], np.full(199, 100.0))
    double = AreaCurve(e[:-1], e[1:], np.full(199, 200.0))
    assert count_rate_ratio(double, flat, kt_kev=5.0) == pytest.approx(2.0)
    # a harder spectrum puts relatively more photons above 2 keV
    r2 = count_rate_ratio(
        flat, flat, kt_kev=2.0, target_band_kev=(0.5, 7), source_band_kev=(0.5, 2)
    )
    r8 = count_rate_ratio(
        flat, flat, kt_kev=8.0, target_band_kev=(0.5, 7), source_band_kev=(0.5, 2)
    )
    assert 1 < r2 < r8
    spec = _set(tmp_path, np.ones((400, 400)), pix_deg=0.001)
    grid = reproject_to_grid(load_band_images(spec, tmp_path), 150.0, 2.0, Z, PLANCK18,
                             instrument="TestScope")  # fmt: skip
    one, _ = model_input(grid)
    eight, meta = model_input(grid, count_rate_scale=8.0)
    assert eight.sum() == pytest.approx(8 * one.sum(), rel=1e-6)
    assert any("multiplied by 8" in c for c in meta["caveats"])


def test_per_band_count_rate_scales(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    docs = []
    for i, (lo, hi) in enumerate([(0.5, 1.2), (1.2, 2.0), (2.0, 7.0)]):
        make_image(tmp_path / f"c{i}.fits", rng.poisson(2.0, (400, 400)).astype(float),
                   pix_deg=0.001)  # fmt: skip
        docs.append({"band_kev": [lo, hi], "counts": f"c{i}.fits", "exposure_s": 2000.0})
    spec = ImageSetSpec.model_validate(
        {"instrument": "OtherScope", "cluster": {"name": "X"}, "bands": docs}
    )
    grid = reproject_to_grid(load_band_images(spec, tmp_path), 150.0, 2.0, Z, PLANCK18,
                             instrument="OtherScope")  # fmt: skip
    one, _ = model_input(grid, "multi")
    scaled, meta = model_input(grid, "multi", count_rate_scale=[2.0, 3.0, 5.0])
    assert scaled.sum(axis=(1, 2)) == pytest.approx(
        one.sum(axis=(1, 2)) * np.array([2.0, 3.0, 5.0]), rel=1e-6
    )
    assert meta["count_rate_scale"] == [2.0, 3.0, 5.0]
    with pytest.raises(ValueError, match="has 2 values; the multi model has 3 bands"):
        model_input(grid, "multi", count_rate_scale=[2.0, 3.0])


def test_pspc_to_erosita_ratio_from_the_shipped_responses(shared_data: Path) -> None:
    from importlib import resources

    from mocks.spectra import ARF_FILE
    from survey.responses import band_count_rate_ratios, read_area_curve

    with resources.as_file(resources.files("mocks").joinpath("data", ARF_FILE)) as p:
        ero = read_area_curve(p, undo_psf_correction=True)
        ero_psf = read_area_curve(p)
    rsp = shared_data / "images" / "a3158_rosat" / "pspcb_gain2_256.rsp"
    kw = {"target_bands_kev": [(0.5, 7.0)], "source_bands_kev": [(0.4, 2.0)], "redshift": 0.0}
    r = [band_count_rate_ratios(ero, rsp, kt_rest_kev=kt, **kw)[0] for kt in (2.0, 5.0, 8.0)]
    assert r == pytest.approx([7.68, 8.18, 8.37], abs=0.01)  # docs/observed.md
    # the PSF-fraction-corrected SPECRESP gives the older 7.5 / 8.0 / 8.1
    assert band_count_rate_ratios(ero_psf, rsp, kt_rest_kev=5.0, **kw)[0] == pytest.approx(
        7.95, abs=0.01
    )
