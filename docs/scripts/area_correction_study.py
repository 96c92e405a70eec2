"""How an observed cluster's predicted mass moves with the effective-area correction.

Run from the repository root against a database that holds a trained single-band run and the
cluster's image set (e.g. ``clustermass ingest image survey/specs/images/a3158_rosat.yaml``)::

    python docs/scripts/area_correction_study.py --run 1 --cluster A3158

It prints a markdown table: the default correction (from the image set's response) at several
assumed temperatures, and a sweep of count-rate factors, each with the fold-ensemble mean and
spread of log10 M500c [h^-1 Msun]. The numbers in docs/observed.md come from this script.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from db import survey_products as dbp  # noqa: E402
from db.session import session_scope  # noqa: E402
from models import ClusterArrays  # noqa: E402
from services.database import ready_engine  # noqa: E402
from services.jobs.ingest_observed import area_correction, observed_model_input  # noqa: E402
from services.jobs.predict import _ensemble_predict, run_models  # noqa: E402
from services.settings import get_settings  # noqa: E402
from survey.specs import ClusterRef  # noqa: E402


def main() -> None:
    """Print the study table for ``--run`` and ``--cluster``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=int, required=True, help="a trained single-band run")
    ap.add_argument("--cluster", default="A3158", help="cluster name with an image set")
    args = ap.parse_args()
    settings = get_settings()
    engine = ready_engine(settings)
    run, models = run_models(args.run, settings)
    with session_scope(engine) as s:
        cl = dbp.resolve_cluster(s, ClusterRef(name=args.cluster))
        cid, z, m_cat = cl.id, cl.redshift, cl.log10_m500c
        grid = dbp.load_grid(s, settings.data_dir, cid, None)

    def predict(scale: float | None, kt: float = 5.0) -> tuple[float, float, float]:
        image, meta = observed_model_input(
            cid, run.kind, count_rate_scale=scale, kt_kev=kt, engine=engine,
            data_dir=settings.data_dir,
        )  # fmt: skip
        arrays = ClusterArrays(images=image[None].astype(np.float32), redshift=np.array([z]))
        mean, spread = _ensemble_predict(models, arrays)
        return float(np.mean(meta["area_correction"]["scale"])), float(mean[0]), float(spread[0])

    print(f"run {run.id} ({run.kind}), {args.cluster} (z = {z:.4f}), catalogue {m_cat:.2f}\n")
    print("| count-rate factor | how | predicted log10 M500c | fold spread (dex) | - catalogue |")
    print("|---:|---|---:|---:|---:|")
    for kt in (2.0, 5.0, 8.0):
        f, m, sp = predict(None, kt)
        how = f"default: response, kT = {kt:g} keV ({area_correction(grid, run.kind, kt_kev=kt)['source']})"
        print(f"| {f:.2f} | {how} | {m:.2f} | {sp:.2f} | {m - m_cat:+.2f} |")
    for f in (1.0, 2.0, 4.0, 8.0, 16.0):
        _, m, sp = predict(f)
        print(f"| {f:.2f} | given | {m:.2f} | {sp:.2f} | {m - m_cat:+.2f} |")


if __name__ == "__main__":
    main()
