"""Population attributions of trained runs: the material of ``docs/attribution.md``.

For each run directory (``clustermass train`` / ``benchmarks/run_full_benchmark.py`` output)
trained on the catalogue ``--data``, every cluster is explained by the model of its test fold
(saliency, integrated gradients, SmoothGrad), and ``--out/<run>/`` receives ``<method>.npz``
(per-cluster maps, profiles, stacked profiles, pooled histograms), ``<method>.json`` (population
summary and per-cluster rows), PNG figures, ``sanity.json`` (model-randomisation check) and a
``report.md`` with the paper's numbers side by side.

``--synthetic N`` instead trains tiny single-band and multiband CNNs on N synthetic 32 x 32 beta-
model blobs (``tests/models/synthetic.py``; not the mock, not physics-grade) to show that the
pipeline runs end to end.

Usage::

    python benchmarks/run_attribution_population.py --data MOCK_DIR --run RUN_DIR [--run ...]
        --out OUT [--methods saliency,integrated_gradients,smoothgrad] [--device auto]
        [--n-boot 1000] [--sanity 128] [--n-steps 50] [--nt-samples 25] [--masks summed]
    python benchmarks/run_attribution_population.py --synthetic 384 --out OUT [--run RUN ...]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from astro.allocator import reexec_with_tuned_malloc  # noqa: E402
from mocks import read_catalogue  # noqa: E402
from models.attribution.figures import write_figures  # noqa: E402
from models.attribution.methods import AttributionSettings  # noqa: E402
from models.attribution.population import SummaryConfig, attribute_population  # noqa: E402
from models.attribution.radial import r500c_pixels  # noqa: E402
from models.attribution.runs import load_run_models, write_population  # noqa: E402
from models.attribution.sanity import randomisation_check  # noqa: E402
from models.config import RunConfig  # noqa: E402
from models.crossval import ensure_kde  # noqa: E402
from models.data import ClusterArrays, column_values  # noqa: E402
from models.pipeline import run_training  # noqa: E402

log = logging.getLogger("attribution")

PAPER_ROWS = {
    "r_core_over_r500c": ("core radius (proxy/CNN = 10) [R500c]", {"single": 0.285}),
    "median_saliency_agn": (
        "median saliency, AGN pixels",
        {"single": 10**-3.85, "multi": 10**-3.91},
    ),
    "median_saliency_icm": (
        "median saliency, ICM pixels",
        {"single": 10**-3.53, "multi": 10**-3.77},
    ),
    "saliency_icm_over_agn": ("ICM / AGN median", {"single": 10**0.32, "multi": 10**0.14}),
}


def _catalogue(data: Path):
    return read_catalogue(data)


def _synthetic(
    n: int, out: Path, device: str, runs: list[Path]
) -> tuple[object, list[Path], np.ndarray]:
    """Synthetic catalogue; train the two tiny CNNs unless ``runs`` (trained on it) are given."""
    # lazy: the test package, --synthetic only
    from tests.models.synthetic import make_catalogue

    cat = make_catalogue(n, 32, seed=0)
    arrays = ClusterArrays.from_parts(cat.truth, cat.counts_total, cat.galaxies)
    for kind in () if runs else ("single", "multi"):
        cfg = RunConfig.from_config(
            None,
            name=f"synthetic-{kind}",
            model={"kind": kind, "args": {"input_size": 32}},
            training={"max_epochs": 40, "patience": 10, "batch_size": 32, "device": device},
        )
        run_dir, _, metrics = run_training(arrays, cfg, out / "runs", n_boot=100)
        log.info("%s: sigma_lnM %.3f", kind, metrics["sigma_lnM"])
        runs.append(run_dir)
    # the synthetic r500c is a comoving length in the maps' units already
    r500c_pix = np.asarray(column_values(cat.truth["r500c"])) / (4.6 / 32)
    return cat, runs, r500c_pix


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    return f"{v:.3g}" if abs(v) >= 1e-2 else f"10^{np.log10(v):.2f}"


def _report_lines(kind: str, method: str, summary: dict) -> list[str]:
    lines = [f"### {kind} / {method} ({summary['n_clusters']} clusters)", ""]
    lines += ["| quantity | measured (68% CI) | paper |", "|---|---|---|"]
    for key, (label, paper) in PAPER_ROWS.items():
        if key not in summary:
            continue
        lo, hi = summary.get(f"{key}_lo"), summary.get(f"{key}_hi")
        ref = paper.get(kind) if method == "saliency" else None
        lines.append(f"| {label} | {_fmt(summary[key])} [{_fmt(lo)}, {_fmt(hi)}] | {_fmt(ref)} |")
    if "r_core_paper_convention" in summary:
        lines.append(
            f"| core radius, authors' unit convention [R500c] | "
            f"{_fmt(summary['r_core_paper_convention'])} [{_fmt(summary.get('r_core_paper_convention_lo'))}, "
            f"{_fmt(summary.get('r_core_paper_convention_hi'))}] | {_fmt(PAPER_ROWS['r_core_over_r500c'][1].get(kind))} |"
        )
    if "r_core_normalised" in summary:
        lines.append(
            f"| core radius, normalised profiles (unit-free) [R500c] | "
            f"{_fmt(summary['r_core_normalised'])} [{_fmt(summary.get('r_core_normalised_lo'))}, "
            f"{_fmt(summary.get('r_core_normalised_hi'))}] | n/a |"
        )
    fr = [_fmt(v) for v in summary.get("band_fractions", [])]
    lines.append(f"| band fractions | {', '.join(fr)} | about equal |")
    lines.append("")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path)
    ap.add_argument("--run", type=Path, action="append", default=[])
    ap.add_argument(
        "--synthetic", type=int, default=0,
        help="demo on N synthetic clusters (trains two tiny CNNs unless --run is given)",
    )  # fmt: skip
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--methods", default="saliency,integrated_gradients,smoothgrad")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--sanity", type=int, default=128, help="clusters in the randomisation check")
    ap.add_argument("--n-steps", type=int, default=50)
    ap.add_argument("--nt-samples", type=int, default=25)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument(
        "--masks", choices=("per_channel", "summed"), default="per_channel",
        help="multiband AGN/ICM masks per band, or band-summed as the authors",
    )  # fmt: skip
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)

    if args.synthetic:
        cat, runs, r500c_pix = _synthetic(args.synthetic, args.out, args.device, args.run)
        source = f"{args.synthetic} SYNTHETIC 32x32 beta-model blobs (tests/models/synthetic.py)"
    else:
        if args.data is None or not args.run:
            ap.error("give --data and at least one --run, or --synthetic N")
        cat, runs = _catalogue(args.data), args.run
        z = np.asarray(column_values(cat.truth["redshift"]), dtype=np.float64)
        r500 = np.asarray(column_values(cat.truth["r500c"]), dtype=np.float64)  # h^-1 Mpc proper
        r500c_pix = r500c_pixels(r500, z, n_pixels=cat.counts_total.shape[-1])
        source = str(args.data)
    arrays = ClusterArrays.from_parts(cat.truth, cat.counts_total, getattr(cat, "galaxies", None))
    methods = tuple(m for m in args.methods.split(",") if m)
    settings = AttributionSettings(
        batch_size=args.batch_size, n_steps=args.n_steps, nt_samples=args.nt_samples
    )
    config = SummaryConfig(n_boot=args.n_boot, masks=args.masks)
    lines = [
        f"# Attribution of {len(arrays)} clusters from {source}",
        "",
        f"{platform.node()}; device {args.device}; methods {', '.join(methods)}; "
        f"IG {args.n_steps} steps; SmoothGrad {args.nt_samples} samples; "
        f"{args.n_boot} bootstrap resamples; {args.masks} multiband AGN/ICM masks.",
        "",
    ]
    for run_dir in runs:
        rm = load_run_models(run_dir)
        kind = rm.config.model.kind
        if rm.folds.size != len(arrays):
            raise SystemExit(f"{run_dir} has {rm.folds.size} clusters, the catalogue {len(arrays)}")
        arr = ensure_kde(arrays, rm.config.data.kde) if kind == "multimodal" else arrays
        out = args.out / Path(run_dir).name
        t0 = time.perf_counter()

        def progress(done: int, total: int, kind: str = kind, t0: float = t0) -> None:
            # called once per chunk of clusters (SummaryConfig.chunk_size)
            log.info("%s: %d / %d cluster-methods, %.1f min", kind, done, total,
                     (time.perf_counter() - t0) / 60)  # fmt: skip

        res = attribute_population(
            rm.model_states, rm.preprocessing, arr, rm.folds, cat.counts_agn, cat.counts_icm,
            r500c_pix, methods=methods, settings=settings, config=config, device=args.device,
            progress=progress,
        )  # fmt: skip
        seconds = time.perf_counter() - t0
        lines += [f"## Run `{Path(run_dir).name}` ({kind}), {seconds / 60:.1f} min", ""]
        for method, r in res.items():
            write_population(r, out)
            counts = arr.images[r.per_cluster["cluster_index"]]
            figs = write_figures(r.to_arrays(), r.summary, counts, out / "figures")
            lines += _report_lines(kind, method, r.summary)
            lines += [
                f"Figures: {', '.join(str(p.relative_to(args.out)) for p in figs.values())}",
                "",
            ]
        f0 = min(rm.model_states)
        test = np.flatnonzero(rm.folds == f0)[: args.sanity]
        check = randomisation_check(
            rm.model_states[f0], rm.preprocessing[f0], arr, test, cascade=True, device=args.device
        )
        sanity = {
            "fold": f0,
            "n_clusters": int(test.size),
            "median_spearman_random": check.median_random,
            "median_spearman_perturbed_2pct": check.median_perturbed,
            "cascade": check.cascade,
            "passed": check.passed(),
        }
        (out / "sanity.json").write_text(json.dumps(sanity, indent=2))
        lines += [
            f"Randomisation check (fold {f0}, {test.size} clusters, saliency): median Spearman "
            f"trained vs random weights {check.median_random:.3f}, vs 2% weight jitter "
            f"{check.median_perturbed:.3f} ({'passed' if check.passed() else 'FAILED'}).",
            "",
        ]
    report = args.out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    print(report.read_text())


if __name__ == "__main__":
    reexec_with_tuned_malloc()  # the clustermass CLI's allocator (astro.allocator)
    main()
