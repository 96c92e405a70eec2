"""Make docs/img/observed_a3158.png: raw ROSAT image of A3158 and the model input built from it.

Run from the repository root: ``python docs/scripts/observed_figure.py [OUT.png] [--run ID]``.
Without ``--run`` it uses only the pure readers (no database). With ``--run ID`` it loads the
fold models of that single-band run from the configured database (CLUSTERMASS_DATABASE_URL and
CLUSTERMASS_DATA_DIR) and adds a fifth panel: the saliency |d log10 M / d input| of A3158's
model input, averaged over the run's fold models, with their mean prediction. Needs the shared
data (CLUSTERMASS_SHARED_DATA_DIR).
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

from services.paths import shared_data_dir  # noqa: E402
from survey.catalogues import read_catalogue  # noqa: E402
from survey.cosmology import PLANCK18  # noqa: E402
from survey.images import load_band_images, model_grid_wcs, reproject_to_grid  # noqa: E402
from survey.model_input import model_input  # noqa: E402
from survey.specs import SPEC_DIR, load_image_set  # noqa: E402


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


def _saliency(run_id: int, image: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray, str]:
    """Mean saliency map over the fold models of ``run_id``, each model's prediction, its kind."""
    from models import ClusterArrays
    from models.attribution.methods import attribute_clusters
    from services.jobs.predict import run_models
    from services.settings import get_settings

    run, models = run_models(run_id, get_settings())
    arrays = ClusterArrays(images=image[None].astype(np.float32), redshift=np.array([z]))
    maps, preds = [], []
    for states, pre in models.values():
        for state in states:
            att = attribute_clusters(state, pre, arrays, method="saliency")
            maps.append(att.image[0].sum(axis=0))
            preds.append(float(att.log10_m[0]))
    return np.mean(maps, axis=0), np.array(preds), str(run.kind)


def main(out: Path, run_id: int | None = None) -> None:
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

    panels = 4 if run_id is None else 5
    fig, ax = plt.subplots(1, panels, figsize=(4 * panels, 4.3))
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
    if run_id is not None:
        sal, preds, kind = _saliency(run_id, image, row.redshift)
        if kind != "single":
            raise SystemExit(
                f"--run {run_id} is a {kind} run; the A3158 panel needs a single-band run"
            )
        ax[4].imshow(np.log10(gaussian_filter(sal, 1.0) + 1e-12), origin="lower", cmap="inferno")
        ax[4].contour(grid.mask, levels=[0.5], colors="cyan", linewidths=0.6)
        ax[4].set_title(
            f"saliency, run {run_id} (mean of {len(preds)} fold models), log10\n"
            f"predicted log10 M500c = {preds.mean():.2f} +- {preds.std(ddof=1):.2f} (fold spread)",
            fontsize=9,
        )
        print(f"A3158 run {run_id}: per-fold log10 M500c", np.round(preds, 3))
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
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", type=Path, default=Path("docs/img/observed_a3158.png"))
    ap.add_argument("--run", type=int, default=None, help="single-band model run id (needs the DB)")
    args = ap.parse_args()
    main(args.out, args.run)
