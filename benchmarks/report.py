"""Render benchmark runs (:func:`benchmarks.runner.run_benchmarks` records) as Markdown.

A run record is ``{"machine": ..., "options": ..., "elapsed_s": ..., "results": {key: entry}}``,
each entry ``{"status": "ok", "command": ..., "data": <the benchmark's measure() dict>}`` or
``{"status": "failed", "command": ..., "error": ...}``. Several runs (``--merge``, e.g. a CPU run
and a later GPU run on another machine) render side by side: one machine table with a column per
run and, in each section, the results of every run that measured it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from benchmarks import report_sections as sections
from benchmarks import report_sql
from benchmarks.registry import is_complete

__all__ = ["render", "run_label", "SECTIONS"]

Run = dict[str, Any]

# key -> (heading, what-is-measured renderer, results renderer, summary-row renderer)
SECTIONS: dict[str, tuple[str, Callable, Callable, Callable]] = {
    "mocks": ("Mock generation", sections.mocks_what, sections.mocks_results, sections.mocks_row),
    "ingest": (
        "Ingestion: project path vs raw COPY",
        sections.ingest_what,
        sections.ingest_results,
        sections.ingest_row,
    ),
    "train": (
        "Training step: single-band CNN vs the authors' Keras",
        sections.train_what,
        sections.train_results,
        sections.train_row,
    ),
    "inference": (
        "Inference: maps/s by batch size",
        sections.inference_what,
        sections.inference_results,
        sections.inference_row,
    ),
    "sql": (
        "Results SQL: scatter per bin",
        report_sql.sql_what,
        report_sql.sql_results,
        report_sql.sql_row,
    ),
}


def run_label(i: int, run: Run) -> str:
    """A short name of run ``i`` (1-based): device, date and the CPU or GPU."""
    m = run["machine"]
    dev = run["options"]["device"]
    hw = (m.get("gpu") or {}).get("name") if dev == "cuda" else m.get("cpu_model")
    quick = ", --quick" if run["options"]["quick"] else ""
    return f"run {i}: {dev}{quick}, {m.get('date_start', '?')[:10]}, {hw or '?'}"


def _fmt_load(values: Sequence[float] | None) -> str:
    return " / ".join(f"{v:.2f}" for v in values) if values else "?"


def _machine_rows(run: Run) -> list[tuple[str, str]]:
    m = run["machine"]
    flags = ", ".join(m.get("cpu_flags") or []) or "none of avx2/avx512/amx"
    pg = m.get("postgresql")
    if pg is None:
        pg_text = "not used in this run"
    elif "error" in pg:
        pg_text = f"not reachable ({pg['error']})"
    else:
        settings = ", ".join(f"`{k}` {v}" for k, v in (pg.get("settings") or {}).items())
        pg_text = f"{pg.get('version', '?')}; {settings}"
    gpu = m.get("gpu")
    if gpu:
        gpu_text = (
            f"{gpu['name']} ({gpu['memory_gib']} GiB, compute {gpu['capability']}, CUDA "
            f"{gpu['cuda']}; {gpu['count']} device(s))"
        )
    else:
        gpu_text = "**no GPU measured** (this run used the CPU)"
    v = m.get("versions") or {}
    return [
        ("CPU", f"{m.get('cpu_model', '?')} (flags: {flags})"),
        ("cores", f"{m.get('logical_cores', '?')} logical, {m.get('usable_cores', '?')} usable"),
        ("RAM", f"{m.get('ram_gib', '?')} GiB"),
        ("load average 1/5/15 min, start", _fmt_load(m.get("load_avg_start"))),
        ("load average 1/5/15 min, end", _fmt_load(m.get("load_avg_end"))),
        ("GPU", gpu_text),
        ("PostgreSQL", pg_text),
        (
            "Python / torch / numpy",
            f"{m.get('python', '?')} / {v.get('torch', '?')} / {v.get('numpy', '?')}",
        ),
        ("SQLAlchemy / psycopg2", f"{v.get('sqlalchemy', '?')} / {v.get('psycopg2-binary', '?')}"),
        ("OS", m.get("os", "?")),
        ("date (UTC)", f"{m.get('date_start', '?')} to {m.get('date_end', '?')}"),
        ("duration", f"{run.get('elapsed_s', 0) / 60:.1f} min"),
        ("commit", m.get("git_commit") or "?"),
        ("command", f"`{run['options'].get('command', '?')}`"),
    ]


def machine_section(runs: Sequence[Run]) -> list[str]:
    """The machine table (a column per run) and a note when the machine was busy."""
    out = ["## Machine", ""]
    labels = [run_label(i + 1, r) for i, r in enumerate(runs)]
    header = ["", *(labels if len(runs) > 1 else ["value"])]
    out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    columns = [_machine_rows(r) for r in runs]
    for j, (name, _) in enumerate(columns[0]):
        out.append("| " + " | ".join([name, *(col[j][1] for col in columns)]) + " |")
    out.append("")
    for label, run in zip(labels, runs, strict=True):
        m = run["machine"]
        loads = [x[0] for x in (m.get("load_avg_start"), m.get("load_avg_end")) if x]
        cores = m.get("usable_cores") or m.get("logical_cores") or 1
        if loads and max(loads) > 0.5 * cores:
            out += [
                f"**Shared and busy** ({label}): the 1-minute load average was "
                f"{min(loads):.1f}-{max(loads):.1f} on {cores} cores at the start and end of the "
                "run, so the benchmarks got a fraction of the CPU. Absolute numbers are lower "
                "than on a quiet machine; the ratios, measured under the same load, are the "
                "meaningful numbers.",
                "",
            ]
    return out


def summary_section(runs: Sequence[Run]) -> list[str]:
    """One line per benchmark and run: the headline number, its baseline and the ratio."""
    out = [
        "## Summary",
        "",
        "| benchmark | run | this project | baseline (same run) | speed-up vs baseline |",
        "|---|---|---|---|---:|",
    ]
    for key, (heading, _, _, row) in SECTIONS.items():
        for i, run in enumerate(runs):
            entry = run["results"].get(key)
            if entry is None:
                continue
            if entry.get("status") != "ok":
                cells = ("failed (see below)", "", "")
            else:
                cells = row(entry["data"])
            anchor = _anchor(heading)
            out.append(f"| [{heading}](#{anchor}) | {i + 1} | " + " | ".join(cells) + " |")
    out += [
        "",
        "Speed-up: throughput over the baseline's throughput, or the baseline's latency over ours "
        "(above 1: faster than the baseline; ingestion is compared with its lower bound, so it "
        "stays below 1).",
        "",
    ]
    return out


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    keep = "".join(c for c in heading.lower() if c.isalnum() or c in " -_")
    return keep.replace(" ", "-")


def header(runs: Sequence[Run]) -> list[str]:
    """The title, the generator marker, the quick-run warning, the GPU statement."""
    quick = any(r["options"]["quick"] for r in runs)
    complete = is_complete(runs)
    out = [
        f"<!-- benchmarks: quick={int(quick)} complete={int(complete)} (generated by `python -m "
        "benchmarks`; edit benchmarks/report*.py, not this file) -->",
        "# Benchmarks",
        "",
    ]
    if quick:
        out += [
            "> **QUICK RUN (`--quick`): tiny sizes that only test the runner. The numbers below "
            "are not representative;** regenerate with `python -m benchmarks` (full sizes) on a "
            "quiet machine.",
            "",
        ]
    out += [
        "Every benchmark of the project, run by one command (`python -m benchmarks`, or "
        "`clustermass bench`), with the machine it ran on. Each benchmark is a script in "
        "`benchmarks/` that also runs on its own (the command under each section reproduces it); "
        "every ratio is against a baseline measured in the same invocation, on the same machine "
        "under the same load, so compare ratios across machines rather than absolute numbers. "
        "The raw results (every timing) are in the JSON saved next to this file.",
        "",
    ]
    if not any(r["options"]["device"] == "cuda" for r in runs):
        out += [
            "**No GPU measured.** Every number below is from the CPU. On a machine with a CUDA "
            "device, `python -m benchmarks --device cuda --only train,inference --merge "
            "docs/benchmarks.json` adds the GPU rows (named card) next to these.",
            "",
        ]
    if not complete:
        missing = [k for k in SECTIONS if not any(k in r["results"] for r in runs)]
        if missing:
            out += [f"Not measured in this report: {', '.join(missing)} (`--only`).", ""]
    return out


def render(runs: Sequence[Run]) -> str:
    """The whole Markdown report of ``runs`` (at least one)."""
    if not runs:
        raise ValueError("render() needs at least one run")
    lines = header(runs) + machine_section(runs) + summary_section(runs)
    for key, (heading, what, results, _) in SECTIONS.items():
        lines += [f"## {heading}", ""]
        have = [(i, r) for i, r in enumerate(runs) if key in r["results"]]
        if not have:
            lines += ["Not run in this invocation (`--only`).", ""]
            continue
        ok = [r["results"][key]["data"] for _, r in have if r["results"][key]["status"] == "ok"]
        if ok:
            lines += what(ok[0]) + [""]
        for i, run in have:
            entry = run["results"][key]
            if len(runs) > 1:
                lines += [f"### {run_label(i + 1, run)}", ""]
            lines += ["**Command.**", "", "```bash", entry["command"], "```", ""]
            if entry["status"] != "ok":
                lines += ["**Failed.**", "", "```text", entry.get("error", "?"), "```", ""]
                continue
            lines += results(entry["data"], run) + [""]
    return "\n".join(lines).rstrip() + "\n"
