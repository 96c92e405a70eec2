"""PNG figures of a population attribution (matplotlib, Agg backend, no display needed).

Every function reads the arrays of :meth:`~.population.PopulationAttribution.to_arrays` (so a
stored npz product can be re-plotted) and writes one PNG. Maps are drawn with ``imshow(m.T,
origin="lower")``: sky x to the right, sky y up, for counts, masks and attributions alike (one
orientation for everything: flaw 3 in ``science.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

from models.attribution.errors import AttributionError  # noqa: E402
from models.attribution.stats import LogGrid  # noqa: E402

__all__ = [
    "plot_examples",
    "plot_stacked_profile",
    "plot_agn_icm",
    "plot_band_fractions",
    "write_figures",
    "PAPER_R_CORE",
]

#: The authors' core radius (R500c); see docs/attribution.md for why it is the 10th bin centre.
PAPER_R_CORE = 0.285


def _centres(edges: np.ndarray) -> np.ndarray:
    return 0.5 * (edges[1:] + edges[:-1])


def _grid(arr: np.ndarray) -> LogGrid:
    lo, hi, n = (float(v) for v in arr)
    return LogGrid(lo, hi, int(n))


def _show(ax, image: np.ndarray, **kw):
    h, w = image.shape
    ext = (-w / 2, w / 2, -h / 2, h / 2)  # pixels from the centre; x index horizontal
    return ax.imshow(image.T, origin="lower", extent=ext, interpolation="none", **kw)


def _circle(ax, radius: float, **kw) -> None:
    ax.add_patch(plt.Circle((0.0, 0.0), radius, fill=False, **kw))


def plot_examples(
    counts: np.ndarray,
    maps: np.ndarray,
    r500c_pix: np.ndarray,
    path: str | Path,
    *,
    r_core: float | None = None,
    titles: list[str] | None = None,
) -> Path:
    """Rows of [count map | attribution with count contours], R500c (and r_core) circles.

    Parameters
    ----------
    counts : ndarray, shape (K, H, W)
        Band-summed photon counts of K clusters.
    maps : ndarray, shape (K, H, W)
        Their channel-summed ``|attribution|`` maps (same orientation).
    r500c_pix : ndarray, shape (K,)
        R500c in pixels.
    path : path
        Output PNG.
    r_core : float, optional
        Core radius in R500c (dashed circle).
    titles : list of str, optional
        Row labels.
    """
    counts, maps = np.asarray(counts), np.abs(np.asarray(maps))
    if counts.shape != maps.shape or counts.ndim != 3:
        raise AttributionError(f"counts {counts.shape} and maps {maps.shape} must be (K, H, W)")
    k = counts.shape[0]
    fig, axes = plt.subplots(k, 2, figsize=(6.4, 3.0 * k), squeeze=False)
    for i in range(k):
        a0, a1 = axes[i]
        im0 = _show(a0, counts[i] + 1.0, norm=LogNorm(vmin=1.0), cmap="magma")
        vmax = float(np.percentile(maps[i], 99.5)) or None
        im1 = _show(a1, maps[i], cmap="viridis", vmin=0.0, vmax=vmax)
        h, w = counts[i].shape
        positive = counts[i][counts[i] > 0]
        levels = np.unique(np.percentile(positive, [50, 90, 99])) if positive.size else []
        if len(levels) > 1:
            a1.contour(
                np.arange(h) + 0.5 - h / 2, np.arange(w) + 0.5 - w / 2, counts[i].T,
                levels=levels, colors="white", linewidths=0.6,
            )  # fmt: skip
        for ax in (a0, a1):
            _circle(ax, float(r500c_pix[i]), color="red", lw=1.0)
            if r_core is not None and np.isfinite(r_core):
                _circle(ax, float(r_core * r500c_pix[i]), color="red", lw=0.8, ls="--")
        fig.colorbar(im0, ax=a0, label="counts + 1")
        fig.colorbar(im1, ax=a1, label="|attribution|")
        a0.set_ylabel(titles[i] if titles else f"cluster {i}")
    axes[0, 0].set_title("photon counts")
    axes[0, 1].set_title("attribution (contours: counts)")
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_stacked_profile(
    arrays: Mapping[str, np.ndarray], summary: Mapping[str, Any], path: str | Path
) -> Path:
    """Stacked normalised profiles (top) and the pooled proxy / CNN ratio (bottom) vs r/R500c.

    Vertical lines: R500c, the paper's 0.285 R500c and the measured core radius.
    """
    x = _centres(np.asarray(arrays["radial_edges"]))
    fig, (top, bot) = plt.subplots(2, 1, figsize=(6.0, 7.0), sharex=True)
    for key, label, colour in (
        ("stack_profile_fraction", f"CNN ({arrays['method']})", "C0"),
        ("stack_profile_proxy_fraction", r"$N_\mathrm{phot}$ proxy", "C3"),
    ):
        st = np.asarray(arrays[key])
        ok = np.isfinite(st[0]) & (st[0] > 0)
        top.plot(x[ok], st[0][ok], color=colour, label=f"{label} (median)")
        top.fill_between(x[ok], st[1][ok], st[2][ok], color=colour, alpha=0.2, lw=0)
    top.set_yscale("log")
    top.set_ylabel("normalised weight per element")
    top.legend(fontsize=8)
    thr = float(summary.get("core_threshold", 10.0))
    for key, label, colour in (
        ("pooled_ratio", r"$d\ln M/d\ln(N+1)$ ratio", "k"),
        ("pooled_ratio_paper", "paper convention", "0.5"),
    ):
        if key in arrays:
            q = np.asarray(arrays[key])
            ok = np.isfinite(q) & (q > 0)
            bot.plot(x[ok], q[ok], color=colour, label=label)
    bot.axhline(thr, color="C2", ls=":", label=f"ratio = {thr:g}")
    bot.set_yscale("log")
    bot.set_ylabel("median proxy / CNN weight")
    for ax in (top, bot):
        ax.axvline(1.0, color="k", ls="--", lw=0.8)
        ax.axvline(PAPER_R_CORE, color="C1", ls="--", lw=0.8)
        r = summary.get("r_core_over_r500c")
        if r is not None:
            ax.axvline(float(r), color="C2", ls="-", lw=0.8)
    bot.set_xlabel(r"$r / R_\mathrm{500c}$ (dashed: 1 and paper 0.285; green: measured)")
    bot.legend(fontsize=8)
    bot.set_xlim(0, float(np.asarray(arrays["radial_edges"])[-1]))
    fig.tight_layout()
    return _save(fig, path)


def _hist_density(
    hist: np.ndarray, grid: LogGrid, width: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """Density of the inner bins, merged to about ``width`` dex for display."""
    f = max(1, round(width / grid.width))
    inner = np.asarray(hist, dtype=np.float64)[1:-1]
    n = inner.size // f
    inner = inner[: n * f].reshape(n, f).sum(axis=1)
    w = grid.width * f
    centres = grid.lo + (np.arange(n) + 0.5) * w
    total = inner.sum()
    return centres, inner / (total * w) if total > 0 else inner


def plot_agn_icm(
    arrays: Mapping[str, np.ndarray], summary: Mapping[str, Any], path: str | Path
) -> Path:
    """Pooled distributions of log10 |attribution| in AGN and ICM elements, medians marked."""
    grid = _grid(arrays["saliency_grid"])
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    paper = summary.get("paper") or {}
    for key, colour in (("agn", "C3"), ("icm", "C0")):
        c, d = _hist_density(arrays[f"pooled_{key}_hist"], grid)
        ax.step(c, d, where="mid", color=colour, label=key.upper())
        med = summary.get(f"median_saliency_{key}")
        if med:
            ax.axvline(np.log10(med), color=colour, ls="--", lw=0.8)
        if f"median_saliency_{key}" in paper:
            ax.axvline(np.log10(paper[f"median_saliency_{key}"]), color=colour, ls=":", lw=0.8)
    ax.set_xlabel(r"$\log_{10}$ |attribution| (dashed: medians; dotted: paper)")
    ax.set_ylabel("density")
    both = np.asarray(arrays["pooled_agn_hist"]) + np.asarray(arrays["pooled_icm_hist"])
    c, d = _hist_density(both, grid)
    pos = np.flatnonzero(d > 1e-3 * d.max()) if d.size and d.max() > 0 else []
    if len(pos):
        ax.set_xlim(c[pos[0]] - 0.5, c[pos[-1]] + 0.5)
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def plot_band_fractions(
    arrays: Mapping[str, np.ndarray], summary: Mapping[str, Any], path: str | Path
) -> Path:
    """Mean share of the total |attribution| per energy band, with bootstrap intervals."""
    n = np.asarray(arrays["band_fractions"]).shape[1]
    labels = ["0.5-1.2 keV", "1.2-2.0 keV", "2.0-7.0 keV"] if n == 3 else [str(i) for i in range(n)]
    v = np.array([summary.get(f"band_fraction_{c}") or np.nan for c in range(n)], dtype=float)
    lo = np.array([summary.get(f"band_fraction_{c}_lo") or np.nan for c in range(n)], dtype=float)
    hi = np.array([summary.get(f"band_fraction_{c}_hi") or np.nan for c in range(n)], dtype=float)
    fig, ax = plt.subplots(figsize=(5.0, 3.5))
    ax.bar(labels, v, yerr=np.abs(np.stack([v - lo, hi - v])), color="C0", capsize=4)
    ax.axhline(1.0 / n, color="k", ls=":", lw=0.8, label="equal share")
    ax.set_ylabel("fraction of total |attribution|")
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def write_figures(
    arrays: Mapping[str, np.ndarray],
    summary: Mapping[str, Any],
    counts: np.ndarray | None,
    out_dir: str | Path,
    *,
    n_examples: int = 4,
) -> dict[str, Path]:
    """Write every figure that the arrays allow into ``out_dir``; return name -> path.

    Parameters
    ----------
    arrays : mapping
        :meth:`~.population.PopulationAttribution.to_arrays` (or the loaded npz).
    summary : mapping
        :attr:`~.population.PopulationAttribution.summary`.
    counts : ndarray, shape (N, B, H, W), optional
        Count maps of the clusters in the product's order (``counts[cluster_index]`` of the
        input arrays); needed for the example panels (skipped when None or without maps).
    out_dir : path
        Folder for the PNGs (created).
    n_examples : int
        Example clusters, spread over the predicted-mass range.
    """
    out = Path(out_dir)
    method = str(arrays["method"])
    paths: dict[str, Path] = {}
    if counts is not None and "maps" in arrays and n_examples > 0:
        m = np.asarray(arrays["log10_m_pred"])
        order = np.argsort(m)
        pick = order[np.linspace(0, len(m) - 1, min(n_examples, len(m))).round().astype(int)]
        c = np.asarray(counts)[pick].sum(axis=1)
        maps = np.abs(np.asarray(arrays["maps"])[pick]).sum(axis=1)
        titles = [f"log M_pred = {m[i]:.2f}" for i in pick]
        r = summary.get("r_core_over_r500c")
        paths["examples"] = plot_examples(
            c, maps, np.asarray(arrays["r500c_pix"])[pick], out / f"{method}_examples.png",
            r_core=r, titles=titles,
        )  # fmt: skip
    paths["profile"] = plot_stacked_profile(arrays, summary, out / f"{method}_profile.png")
    paths["agn_icm"] = plot_agn_icm(arrays, summary, out / f"{method}_agn_icm.png")
    if np.asarray(arrays["band_fractions"]).shape[1] > 1:
        paths["bands"] = plot_band_fractions(arrays, summary, out / f"{method}_bands.png")
    return paths
