"""The paper-style benchmark table (Ho et al. 2023, Table 2) and its figure.

Rows: every scalar proxy, the proxy combinations, the CNNs, and the hidden-truth regression
(``models.oracle``: a regression on chosen hidden truth, not a floor). Columns:
sigma_lnM with a bootstrap interval, the bias of the network-like rows (dex), the number of
clusters, and the paper's value for comparison (in the paper the scatter is quoted in percent
of ln M, i.e. 100 sigma_lnM).
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from astro.numbers import format_interval, format_number
from models.baselines import combined_estimate, dl_estimates, proxy_estimate
from models.data import ClusterArrays
from models.errors import ProxyError
from models.oracle import ORACLE_LABEL

__all__ = [
    "ProxyRow",
    "DEFAULT_PROXIES",
    "PAPER_SIGMA_PERCENT",
    "benchmark_table",
    "table_markdown",
    "write_table_csv",
    "benchmark_figure",
    "shape_checks",
    "OBSERVED_PROXIES",
    "cnn_vs_observed",
    "CNN_LABELS",
    "ENSEMBLE_SUFFIX",
    "GAUSSIAN_SUFFIX",
    "estimator_of",
    "estimator_label",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProxyRow:
    """A table row made of one or more scalar columns of the truth table."""

    label: str
    columns: tuple[str, ...]


#: Rows of the paper's Table 2 that use scalar proxies, in its order.
DEFAULT_PROXIES: tuple[ProxyRow, ...] = (
    ProxyRow("T", ("T",)),
    ProxyRow("L_X", ("L_X",)),
    ProxyRow("M_gas", ("M_gas",)),
    ProxyRow("M_star", ("M_star",)),
    ProxyRow("sigma_v (true 3D members)", ("sigma_v_true",)),
    ProxyRow("N_gal", ("N_gal",)),
    ProxyRow("sigma_v (observed, with interlopers)", ("sigma_v_obs",)),
    ProxyRow("N_phot", ("N_phot",)),
    ProxyRow("N_phot within R500c", ("N_phot_500c",)),
    ProxyRow("N_gal + N_phot,500c", ("N_gal", "N_phot_500c")),
    ProxyRow("all four observed scalars", ("N_gal", "sigma_v_obs", "N_phot", "N_phot_500c")),
    # Beyond the paper: the photon counts minus the expected background and field-AGN counts
    # (mocks/generate.py), which removes the aperture leak of the true R500c (docs/mocks.md).
    # Clusters with <= 0 net counts cannot enter a log: the row's N says how many remain.
    ProxyRow("N_phot, background subtracted", ("N_phot_bkgsub",)),
    ProxyRow("N_phot within R500c, background subtracted", ("N_phot_500c_bkgsub",)),
    ProxyRow("N_gal + N_phot,500c, background subtracted", ("N_gal", "N_phot_500c_bkgsub")),
)

#: The paper's sigma_lnM in percent (Ho et al. 2023, Table 2), keyed by row label.
PAPER_SIGMA_PERCENT: dict[str, float] = {
    "T": 11.75,
    "L_X": 26.33,
    "M_gas": 8.46,
    "M_star": 12.56,
    "sigma_v (true 3D members)": 37.56,
    "N_gal": 39.72,
    "sigma_v (observed, with interlopers)": 70.39,
    "N_phot": 40.02,
    "N_phot within R500c": 34.07,
    "N_gal + N_phot,500c": 28.82,
    "all four observed scalars": 27.34,
    "Single-band CNN": 17.80,
    "Multiband CNN": 16.18,
    "Multimodal CNN": 15.90,
}

#: Table labels of the three networks, keyed by model kind (the estimator names of
#: ``docs/benchmark_results.csv``).
CNN_LABELS: dict[str, str] = {
    "single": "Single-band CNN",
    "multi": "Multiband CNN",
    "multimodal": "Multimodal CNN",
}

#: A CNN row label ending with this names a fold ensemble of that network.
ENSEMBLE_SUFFIX = " (fold ensemble)"
#: A CNN row label with this (before any ENSEMBLE_SUFFIX) names the Gaussian-head variant.
GAUSSIAN_SUFFIX = " (Gaussian head)"


def estimator_of(kind: str, config: Mapping[str, Any]) -> str:
    """Estimator name of a run: ``kind`` [+ ``_gaussian``] [+ ``_ensemble``].

    ``config`` is the run's config as a mapping (``RunConfig.model_dump()`` or the stored
    ``model_runs.config``): ``ensemble`` > 1 makes a fold ensemble, ``model.args.head ==
    "gaussian"`` the Gaussian-head variant.
    """
    model = config.get("model") or {}
    head = (model.get("args") or {}).get("head")
    ensemble = int(config.get("ensemble") or 1) > 1
    return kind + ("_gaussian" if head == "gaussian" else "") + ("_ensemble" if ensemble else "")


def estimator_label(name: str) -> str:
    """Table label of an estimator name (the inverse of :func:`estimator_of`'s naming)."""
    base, ensemble = (
        (name[: -len("_ensemble")], True) if name.endswith("_ensemble") else (name, False)
    )
    base, gaussian = (
        (base[: -len("_gaussian")], True) if base.endswith("_gaussian") else (base, False)
    )
    if base not in CNN_LABELS:
        raise ValueError(f"estimator {name!r}: no network {base!r} in {sorted(CNN_LABELS)}")
    return (
        CNN_LABELS[base]
        + (GAUSSIAN_SUFFIX if gaussian else "")
        + (ENSEMBLE_SUFFIX if ensemble else "")
    )


RowKind = Literal["proxy", "combination", "cnn", "oracle"]


def _row(
    label: str, kind: RowKind, n: int, scatter, bias=None, columns: Sequence[str] = ()
) -> dict[str, Any]:
    row: dict[str, Any] = {"observable": label, "kind": kind, "columns": "+".join(columns), "n": n}
    row |= scatter.as_dict("sigma_lnM")
    # The full-sample value; sigma_lnM differs from it only when the bootstrap found it biased
    # by more than its interval (models.intervals.bca): then sigma_lnM is the bias-corrected one.
    row["sigma_lnM_plain"] = scatter.plain
    if bias is not None:
        row |= bias.as_dict("bias_dex")
    else:
        row |= {"bias_dex": None, "bias_dex_lo": None, "bias_dex_hi": None}
    row["paper_sigma_lnM"] = (
        PAPER_SIGMA_PERCENT[label] / 100 if label in PAPER_SIGMA_PERCENT else None
    )
    return row


def benchmark_table(
    arrays: ClusterArrays,
    predictions: Mapping[str, np.ndarray],
    *,
    oracle: np.ndarray | None = None,
    oracle_label: str = ORACLE_LABEL,
    proxies: Sequence[ProxyRow] = DEFAULT_PROXIES,
    n_boot: int = 1000,
    level: float = 0.68,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Rows of the benchmark table as plain dicts.

    Parameters
    ----------
    arrays : ClusterArrays
        Clusters with labels, snapshots and the proxy columns in ``scalars``.
    predictions : mapping of str to ndarray
        Out-of-fold log10 M500c per network, keyed by row label (e.g. "Single-band CNN").
    oracle : ndarray, optional
        Out-of-fold predictions of the hidden-truth regression
        (:func:`models.oracle.oracle_predictions`); its row has ``kind`` "oracle".
    oracle_label : str
        That row's label (:func:`models.oracle.oracle_label` names the columns used).
    proxies : sequence of ProxyRow
        Proxy rows; rows whose columns are missing are skipped with a log message.
    n_boot, level, seed
        Bootstrap settings shared by every row.

    Returns
    -------
    rows : list of dict
        Keys ``observable, kind, columns, n, sigma_lnM, sigma_lnM_lo, sigma_lnM_hi, bias_dex,
        bias_dex_lo, bias_dex_hi, paper_sigma_lnM`` (sigma in ln units: 0.178 = 17.8%).
    """
    true = arrays.require_labels()
    snap = arrays.snapshot if arrays.snapshot is not None else np.zeros(len(arrays), int)
    boot = {"n_boot": n_boot, "level": level, "seed": seed}
    rows = []
    for p in proxies:
        missing = [c for c in p.columns if c not in arrays.scalars]
        if missing:
            log.info("benchmark: skipping %r (columns %s not in catalogue)", p.label, missing)
            continue
        values = np.stack([arrays.scalars[c] for c in p.columns], axis=1)
        try:
            if len(p.columns) == 1:
                est = proxy_estimate(true, values[:, 0], snap, name=p.label, **boot)
                kind: RowKind = "proxy"
            else:
                est = combined_estimate(true, values, snap, names=p.columns, **boot)
                kind = "combination"
        except ProxyError as exc:
            log.warning("benchmark: %r failed: %s", p.label, exc)
            continue
        usable = np.all(np.isfinite(values) & (values > 0), axis=1) & np.isfinite(true)
        rows.append(_row(p.label, kind, int(usable.sum()), est, columns=p.columns))
    named: list[tuple[str, np.ndarray, RowKind]] = [
        (label, pred, "cnn") for label, pred in predictions.items()
    ]
    if oracle is not None:
        named.append((oracle_label, oracle, "oracle"))
    for label, pred, kind in named:
        pred = np.asarray(pred, dtype=np.float64)
        ok = np.isfinite(pred) & np.isfinite(true)
        if not ok.any():
            log.warning("benchmark: %r has no finite prediction: row skipped", label)
            continue
        scatter, bias = dl_estimates(pred[ok], true[ok], snap[ok], **boot)
        rows.append(_row(label, kind, int(ok.sum()), scatter, bias))
    return rows


def _pct(x: float | None) -> str:
    return format_number(x, decimals=2, scale=100, missing="")


def table_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown table: sigma_lnM [%] with interval, bias [dex], N, paper sigma_lnM [%]."""
    level = "68%"
    lines = [
        f"| Observable(s) | sigma_lnM [%] ({level} CI) | bias [dex] | N | paper sigma_lnM [%] |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        sig = f"{_pct(r['sigma_lnM'])} [{_pct(r['sigma_lnM_lo'])}, {_pct(r['sigma_lnM_hi'])}]"
        plain = r.get("sigma_lnM_plain")
        if plain is not None and plain != r["sigma_lnM"]:
            sig += f" (bias-corrected; full sample {_pct(plain)})"
        bias = (
            ""
            if r.get("bias_dex") is None
            else format_interval(
                r["bias_dex"], r.get("bias_dex_lo"), r.get("bias_dex_hi"), signed=True
            )
        )
        lines.append(
            f"| {r['observable']} | {sig} | {bias} | {r['n']} | {_pct(r.get('paper_sigma_lnM'))} |"
        )
    return "\n".join(lines) + "\n"


def write_table_csv(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Write the rows as CSV (sigma in ln units, bias in dex)."""
    path = Path(path)
    keys = list(rows[0].keys()) if rows else ["observable"]
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r[k]) for k in keys})
    return path


def _running_median(x: np.ndarray, y: np.ndarray, bins: int = 12) -> tuple[np.ndarray, np.ndarray]:
    edges = np.quantile(x, np.linspace(0, 1, bins + 1))
    centres, med = [], []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        sel = (x >= a) & (x <= b)
        if sel.sum() >= 3:
            centres.append(np.median(x[sel]))
            med.append(np.median(y[sel]))
    return np.array(centres), np.array(med)


def benchmark_figure(
    true: np.ndarray,
    predictions: Mapping[str, np.ndarray],
    redshift: np.ndarray,
    path: str | Path,
) -> Path:
    """PNG: predicted vs true log10 M, and residuals vs true mass and vs redshift, per model."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    path = Path(path)
    n = max(len(predictions), 1)
    fig, axes = plt.subplots(n, 3, figsize=(13, 3.6 * n), squeeze=False)
    true = np.asarray(true, dtype=np.float64)
    lo, hi = float(np.nanmin(true)) - 0.1, float(np.nanmax(true)) + 0.1
    for row, (label, pred) in zip(axes, predictions.items(), strict=False):
        pred = np.asarray(pred, dtype=np.float64)
        ok = np.isfinite(pred)
        t, p, z = true[ok], pred[ok], np.asarray(redshift)[ok]
        d = p - t
        sig = np.std(d) * math.log(10) if d.size else float("nan")
        row[0].scatter(t, p, s=3, alpha=0.4)
        row[0].plot([lo, hi], [lo, hi], "k--", lw=1)
        row[0].set(
            xlim=(lo, hi),
            ylim=(lo, hi),
            xlabel=r"true $\log_{10} M_{500c}$ [$h^{-1} M_\odot$]",
            ylabel="predicted",
            title=f"{label}: $\\sigma_{{\\ln M}}$ = {100 * sig:.1f}%, bias {format_number(float(np.mean(d)) if d.size else None, signed=True)} dex",
        )
        for ax, x, xl in ((row[1], t, r"true $\log_{10} M_{500c}$"), (row[2], z, "redshift")):
            ax.scatter(x, d, s=3, alpha=0.4)
            if d.size >= 10:
                cx, my = _running_median(x, d)
                ax.plot(cx, my, "r-", lw=2, label="running median")
                ax.legend(loc="upper right", fontsize=8)
            ax.axhline(0, color="k", lw=1, ls="--")
            ax.set(xlabel=xl, ylabel=r"$\Delta \log_{10} M$ [dex]")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


#: Observed (not idealised) scalar proxies of the paper's table: what the CNNs must beat.
OBSERVED_PROXIES = (
    "N_gal",
    "sigma_v (observed, with interlopers)",
    "N_phot",
    "N_phot within R500c",
    "N_gal + N_phot,500c",
    "all four observed scalars",
    "N_phot, background subtracted",
    "N_phot within R500c, background subtracted",
    "N_gal + N_phot,500c, background subtracted",
)


def cnn_vs_observed(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Pick the best CNN row and the best observed scalar proxy of a table (lowest sigma_lnM).

    Returns ``{"cnn": row, "proxy": row, "difference": cnn - proxy (ln units)}``, or None when
    the table has no CNN row or no observed proxy row with a finite scatter.
    """

    def finite(r: Mapping[str, Any]) -> bool:
        v = r.get("sigma_lnM")
        return v is not None and math.isfinite(float(v))

    cnns = [r for r in rows if r.get("kind") == "cnn" and finite(r)]
    observed = [r for r in rows if r.get("observable") in OBSERVED_PROXIES and finite(r)]
    if not cnns or not observed:
        return None
    cnn = min(cnns, key=lambda r: float(r["sigma_lnM"]))
    proxy = min(observed, key=lambda r: float(r["sigma_lnM"]))
    return {"cnn": cnn, "proxy": proxy, "difference": float(cnn["sigma_lnM"] - proxy["sigma_lnM"])}


def shape_checks(rows: Sequence[Mapping[str, Any]], bias_limit: float = 0.005) -> list[dict]:
    """Check the qualitative claims of Ho et al. (2023) on a table.

    Claims: each CNN beats every observed scalar proxy and L_X; multiband <= single band;
    multimodal <= multiband; |bias| < ``bias_limit`` dex for each CNN. Each entry is
    ``{"claim", "holds" (bool or None when a row is missing), "detail"}``.
    """
    by = {r["observable"]: r for r in rows}
    cnns = [c for c in ("Single-band CNN", "Multiband CNN", "Multimodal CNN") if c in by]
    out: list[dict] = []
    rivals = [p for p in (*OBSERVED_PROXIES, "L_X") if p in by]
    for c in cnns:
        worse = [p for p in rivals if by[p]["sigma_lnM"] <= by[c]["sigma_lnM"]]
        out.append(
            {
                "claim": f"{c} beats every observed scalar proxy and L_X",
                "holds": not worse if rivals else None,
                "detail": f"{c} {_pct(by[c]['sigma_lnM'])}%; not beaten: {worse or 'none'}",
            }
        )
        bias = by[c]["bias_dex"]
        out.append(
            {
                "claim": f"|bias| of {c} < {bias_limit} dex",
                "holds": abs(bias) < bias_limit,
                "detail": f"bias {bias:+.4f} dex",
            }
        )
    for a, b in (("Multiband CNN", "Single-band CNN"), ("Multimodal CNN", "Multiband CNN")):
        holds = None if a not in by or b not in by else by[a]["sigma_lnM"] <= by[b]["sigma_lnM"]
        detail = (
            "row missing"
            if holds is None
            else f"{_pct(by[a]['sigma_lnM'])}% vs {_pct(by[b]['sigma_lnM'])}%"
        )
        out.append({"claim": f"{a} <= {b}", "holds": holds, "detail": detail})
    return out
