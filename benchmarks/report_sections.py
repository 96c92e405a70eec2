"""The Markdown of each benchmark: what is measured, the results table, the summary row.

The SQL benchmark's, longer, is in :mod:`benchmarks.report_sql`.

Every ``*_what(data)`` returns the explanation (lines), every ``*_results(data, run)`` the
results table and the sentences derived from it, and every ``*_row(data)`` the three cells of
the summary table (this project, baseline, speed-up). ``data`` is the dict the benchmark's
``measure()`` returned.
"""

from __future__ import annotations

from typing import Any

from benchmarks._markdown import num, ratio, table

Data = dict[str, Any]


# --- mock generation -------------------------------------------------------------------------


def mocks_what(d: Data) -> list[str]:
    """What the mock benchmark measures."""
    return [
        "**What.** Throughput of the mock generator (`mocks.generate`, [mocks.md](mocks.md)) in "
        "clusters per second per core, for the full product of each cluster: 3 energy bands x "
        "128^2 counts for each of TOTAL, AGN and ICM, the galaxy catalogue and every truth "
        "column. One thread (OpenMP/BLAS pinned to 1 before numpy loads), so the number is per "
        "core; a warm-up catalogue of 20 fills the caches (colossus tables, ARF) first. "
        f"Baseline, in the same run on {d['baseline_n']:,} of the same clusters: the "
        "straightforward pixel renderer (every emission component evaluated at all pixel "
        "centres, ICM and AGN FFT-convolved with the PSF kernel, independent Poisson numbers per "
        "pixel for ICM, AGN and background; maps only, no galaxies). The generator instead draws "
        "Poisson totals and samples photon positions by inverse CDF, then bins them. Also timed: "
        "writing the catalogue (the project's fixed-format FITS writer) and reading it back with "
        "sha256 checks.",
    ]


def mocks_results(d: Data, run: Data) -> list[str]:
    """The mock benchmark's table."""
    rows = [
        [
            "generator, full product",
            num(d["n_clusters"], 0),
            num(d["generate_s"], 2),
            f"**{num(d['clusters_per_s_per_core'])}**",
            f"**{ratio(d['speedup_vs_baseline'])}**",
        ],
        [
            "baseline: naive pixel renderer, maps only",
            num(d["baseline_n"], 0),
            num(d["baseline_s"], 2),
            num(d["baseline_clusters_per_s"]),
            "1.00",
        ],
        ["writing FITS maps (files/s)", num(d["n_clusters"], 0), num(d["write_s"], 2),
         num(d["write_files_per_s"]), ""],
        ["reading with sha256 checks (files/s)", num(d["n_clusters"], 0), num(d["read_s"], 2),
         num(d["read_files_per_s"]), ""],
    ]  # fmt: skip
    return [
        "**Results.**",
        "",
        *table(
            ["step", "clusters", "seconds", "clusters/s per core", "ratio vs baseline"],
            ["---", "---:", "---:", "---:", "---:"],
            rows,
        ),
        "",
        f"Mean photons per cluster (all bands, TOTAL): {num(d['mean_photons_per_cluster'], 0)}.",
    ]


def mocks_row(d: Data) -> tuple[str, str, str]:
    """Summary cells of the mock benchmark."""
    return (
        f"{num(d['clusters_per_s_per_core'])} clusters/s per core (full product)",
        f"naive pixel renderer: {num(d['baseline_clusters_per_s'])} clusters/s (maps only)",
        ratio(d["speedup_vs_baseline"]),
    )


# --- ingestion -------------------------------------------------------------------------------


def ingest_what(d: Data) -> list[str]:
    """What the ingestion benchmark measures."""
    return [
        f"**What.** Ingestion of a mock catalogue of {d['n_clusters']:,} clusters into a "
        "throwaway, migrated database through the project's path, "
        "`services.jobs.simulation.ingest_mock_directory` (what `clustermass simulate` and the "
        "Celery ingest task run): read the truth table; copy every FITS file into the "
        "content-addressed store (a kernel copy, then the sha256 of the bytes written) in two "
        "threads while one "
        "transaction stages the clusters and observables with `COPY` into temporary tables and "
        "merges them with one `INSERT ... SELECT` per table (plain for the rows of clusters it "
        "just inserted, `ON CONFLICT DO UPDATE ... WHERE ... IS DISTINCT FROM` otherwise); the "
        "products, which need the checksums, last. *Store already owns the maps*: the same "
        "call into a second empty database whose store holds every map (reading and database "
        "writes, no hashing). The re-run is the same call again (idempotent: every row exists "
        "and nothing is rewritten). Baseline, the lower bound: the rows the project wrote, "
        "exported with `COPY ... TO STDOUT`, the tables truncated, and the same rows loaded back "
        "with `COPY ... FROM STDIN` in one transaction (same tables, indexes, constraints and "
        "triggers; no conflict handling, no row building in Python). Rows are clusters + "
        "observables + products; the ratio is rows/s over the raw COPY's rows/s. Generating and "
        "writing the "
        "mock are not part of the comparison.",
    ]


