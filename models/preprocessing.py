"""Input and target transforms of Ho et al. (2023), fitted on the training fold only.

Images (Sect. 2.2 of arXiv:2303.00005 and the authors' notebook):

1. Redshift normalisation of counts: an OLS fit ``log10 N_phot = a z + b`` of the total counts
   (all bands, AGN+ICM maps) over the *training* clusters; every map is multiplied by
   ``10 ** (log10(4000) - (a z + b))`` so the z trend of the counts is removed.
2. ``log10(N + 1)``.
3. Standardisation with one mean and standard deviation over all pixels and bands of the
   training clusters (the authors used all clusters, test folds included: flaw 5 in
   ``science.md``; here test clusters never enter any statistic).

The target log10 M500c is scaled linearly to [-1, 1] with the training minimum and maximum.
KDE cubes (multimodal) are standardised with their own training mean and standard deviation.
All statistics are stored in :class:`Preprocessing`, saved with each fold as JSON and applied
unchanged at inference.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from models.data import ClusterArrays
from models.errors import CheckpointError, DataError

__all__ = ["Preprocessing", "fit_preprocessing", "select_bands", "BandMode"]

BandMode = Literal["single", "multi"]

_CHUNK = 256  # clusters per chunk when streaming statistics (bounds memory)


def select_bands(images: np.ndarray | torch.Tensor, bands: BandMode) -> np.ndarray | torch.Tensor:
    """Sum the energy bands for ``"single"`` (keeping a channel axis) or keep them for ``"multi"``."""
    if bands == "single":
        return (
            images.sum(axis=1, keepdims=True)
            if isinstance(images, np.ndarray)
            else (images.sum(dim=1, keepdim=True))
        )
    if bands == "multi":
        return images
    raise DataError(f"bands must be 'single' or 'multi'; got {bands!r}")


@dataclass(frozen=True)
class Preprocessing:
    """Training-fold statistics that turn counts into network inputs and back.

    Attributes
    ----------
    bands : {"single", "multi"}
        Sum the bands into one channel, or keep them.
    z_slope, z_intercept : float
        OLS fit ``log10 N_phot = z_slope * z + z_intercept`` over the training clusters.
    reference_counts : float
        Counts every map is rescaled to at its redshift (paper: 4000).
    image_mean, image_std : float
        Mean and standard deviation of ``log10(N_rescaled + 1)`` over training pixels and bands.
    target_min, target_max : float
        Training range of log10(M500c / (h^-1 Msun)), mapped to [-1, 1].
    kde_mean, kde_std : float or None
        Standardisation of the KDE cubes (multimodal only).
    """

    bands: BandMode
    z_slope: float
    z_intercept: float
    reference_counts: float
    image_mean: float
    image_std: float
    target_min: float
    target_max: float
    kde_mean: float | None = None
    kde_std: float | None = None

    # ---- images -------------------------------------------------------------------------
    def count_scale(self, redshift: np.ndarray) -> np.ndarray:
        """Multiplicative count rescaling ``10**(log10(ref) - (a z + b))`` per cluster."""
        z = np.asarray(redshift, dtype=np.float64)
        return 10.0 ** (math.log10(self.reference_counts) - (self.z_slope * z + self.z_intercept))

    def transform_images(
        self, counts: np.ndarray | torch.Tensor, redshift: np.ndarray
    ) -> torch.Tensor:
        """Turn counts (N, C, H, W) into standardised ``log10(N_rescaled + 1)`` as float32 tensor.

        ``counts`` carries all bands; :attr:`bands` decides whether they are summed.
        """
        x = torch.as_tensor(np.asarray(counts) if not torch.is_tensor(counts) else counts)
        x = select_bands(x.to(torch.float32), self.bands)
        scale = torch.as_tensor(self.count_scale(redshift), dtype=torch.float32, device=x.device)
        x = torch.log10(x * scale.view(-1, 1, 1, 1) + 1.0)
        return (x - self.image_mean) / self.image_std

    def transform_kde(self, cubes: np.ndarray | torch.Tensor) -> torch.Tensor:
        """KDE cubes (N, D, D, D) -> standardised (N, 1, D, D, D) float32 tensor."""
        if self.kde_mean is None or self.kde_std is None:
            raise DataError("this Preprocessing was fitted without KDE cubes (kde_mean is None)")
        x = torch.as_tensor(cubes, dtype=torch.float32)
        return ((x - self.kde_mean) / self.kde_std).unsqueeze(1)

    # ---- target -------------------------------------------------------------------------
    def scale_target(self, log10_m: np.ndarray) -> np.ndarray:
        """log10 M500c -> [-1, 1] with the training range."""
        span = self.target_max - self.target_min
        return 2.0 * (np.asarray(log10_m, dtype=np.float64) - self.target_min) / span - 1.0

    def unscale_target(self, y: np.ndarray) -> np.ndarray:
        """Network output in [-1, 1] units -> log10 M500c [h^-1 Msun]."""
        span = self.target_max - self.target_min
        return (np.asarray(y, dtype=np.float64) + 1.0) * 0.5 * span + self.target_min

    @property
    def target_half_span(self) -> float:
        """Half the training range of log10 M (dex per unit of scaled target)."""
        return 0.5 * (self.target_max - self.target_min)

    # ---- persistence --------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain-JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Preprocessing:
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(**d)
        except TypeError as exc:
            raise CheckpointError(f"bad preprocessing record: {exc}") from exc

    def save(self, path: str | Path) -> Path:
        """Write JSON to ``path``."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Preprocessing:
        """Read what :meth:`save` wrote."""
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"preprocessing file {path} does not exist")
        return cls.from_dict(json.loads(path.read_text()))


