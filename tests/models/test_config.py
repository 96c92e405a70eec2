"""The run configuration's defaults are the paper's settings."""

from __future__ import annotations

import pytest

from models.config import RunConfig

# Ho et al. (2023), arXiv:2303.00005 v2, Sect. 3, and the authors' notebook
# (McWilliamsCenter/halo_cnn, notebooks/run-multi-final.ipynb), as summarised in the project
# brief shared/science.md ("Networks ...", "Preprocessing details", "Image preprocessing").
PAPER_COMMON = {
    "training.learning_rate": 1e-3,  # Adam lr 1e-3
    "training.patience": 20,  # early stopping on val_loss, patience 20
    "training.val_fraction": 0.1,  # validation = random 10% of the training folds
    "training.l2": 1e-4,  # L2(1e-4) on kernels
    "data.reference_counts": 4000.0,  # maps rescaled to 10**(log10 4000 - (a z + b))
    "data.kde.n_grid": 64,  # 64^3 KDE grid
    "data.kde.half_width_mpc_h": 2.3,  # +-2.3 h^-1 Mpc
    "data.kde.half_width_km_s": 3785.0,  # +-3785 km/s
    "data.kde.bw_method": 0.15,  # scipy.stats.gaussian_kde(bw_method=0.15)
    "cv.scheme": "octants",  # 2 x 2 x 2 octants of the box -> 8 spatial folds
    "cv.box_size": 352.0,  # Magneticum Box2/hr, 352 h^-1 Mpc
    "ensemble": 1,  # one network per fold
}
PAPER_PER_KIND = {
    # kind: (loss, batch size, max epochs, dropout after the hidden dense layers)
    "single": ("mse", 50, 200, 0.0),
    "multi": ("mae", 50, 200, 0.1),
    "multimodal": ("mse", 100, 400, 0.1),
}


def _get(cfg: RunConfig, dotted: str):
    value = cfg
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


@pytest.mark.parametrize("kind", sorted(PAPER_PER_KIND))
def test_defaults_are_the_papers_settings(kind: str) -> None:
    cfg = RunConfig.from_config(model={"kind": kind})
    actual = {key: _get(cfg, key) for key in PAPER_COMMON}
    assert actual == PAPER_COMMON
    loss, batch, epochs, dropout = PAPER_PER_KIND[kind]
    t = cfg.training
    assert (t.loss, t.batch_size, t.max_epochs) == (loss, batch, epochs)
    assert cfg.build_network().dropout == dropout