def ingest_results(d: Data, run: Data) -> list[str]:
    """The ingestion benchmark's table."""
    r = d["rows"]
    rows = [
        [c["name"], num(c["seconds"], 2), num(c["rows_per_s"], 0), ratio(c["ratio"])]
        for c in d["cases"]
    ]
    n = max(d["n_clusters"], 1)
    out = [
        "**Results.**",
        "",
        *table(
            ["path", "seconds", "rows/s", "ratio vs raw COPY"],
            ["---", "---:", "---:", "---:"],
            rows,
        ),
        "",
        f"Rows: {r['clusters']:,} clusters, {r['observables']:,} observables "
        f"({r['observables'] / n:.0f} scalar truth columns per cluster), {r['products']:,} "
        f"products (TOTAL, AGN, ICM and GALAXIES of one stored FITS file per cluster): "
        f"{r['total']:,} rows, {d['copy_bytes'] / 2**20:.1f} MiB as COPY text. File store "
        f"(copy and sha256 of every map file, in threads, overlapping the database writes): "
        f"its last map stored {num(d['store_s']['first'], 2)} s into the first ingest, "
        f"{num(d['store_s']['rerun'], 2)} s into the re-run. The mock itself took "
        f"{num(d['generate_s'], 1)} s to generate and {num(d['write_s'], 1)} s to write; "
        f"migrating the empty database {num(d['migrate_s'], 1)} s.",
    ]
    files = d.get("files")
    base = next((c for c in d["cases"] if c["kind"] == "baseline"), None)
    db_only = next((c for c in d["cases"] if c["kind"] == "db"), None)
    if files and base and db_only:
        floor = max(files["store_s"], db_only["seconds"])
        out += [
            "",
            f"**The files' share.** Without the database, storing the {files['bytes'] / 2**30:.2f} "
            f"GiB of map files took {num(files['store_s'], 2)} s (the ingest's own function: "
            f"kernel copy and sha256, in its threads), and writing the same bytes as new files "
            f"in one plain loop (no hashing) {num(files['write_s'], 2)} s: on this filesystem the "
            f"cost is the kernel's, putting the bytes into new files. The files alone take "
            f"{files['store_s'] / base['seconds']:.1f}x the raw COPY of the rows "
            f"({num(base['seconds'], 2)} s), so an ingest that keeps its own copy of the maps, "
            f"however well it overlaps them with the database part "
            f"({num(db_only['seconds'], 2)} s, {ratio(db_only['ratio'])}x the raw COPY), cannot "
            f"beat {ratio(base['seconds'] / floor)}x the raw COPY here.",
        ]
    return out


def ingest_row(d: Data) -> tuple[str, str, str]:
    """Summary cells of the ingestion benchmark."""
    total = next(c for c in d["cases"] if c["kind"] == "total")
    base = next(c for c in d["cases"] if c["kind"] == "baseline")
    return (
        f"ingest_mock_directory: {num(total['rows_per_s'], 0)} rows/s (total)",
        f"raw COPY of the same rows: {num(base['rows_per_s'], 0)} rows/s",
        ratio(total["ratio"]),
    )


# --- training step ---------------------------------------------------------------------------