def fit_preprocessing(
    arrays: ClusterArrays,
    train_index: np.ndarray,
    *,
    bands: BandMode,
    reference_counts: float = 4000.0,
    with_kde: bool = False,
) -> Preprocessing:
    """Fit every statistic on the clusters ``train_index`` only.

    Parameters
    ----------
    arrays : ClusterArrays
        All clusters (only ``train_index`` rows are read).
    train_index : ndarray of int
        Training clusters (the validation split may be included: it is part of the training
        folds, as in the paper).
    bands : {"single", "multi"}
        Channel mode of the network.
    reference_counts : float
        Target counts of the redshift normalisation (paper: 4000).
    with_kde : bool
        Also standardise ``arrays.kde_cubes``.
    """
    idx = np.asarray(train_index, dtype=np.int64)
    if idx.size < 2:
        raise DataError(f"need at least 2 training clusters to fit preprocessing; got {idx.size}")
    y = arrays.require_labels()[idx]
    n_phot = np.asarray(arrays.images[idx].reshape(idx.size, -1).sum(axis=1), dtype=np.float64)
    z = arrays.redshift[idx]
    logn = np.log10(np.maximum(n_phot, 1.0))
    if np.ptp(z) > 0:
        slope, intercept = np.polyfit(z, logn, 1)
    else:  # one redshift: nothing to remove but the mean level
        slope, intercept = 0.0, float(logn.mean())
    pre = Preprocessing(
        bands=bands,
        z_slope=float(slope),
        z_intercept=float(intercept),
        reference_counts=float(reference_counts),
        image_mean=0.0,
        image_std=1.0,
        target_min=float(y.min()),
        target_max=float(y.max()),
    )
    if pre.target_max <= pre.target_min:
        raise DataError("training log10_m500c has zero range: cannot scale the target")
    # Streaming mean/variance of log10(N_rescaled + 1) (float64 accumulators).
    s1 = s2 = 0.0
    count = 0
    for a in range(0, idx.size, _CHUNK):
        part = idx[a : a + _CHUNK]
        x = pre.transform_images(arrays.images[part], arrays.redshift[part]).double()
        s1 += float(x.sum())
        s2 += float((x * x).sum())
        count += x.numel()
    mean = s1 / count
    std = math.sqrt(max(s2 / count - mean * mean, 0.0))
    if not std > 0:
        raise DataError("training images are constant after log10(N + 1): cannot standardise")
    kde_mean = kde_std = None
    if with_kde:
        if arrays.kde_cubes is None:
            raise DataError("with_kde=True but arrays.kde_cubes is None (see models.kde)")
        k1 = k2 = 0.0
        kn = 0
        for a in range(0, idx.size, _CHUNK):
            c = torch.as_tensor(arrays.kde_cubes[idx[a : a + _CHUNK]]).double()
            k1, k2, kn = k1 + float(c.sum()), k2 + float((c * c).sum()), kn + c.numel()
        kde_mean = k1 / kn
        kde_std = math.sqrt(max(k2 / kn - kde_mean * kde_mean, 0.0))
        if not kde_std > 0:
            raise DataError("training KDE cubes are constant: cannot standardise")
    return Preprocessing(
        bands=bands,
        z_slope=float(slope),
        z_intercept=float(intercept),
        reference_counts=float(reference_counts),
        image_mean=mean,
        image_std=std,
        target_min=pre.target_min,
        target_max=pre.target_max,
        kde_mean=kde_mean,
        kde_std=kde_std,
    )
