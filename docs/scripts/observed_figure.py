"""Make docs/img/observed_a3158.png: raw ROSAT image of A3158 and the model input built from it.

Run from the repository root: ``python docs/scripts/observed_figure.py [OUT.png]``.
Uses only the pure readers (no database). Needs the shared data (CLUSTERMASS_SHARED_DATA_DIR).
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Polygon  # noqa: E402
from scipy.ndimage import gaussian_filter  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from flows.survey.catalogues import read_catalogue  # noqa: E402
from flows.survey.cosmology import PLANCK18  # noqa: E402
from flows.survey.images import load_band_images, model_grid_wcs, reproject_to_grid  # noqa: E402
from flows.survey.model_input import model_input  # noqa: E402
from flows.survey.specs import SPEC_DIR, load_image_set  # noqa: E402
from services.paths import shared_data_dir  # noqa: E402


def _grid(name: str, catalogue: str, ext_id: str, shared: Path):
    spec = load_image_set(SPEC_DIR / "images" / f"{name}.yaml")
    cat = read_catalogue(shared / "catalogues" / catalogue, spec.cluster.catalogue)
    row = next(r for r in cat.rows if r.external_id == ext_id)
    bands = load_band_images(spec, shared)
    grid = reproject_to_grid(
        bands, spec.centre_ra, spec.centre_dec, row.redshift, PLANCK18, instrument=spec.instrument
    )
    return spec, row, bands, grid


def _quantize(path: Path, colours: int = 128) -> None:
    """Re-save a PNG with a palette (noise-like images compress badly as RGB)."""
    from PIL import Image

    Image.open(path).convert("RGB").quantize(colours).save(path, optimize=True)


def main(out: Path) -> None:
    """Write the figure to ``out`` and print the numbers it shows."""
    shared = shared_data_dir()
    if shared is None:
        raise SystemExit("shared data not found: set CLUSTERMASS_SHARED_DATA_DIR")
    spec, row, bands, grid = _grid("a3158_rosat", "mcxc.fits", "J0342.8-5338", shared)
    b = bands[0]
    image, meta = model_input(grid, "single")
    _, _, _, egrid = _grid(
        "efeds_J092121", "efeds_masstable.fits", "eFEDS J092121.2+031726", shared
    )
    eimage, emeta = model_input(egrid, "multi")

    fig, ax = plt.subplots(1, 4, figsize=(16, 4.3))
    raw = gaussian_filter(b.counts, 1.5)
    ax[0].imshow(np.log10(raw + 1e-2), origin="lower", cmap="magma")
    ax[0].contour(np.asarray(b.exposure) > 0, levels=[0.5], colors="cyan", linewidths=0.6)
    wcs_out, _, _ = model_grid_wcs(grid.ra_deg, grid.dec_deg, grid.redshift, PLANCK18)
    corners = wcs_out.pixel_to_world_values([-0.5, 127.5, 127.5, -0.5], [-0.5, -0.5, 127.5, 127.5])
    px, py = b.wcs.world_to_pixel_values(*corners)
    ax[0].add_patch(Polygon(np.c_[px, py], fill=False, ec="white", lw=1.2))
    ax[0].set_title(f"ROSAT PSPC A3158, raw counts ({b.counts.sum():.0f})\n"
                    "512x512, 14.9\"/pix; cyan: exposure>0; white: model field", fontsize=9)  # fmt: skip
    ax[1].imshow(grid.exposure[0], origin="lower", cmap="viridis")
    ax[1].contour(grid.mask, levels=[0.5], colors="red", linewidths=0.8)
    ax[1].set_title(f"exposure on the model grid [s]\nred: masked ({grid.masked_fraction:.1%})",
                    fontsize=9)  # fmt: skip
    ax[2].imshow(np.log10(image[0] + 1), origin="lower", cmap="magma")
    ax[2].set_title(
        f"model input (single band), log10(N+1)\n128x128 over +-2.3 h^-1 Mpc, "
        f'{grid.pixel_scale_arcsec:.0f}"/pix, x{meta["exposure_scale"][0]:.2f} to 2 ks',
        fontsize=9,
    )
    rgb = np.log10(np.moveaxis(eimage, 0, -1)[..., ::-1] + 1)
    rgb = rgb / np.percentile(rgb, 99.5)
    ax[3].imshow(np.clip(rgb, 0, 1), origin="lower")
    ax[3].set_title(
        "eFEDS J092121.2+031726 (z=0.355), multiband input\nR/G/B = "
        + " / ".join(f"{lo:g}-{hi:g}" for lo, hi in emeta["bands_kev_achieved"][::-1])
        + " keV",
        fontsize=9,
    )
    for a in ax:
        a.set_xticks([])
        a.set_yticks([])
    fig.suptitle(
        f"A3158: MCXC log10 M500c = {row.log10_m500c:.2f} [h^-1 Msun]; ROSAT is not eROSITA "
        "(0.4-2 keV, smaller effective area): out of the training domain",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=72)
    _quantize(out)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} kB)")
    print(
        "A3158 meta:", {k: meta[k] for k in ("masked_fraction", "exposure_scale", "total_counts")}
    )
    for c in meta["caveats"]:
        print("  -", c)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/img/observed_a3158.png"))
