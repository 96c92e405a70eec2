"""Diagnostic figures of a mock catalogue (used for docs/mocks.md).

Run ``python -m mocks.plots OUT_DIR [--n 3300 --seed 1]`` to regenerate the documentation
figures; matplotlib is imported lazily so the rest of the package does not need it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from astropy.cosmology import FLRW

from mocks import MockConfig, generate
from mocks.catalogue import MockCatalogue
from mocks.validation import PAPER_TABLE, scatter_table

__all__ = ["plot_maps", "plot_lx_m", "plot_sigmav_m", "plot_scatter_table", "main"]


def _plt():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _v(col: object) -> np.ndarray:
    return np.asarray(getattr(col, "value", col), dtype=float)


def plot_maps(cat: MockCatalogue, row: int, path: Path) -> None:
    """TOTAL / AGN / ICM counts of one cluster in each band (log10(N + 1)), plus its galaxies."""
    plt = _plt()
    t = cat.truth
    bands = cat.config.xray.bands_kev
    fig, axes = plt.subplots(3, len(bands) + 1, figsize=(2.3 * (len(bands) + 1), 7.0))
    vmax = np.log10(cat.counts_total[row].max() + 1)
    for r, (name, arr) in enumerate(
        (("TOTAL", cat.counts_total), ("AGN", cat.counts_agn), ("ICM", cat.counts_icm))
    ):
        for b, (lo, hi) in enumerate(bands):
            ax = axes[r, b]
            ax.imshow(np.log10(arr[row, b] + 1), origin="lower", vmin=0, vmax=vmax, cmap="magma")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"{lo:g}-{hi:g} keV", fontsize=9)
            if b == 0:
                ax.set_ylabel(name, fontsize=9)
    g = cat.galaxies_of(row)
    ax = axes[0, -1]
    ax.scatter(g["x_mpc_h"][~g["is_member"]], g["y_mpc_h"][~g["is_member"]], s=3, c="0.6")
    ax.scatter(g["x_mpc_h"][g["is_member"]], g["y_mpc_h"][g["is_member"]], s=3, c="C3")
    ax.set_xlim(-2.3, 2.3)
    ax.set_ylim(-2.3, 2.3)
    ax.set_title("galaxies (red: members)", fontsize=8)
    ax.set_aspect("equal")
    ax.tick_params(labelsize=7)
    ax = axes[1, -1]
    ax.hist(g["v_los_km_s"][g["is_member"]], bins=30, range=(-3785, 3785), color="C3")
    ax.hist(g["v_los_km_s"][~g["is_member"]], bins=30, range=(-3785, 3785), color="0.6", alpha=0.7)
    ax.set_xlabel("v_los [km/s]", fontsize=8)
    ax.tick_params(labelsize=7)
    axes[2, -1].axis("off")
    axes[2, -1].text(
        0.0,
        0.5,
        f"log10 M500c = {t['log10_m500c'][row]:.2f}\nz = {t['redshift'][row]:.3f}\n"
        f"kT = {_v(t['T'])[row]:.2f} keV\ncool core: {bool(t['cool_core'][row])}\n"
        f"merger: {bool(t['merger'][row])}\nICM counts: {int(t['N_phot_icm'][row])}\n"
        f"AGN counts: {int(t['N_phot_agn'][row])}\nall counts: {int(t['N_phot'][row])}",
        fontsize=8,
        va="center",
    )
    fig.suptitle(f"{t['cluster_id'][row]}: 128 x 128 pixels over +-2.3 h^-1 Mpc", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)


def plot_lx_m(cat: MockCatalogue, cosmo: FLRW, path: Path) -> None:
    """L_X and core-excised L_X against M500c (E(z)^-2 scaled), cool cores marked."""
    plt = _plt()
    from matplotlib.ticker import NullFormatter

    t = cat.truth
    ez = cosmo.efunc(_v(t["redshift"]))
    m = _v(t["m500c"])
    cc = np.asarray(t["cool_core"])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), sharey=True)
    x = np.geomspace(m.min(), m.max(), 50)
    model = 0.514e44 * (x / cosmo.h / 2e14) ** 1.62
    for ax, col, title in (
        (axes[0], "L_X", "L_X (R < R500c)"),
        (axes[1], "L_X_ce", "0.15-1 R500c"),
    ):
        y = _v(t[col]) / ez**2
        ax.scatter(m[~cc], y[~cc], s=2, c="C0", alpha=0.5, label="non-cool core")
        ax.scatter(m[cc], y[cc], s=2, c="C3", alpha=0.5, label="cool core")
        ax.plot(x, model, "k-", lw=1, label="Pratt+09 (MB) input")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("M500c [h^-1 Msun]")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(title, fontsize=10)
    axes[0].set_ylabel("E(z)^-2 L[0.5-2 keV] [erg/s]")
    axes[0].legend(fontsize=7, markerscale=4)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_sigmav_m(cat: MockCatalogue, cosmo: FLRW, path: Path) -> None:
    """Member and cylinder velocity dispersions against E(z) M200c with Evrard+08."""
    plt = _plt()
    from matplotlib.ticker import NullFormatter

    t = cat.truth
    x = cosmo.efunc(_v(t["redshift"])) * _v(t["m200c"])
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.scatter(x, _v(t["sigma_v_obs"]), s=2, c="0.6", alpha=0.5, label="observed (cylinder)")
    ax.scatter(x, _v(t["sigma_v_true"]), s=2, c="C0", alpha=0.5, label="members (3D)")
    xx = np.geomspace(x.min(), x.max(), 50)
    ax.plot(xx, 1082.9 * (xx / 1e15) ** 0.3361, "k-", lw=1, label="Evrard+08 sigma_DM")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("E(z) M200c [h^-1 Msun]")
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylabel("sigma_v [km/s]")
    ax.legend(fontsize=7, markerscale=4)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_scatter_table(table: dict, path: Path) -> None:
    """Bar chart of sigma_lnM per proxy: this mock vs Ho et al. (2023)."""
    plt = _plt()
    labels = [k for k in PAPER_TABLE if k in table]
    ours = [100 * table[k].sigma for k in labels]
    paper = [100 * PAPER_TABLE[k] for k in labels]
    y = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.barh(y - 0.2, paper, 0.4, label="Ho+23 (Magneticum)", color="0.6")
    ax.barh(y + 0.2, np.minimum(ours, 100), 0.4, label="this mock", color="C0")
    for yi, v in zip(y, ours, strict=True):
        if v > 100:
            ax.text(101, yi + 0.2, f"{v:.0f}%", va="center", fontsize=7)
    ax.set_yticks(y, [k.replace("+", " + ") for k in labels], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 115)
    ax.set_xlabel("sigma_lnM [%]")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    """Generate a catalogue and write the documentation figures into OUT_DIR."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--n", type=int, default=3300)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    cat = generate(MockConfig(n_clusters=args.n, seed=args.seed))
    t = cat.truth
    lg = np.asarray(t["log10_m500c"])
    z = np.asarray(t["redshift"])
    massive = int(np.argmax(np.where(z < 0.2, lg, 0)))
    group = int(np.argmin(np.abs(lg - 13.8) + 10 * (np.abs(z - 0.2688) > 0.01)))
    plot_maps(cat, massive, args.out_dir / "mock_maps_massive.png")
    plot_maps(cat, group, args.out_dir / "mock_maps_group.png")
    plot_lx_m(cat, cat.cosmology, args.out_dir / "mock_lx_m.png")
    plot_sigmav_m(cat, cat.cosmology, args.out_dir / "mock_sigmav_m.png")
    table = scatter_table(t)
    plot_scatter_table(table, args.out_dir / "mock_proxy_scatter.png")
    for k, v in table.items():
        print(f"{k:40s} {100 * v.sigma:7.2f}%  dropped {v.n_dropped}")


if __name__ == "__main__":
    main()
