"""The machine-readable benchmark results: one row per (preset, estimator).

``docs/benchmark_results.csv`` (issue 14) holds the numbers of ``docs/benchmark.md``'s tables in
a form a script can read: for every mock preset, every estimator (the three CNNs, the fold
ensemble, the hidden-truth regression, each scalar proxy and combination), the out-of-fold
scatter sigma_lnM (natural-log units: 0.178 = 17.8%) with its 68% interval, the bias in dex
with its interval, the number of clusters and the paper's value where the paper has one (Ho et
al. 2023, Table 2).

Estimator names: ``single``, ``multi``, ``multimodal`` (the CNNs), ``single_ensemble`` (a fold
ensemble of single-band networks; likewise ``multi_ensemble``, and ``single_gaussian_ensemble``
for the Gaussian-head deep ensemble), ``oracle`` (the hidden-truth regression, ``models.oracle``),
and for proxies and combinations the row label of the benchmark table (``L_X``, ``N_gal +
N_phot,500c``, ...).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from models.comparison import CNN_LABELS, ENSEMBLE_SUFFIX, GAUSSIAN_SUFFIX, estimator_label
from models.errors import DataError

__all__ = [
    "RESULTS_COLUMNS",
    "ENSEMBLE_SUFFIX",
    "ResultRow",
    "estimator_name",
    "results_rows",
    "write_results_csv",
    "read_results_csv",
    "merge_results_csv",
    "results_markdown",
    "embed_results",
]

#: Columns of ``docs/benchmark_results.csv``, in order.
RESULTS_COLUMNS: tuple[str, ...] = (
    "preset",
    "estimator",
    "kind",
    "n",
    "sigma_lnM",
    "ci68_lo",
    "ci68_hi",
    "bias_dex",
    "bias_ci68_lo",
    "bias_ci68_hi",
    "paper_sigma_lnM",
)
_KINDS = frozenset({"proxy", "combination", "cnn", "oracle"})
_REQUIRED = ("preset", "estimator", "kind", "n", "sigma_lnM", "ci68_lo", "ci68_hi")


@dataclass(frozen=True)
class ResultRow:
    """One (preset, estimator) row; sigma in ln units, bias in dex, None where not defined."""

    preset: str
    estimator: str
    kind: str
    n: int
    sigma_lnM: float
    ci68_lo: float
    ci68_hi: float
    bias_dex: float | None = None
    bias_ci68_lo: float | None = None
    bias_ci68_hi: float | None = None
    paper_sigma_lnM: float | None = None


def estimator_name(label: str, kind: str) -> str:
    """Estimator name of a benchmark-table row (see the module docstring)."""
    if kind == "oracle":
        return "oracle"
    if kind == "cnn":
        for name in CNN_LABELS:
            for variant in ("", "_gaussian"):
                for suffix in ("", "_ensemble"):
                    if label == estimator_label(name + variant + suffix):
                        return name + variant + suffix
        raise DataError(
            f"CNN row {label!r} is not one of {sorted(CNN_LABELS.values())} (optionally with "
            f"{GAUSSIAN_SUFFIX!r} and/or {ENSEMBLE_SUFFIX!r}): name the row after its network"
        )
    return label


def _number(row: Mapping[str, Any], key: str) -> float | None:
    value = row.get(key)
    if value is None or value == "":
        return None
    return float(value)


def results_rows(preset: str, table: Iterable[Mapping[str, Any]]) -> list[ResultRow]:
    """Rows of one preset from benchmark-table rows (:func:`models.comparison.benchmark_table`).

    Raises
    ------
    DataError
        Two rows map to the same estimator, or a row lacks its scatter or interval.
    """
    out: list[ResultRow] = []
    seen: set[str] = set()
    for i, row in enumerate(table):
        name = estimator_name(str(row["observable"]), str(row["kind"]))
        if name in seen:
            raise DataError(f"preset {preset!r}: estimator {name!r} appears twice (row {i})")
        seen.add(name)
        sigma, lo, hi = (_number(row, k) for k in ("sigma_lnM", "sigma_lnM_lo", "sigma_lnM_hi"))
        if sigma is None or lo is None or hi is None:
            raise DataError(f"preset {preset!r}, row {i} ({name}): no sigma_lnM or interval")
        out.append(
            ResultRow(
                preset=preset,
                estimator=name,
                kind=str(row["kind"]),
                n=int(row["n"]),
                sigma_lnM=sigma,
                ci68_lo=lo,
                ci68_hi=hi,
                bias_dex=_number(row, "bias_dex"),
                bias_ci68_lo=_number(row, "bias_dex_lo"),
                bias_ci68_hi=_number(row, "bias_dex_hi"),
                paper_sigma_lnM=_number(row, "paper_sigma_lnM"),
            )
        )
    return out


def write_results_csv(rows: Sequence[ResultRow], path: str | Path) -> Path:
    """Write the rows (``RESULTS_COLUMNS``; empty cells for undefined values)."""
    path = Path(path)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(RESULTS_COLUMNS)
        for r in rows:
            values = [getattr(r, c) for c in RESULTS_COLUMNS]
            writer.writerow(
                ["" if v is None else (repr(v) if isinstance(v, float) else v) for v in values]
            )
    return path


def read_results_csv(path: str | Path) -> list[ResultRow]:
    """Read and check ``docs/benchmark_results.csv``.

    Raises
    ------
    DataError
        Wrong header, a missing or non-numeric value, an unknown kind, a point estimate outside
        its interval, or a repeated (preset, estimator); the message names the line and field.
    """
    path = Path(path)
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != RESULTS_COLUMNS:
            raise DataError(f"{path}: header {reader.fieldnames} is not {list(RESULTS_COLUMNS)}")
        rows: list[ResultRow] = []
        keys: set[tuple[str, str]] = set()
        for line, raw in enumerate(reader, start=2):
            where = f"{path}, line {line}"
            for field in _REQUIRED:
                if not raw[field]:
                    raise DataError(f"{where}: {field} is empty")
            values: dict[str, Any] = {}
            for field in RESULTS_COLUMNS:
                text = raw[field]
                if field in ("preset", "estimator", "kind"):
                    values[field] = text
                    continue
                try:
                    values[field] = (
                        None if text == "" else (int(text) if field == "n" else float(text))
                    )
                except ValueError:
                    raise DataError(f"{where}: {field} = {text!r} is not a number") from None
                if values[field] is not None and not math.isfinite(values[field]):
                    raise DataError(f"{where}: {field} = {text!r} is not finite")
            row = ResultRow(**values)
            if row.kind not in _KINDS:
                raise DataError(f"{where}: kind {row.kind!r} is not one of {sorted(_KINDS)}")
            if not row.ci68_lo <= row.sigma_lnM <= row.ci68_hi:
                raise DataError(
                    f"{where}: sigma_lnM {row.sigma_lnM} is outside its interval "
                    f"[{row.ci68_lo}, {row.ci68_hi}]"
                )
            bias = (row.bias_dex, row.bias_ci68_lo, row.bias_ci68_hi)
            if None not in bias and not bias[1] <= bias[0] <= bias[2]:
                raise DataError(f"{where}: bias_dex {bias[0]} is outside its interval")
            key = (row.preset, row.estimator)
            if key in keys:
                raise DataError(f"{where}: ({row.preset}, {row.estimator}) appears twice")
            keys.add(key)
            rows.append(row)
    return rows


def merge_results_csv(
    path: str | Path,
    preset: str,
    rows: Sequence[ResultRow],
    *,
    mode: Literal["estimators", "preset"] = "estimators",
) -> Path:
    """Merge ``rows`` (all of ``preset``) into the results CSV at ``path`` (created if absent).

    ``mode="estimators"`` (default): replace the rows of the estimators in ``rows`` where they
    are, keep every other row, and put an estimator new to the file after the preset's last row
    of the same kind (else after the preset's last row): adding one network's run (say
    ``single_ensemble``) keeps the rows of the others. ``mode="preset"``: drop all of
    ``preset``'s rows first (the table of a complete run replaces the old one).
    """
    path = Path(path)
    old = read_results_csv(path) if path.exists() else []
    if any(r.preset != preset for r in rows):
        raise DataError(f"merge_results_csv: every row must be of preset {preset!r}")
    if mode == "preset":
        return write_results_csv([*[r for r in old if r.preset != preset], *rows], path)
    if mode != "estimators":
        raise ValueError(f"mode must be 'estimators' or 'preset'; got {mode!r}")
    new = {r.estimator: r for r in rows}
    merged = [new.pop(r.estimator, r) if r.preset == preset else r for r in old]
    for r in rows:
        if r.estimator not in new:
            continue  # replaced in place above
        mine = [i for i, m in enumerate(merged) if m.preset == preset]
        same = [i for i in mine if merged[i].kind == r.kind]
        at = (same or mine or [len(merged) - 1])[-1] + 1
        merged.insert(at, new.pop(r.estimator))
    return write_results_csv(merged, path)


def _pct(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{100 * value:.{digits}f}"


def results_markdown(rows: Sequence[ResultRow], preset: str) -> str:
    """Render one preset's rows as the Markdown table of ``docs/benchmark.md``.

    sigma_lnM in percent with its 68% interval, bias in dex with its interval, N, the paper's
    value; the first column is the estimator name of the CSV, so the page and
    ``docs/benchmark_results.csv`` can be checked against each other (the page embeds this
    function's output between ``<!-- results:PRESET -->`` markers).
    """
    mine = [r for r in rows if r.preset == preset]
    if not mine:
        raise DataError(
            f"no rows of preset {preset!r}; presets: {sorted({r.preset for r in rows})}"
        )
    lines = [
        "| estimator | kind | sigma_lnM [%] (68% CI) | bias [dex] (68% CI) | N | Ho+23 [%] |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in mine:
        sigma = f"{_pct(r.sigma_lnM)} [{_pct(r.ci68_lo)}, {_pct(r.ci68_hi)}]"
        bias = (
            ""
            if r.bias_dex is None
            else f"{r.bias_dex:+.4f} [{r.bias_ci68_lo:+.4f}, {r.bias_ci68_hi:+.4f}]"
        )
        lines.append(
            f"| `{r.estimator}` | {r.kind} | {sigma} | {bias} | {r.n:,} | "
            f"{_pct(r.paper_sigma_lnM)} |"
        )
    return "\n".join(lines)


_MARKER = "<!-- results:{preset} -->"
_END = "<!-- /results:{preset} -->"


def embed_results(text: str, rows: Sequence[ResultRow]) -> str:
    """Replace every ``<!-- results:P -->...<!-- /results:P -->`` block of ``text``.

    Each block becomes :func:`results_markdown` of preset P (the page's tables regenerated from
    the CSV).

    Raises
    ------
    DataError
        A start marker without its end marker.
    """
    out, pos = [], 0
    while (start := text.find("<!-- results:", pos)) >= 0:
        preset = text[start + len("<!-- results:") : text.find(" -->", start)]
        head = _MARKER.format(preset=preset)
        end = text.find(_END.format(preset=preset), start)
        if end < 0:
            raise DataError(f"{head} has no closing {_END.format(preset=preset)}")
        out += [text[pos:start], head, "\n", results_markdown(rows, preset), "\n"]
        pos = end
        out.append(_END.format(preset=preset))
        pos += len(_END.format(preset=preset))
    out.append(text[pos:])
    return "".join(out)