VARIANT_TEXT = {
    "keras": "Keras reference, `model.fit`",
    "nchw": "torch, NCHW (default memory format)",
    "channels_last": "torch, channels_last (NHWC)",
    "channels_last+micro10": "torch, channels_last + micro-batches of 10",
    "channels_last+micro25": "torch, channels_last + micro-batches of 25",
    "nchw+micro10": "torch, NCHW + micro-batches of 10",
    "channels_last+compile": "torch, channels_last + torch.compile",
    "channels_last+amp": "torch, channels_last + bf16/fp16 autocast (CUDA)",
    "channels_last+bf16": "torch, channels_last + bf16 autocast (CPU)",
    "channels_last+micro10+bf16": "torch, channels_last + micro-batches of 10 + bf16 autocast (CPU)",
    "nchw+bf16": "torch, NCHW + bf16 autocast (CPU)",
    "trainer": "torch, the trainer's defaults",
}


def variant_text(d: Data, name: str) -> str:
    """A variant's label; the trainer's defaults spelled out as they resolved in that run."""
    text = VARIANT_TEXT.get(name, f"torch, {name}")
    ts = d.get("trainer_settings")
    if name != "trainer" or not ts:
        return text
    parts = ["channels_last" if ts.get("channels_last") else "NCHW"]
    mb = ts.get("micro_batch")
    parts.append(f"micro-batches of {mb}" if mb else "full batch")
    parts.append(f"{ts['precision']} autocast" if ts.get("precision") != "fp32" else "fp32")
    return f"{text} ({', '.join(parts)})"


def train_what(d: Data) -> list[str]:
    """What the train-step benchmark measures."""
    return [
        "**What.** Training-step throughput (images/s) of the single-band CNN of the paper "
        "(363,629 parameters; [models.md](models.md)) in our PyTorch trainer against the "
        f"authors' Keras, with the same batch ({d['batch']} maps of 128x128x1), input, Adam "
        "1e-3, MSE loss and L2 1e-4 on the kernels. The torch side calls "
        "`models.training.train_step` (the trainer's own step) on "
        "`models.networks.SingleBandCNN`; the Keras side runs `model.fit` in its own "
        "interpreter (tensorflow-cpu lives in a separate venv, never in the project's; see "
        "`--keras-python`). Rounds alternate Keras and torch so the machine's load hits both "
        "alike; each side's number is the median over rounds of its best repeat, after warm-up "
        "steps. The ratio is torch over Keras images/s. Micro-batches accumulate the gradients "
        "of chunks of the batch (the same update as the full batch). Both sides run with the "
        "allocator settings of the `clustermass` CLI (`GLIBC_TUNABLES` "
        f"`{d.get('glibc_tunables') or 'unset'}`; `astro/allocator.py`).",
    ]


def train_results(d: Data, run: Data) -> list[str]:
    """The train-step table."""
    p = d["params"]
    med = d["median_best_img_per_s"]
    ratios = d.get("ratio_vs_keras") or {}
    meta = d.get("keras_meta") or {}
    rows = []
    if d.get("keras_status") == "measured" and "keras" in med:
        where = "GPU" if meta.get("gpus") else "CPU"
        label = f"Keras {meta.get('keras', '?')} / TensorFlow {meta.get('tf', '?')} ({where})"
        rows.append([label, num(med["keras"], 1), _rounds(d, "keras"), "1.00"])
    else:
        rows.append(["Keras reference", d.get("keras_status", "not measured"), "", ""])
    best = max(p["variants"], key=lambda n: med.get(n, 0.0)) if p["variants"] else None
    for n in p["variants"]:
        text = variant_text(d, n)
        value = num(med.get(n), 1)
        r = ratio(ratios.get(n)) if ratios else "-"
        if n == best and ratios:
            value, r = f"**{value}**", f"**{r}**"
        rows.append([text, value, _rounds(d, n), r])
    return [
        "**Results**",
        f"(torch on `{d['device']}`, {d['threads']} thread(s), `OMP_WAIT_POLICY="
        f"{d.get('omp_wait_policy')}`; {p['rounds']} round(s) x {p['repeats']} repeat(s) of "
        f"{p['steps']} steps):",
        "",
        *table(
            ["implementation", "images/s", "best of each round", "ratio vs Keras"],
            ["---", "---:", "---:", "---:"],
            rows,
        ),
    ]


def _rounds(d: Data, name: str) -> str:
    return ", ".join(f"{v:.1f}" for v in (d.get("per_round_best") or {}).get(name, []))


def train_row(d: Data) -> tuple[str, str, str]:
    """Summary cells of the train-step benchmark."""
    med = d["median_best_img_per_s"]
    names = d["params"]["variants"]
    best = max(names, key=lambda n: med.get(n, 0.0))
    ours = f"{variant_text(d, best)}: {num(med[best], 1)} images/s ({d['device']})"
    if d.get("ratio_vs_keras"):
        return ours, f"Keras: {num(med['keras'], 1)} images/s", ratio(d["ratio_vs_keras"][best])
    return ours, f"Keras {d.get('keras_status', 'not measured')}", "-"


# --- inference -------------------------------------------------------------------------------

MODEL_TEXT = {"single": "single-band CNN", "multi": "multiband CNN", "multimodal": "multimodal CNN"}


def inference_what(d: Data) -> list[str]:
    """What the inference benchmark measures."""
    return [
        "**What.** End-to-end batched inference of `models.inference.predict` in maps per "
        "second: raw count maps (N, 3, 128, 128) through the redshift normalisation, log and "
        "standardisation, the network, to log10 M500c; for each network at several batch sizes, "
        "with NCHW and channels_last inputs. The multimodal CNN gets precomputed 64^3 KDE cubes "
        "(not the KDE itself) and is timed on at most 64 maps. Each number is the best of two "
        "passes after a warm-up. Baseline in the same run: batch 1 in NCHW (one map at a time, "
        "the naive service loop, on at most 64 maps); the ratio is maps/s over the baseline's "
        "of the same network. `predict` defaults to batches of 10 on a CPU and 256 on CUDA.",
    ]


def inference_results(d: Data, run: Data) -> list[str]:
    """The inference table."""
    rows = []
    for r in d["results"]:
        fmt = "channels_last" if r["channels_last"] else "NCHW"
        base = " (baseline)" if r["batch"] == 1 and not r["channels_last"] else ""
        rows.append(
            [
                MODEL_TEXT.get(r["model"], r["model"]),
                str(r["batch"]),
                fmt + base,
                num(r.get("n_maps"), 0),
                num(r["maps_per_s"]),
                ratio(r["ratio"]),
            ]
        )
    out = [
        f"**Results** (`{d['device']}`, {d['threads']} thread(s)):",
        "",
        *table(
            ["network", "batch", "input layout", "maps", "maps/s", "ratio vs batch 1 NCHW"],
            ["---", "---:", "---", "---:", "---:", "---:"],
            rows,
        ),
    ]
    resident = d.get("resident") or []
    if resident:
        fp32 = {(r["model"], r["batch"]): r["maps_per_s"] for r in resident
                if r["precision"] == "fp32"}  # fmt: skip
        out += [
            "",
            f"**On the device** ({d.get('gpu') or d['device']}): the network alone on inputs "
            "already in GPU memory (channels_last, inference mode; the clock stops after a "
            "CUDA synchronise), fp32 and bf16 autocast; ratio: bf16 over fp32 of the same batch.",
            "",
            *table(
                ["network", "batch", "precision", "maps/s", "ratio vs fp32"],
                ["---", "---:", "---", "---:", "---:"],
                [
                    [
                        MODEL_TEXT.get(r["model"], r["model"]),
                        str(r["batch"]),
                        r["precision"],
                        num(r["maps_per_s"]),
                        ratio(r["maps_per_s"] / fp32[(r["model"], r["batch"])])
                        if (r["model"], r["batch"]) in fp32
                        else "",
                    ]
                    for r in resident
                ],
            ),  # fmt: skip
        ]
    return out


def inference_row(d: Data) -> tuple[str, str, str]:
    """Summary cells of the inference benchmark (the first network's best configuration)."""
    first = d["results"][0]["model"]
    mine = [r for r in d["results"] if r["model"] == first]
    best = max(mine, key=lambda r: r["maps_per_s"])
    base = next(r for r in mine if r["batch"] == 1 and not r["channels_last"])
    fmt = "channels_last" if best["channels_last"] else "NCHW"
    return (
        f"{MODEL_TEXT.get(first, first)}: {num(best['maps_per_s'])} maps/s (batch "
        f"{best['batch']}, {fmt}, {d['device']})",
        f"batch 1, NCHW: {num(base['maps_per_s'])} maps/s",
        ratio(best["ratio"]),
    )


__all__ = [
    "mocks_what", "mocks_results", "mocks_row", "ingest_what", "ingest_results", "ingest_row",
    "train_what", "train_results", "train_row", "inference_what", "inference_results",
    "inference_row",
]  # fmt: skip
