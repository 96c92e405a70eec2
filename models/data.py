"""Plain-array containers for what the mass networks consume.

Everything downstream (preprocessing, training, prediction, baselines) takes a
:class:`ClusterArrays`, never a mock-catalogue object or a database row, so mocks and observed
data go through the same code. Conversion from astropy tables happens once, here.

Conventions (fixed, documented units):

- ``images[n, c, j, i]``: photon counts of cluster ``n`` in energy band ``c``; rows ``j`` run
  along the sky y axis and columns ``i`` along the sky x axis (FITS / mock-map order), pixels
  spanning +-2.3 h^-1 Mpc comoving around the cluster centre (Ho et al. 2023, Sect. 2.2).
- ``log10_m500c``: log10(M500c / (h^-1 Msun)).
- ``positions``: comoving box coordinates in h^-1 Mpc (used only for spatial folds).
- galaxies: projected offsets ``x, y`` in h^-1 Mpc comoving and line-of-sight velocity ``v`` in
  km/s, for all galaxies in the cylinder (members and interlopers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import DataError

__all__ = ["RaggedGalaxies", "ClusterArrays", "column_values"]


@dataclass(frozen=True)
class RaggedGalaxies:
    """Galaxies of many clusters in flat arrays with CSR-style offsets.

    Galaxies of cluster ``n`` are ``x[offsets[n]:offsets[n + 1]]`` (same for ``y`` and ``v``).

    Parameters
    ----------
    offsets : ndarray of int64, shape (N + 1,)
        Start index of each cluster's galaxies; ``offsets[-1] == len(x)``.
    x, y : ndarray of float, shape (G,)
        Projected offsets from the cluster centre, in h^-1 Mpc comoving.
    v : ndarray of float, shape (G,)
        Line-of-sight velocity relative to the cluster, in km/s.
    """

    offsets: np.ndarray
    x: np.ndarray
    y: np.ndarray
    v: np.ndarray

    def __post_init__(self) -> None:
        off = np.asarray(self.offsets)
        if off.ndim != 1 or off.size < 1 or off[0] != 0 or np.any(np.diff(off) < 0):
            raise DataError("galaxies.offsets must start at 0 and be non-decreasing")
        n = int(off[-1])
        for name in ("x", "y", "v"):
            if np.asarray(getattr(self, name)).shape != (n,):
                raise DataError(f"galaxies.{name} must have shape ({n},) to match offsets[-1]")

    @property
    def n_clusters(self) -> int:
        """Number of clusters."""
        return int(len(self.offsets) - 1)

    def counts(self) -> np.ndarray:
        """Return the number of galaxies per cluster, shape (N,)."""
        return np.diff(self.offsets)

    def cluster(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return ``(x, y, v)`` of cluster ``n`` (h^-1 Mpc, h^-1 Mpc, km/s)."""
        a, b = int(self.offsets[n]), int(self.offsets[n + 1])
        return self.x[a:b], self.y[a:b], self.v[a:b]

    def subset(self, index: np.ndarray) -> RaggedGalaxies:
        """Galaxies of the clusters ``index`` (in that order)."""
        index = np.asarray(index, dtype=np.int64)
        starts, ends = self.offsets[index], self.offsets[index + 1]
        lengths = ends - starts
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        take = (
            np.concatenate([np.arange(a, b) for a, b in zip(starts, ends, strict=True)])
            if index.size
            else np.zeros(0, dtype=np.int64)
        ).astype(np.int64)
        return RaggedGalaxies(offsets, self.x[take], self.y[take], self.v[take])

    @classmethod
    def from_structured(
        cls,
        galaxies: np.ndarray | Mapping[str, Any],
        n_clusters: int,
        *,
        members_only: bool = False,
    ) -> RaggedGalaxies:
        """Build from a table/structured array with one row per galaxy.

        Parameters
        ----------
        galaxies : structured ndarray or table
            Columns ``cluster_index`` (row of the cluster in the truth table), ``x_mpc_h``,
            ``y_mpc_h`` [h^-1 Mpc comoving], ``v_los_km_s`` [km/s] and optionally
            ``is_member``.
        n_clusters : int
            Number of clusters N (clusters without galaxies get an empty slice).
        members_only : bool
            Keep only ``is_member`` galaxies. The paper's multimodal input uses *all*
            galaxies in the cylinder, so the default is False.
        """
        names = _names(galaxies)
        required = ("cluster_index", "x_mpc_h", "y_mpc_h", "v_los_km_s")
        missing = [c for c in required if c not in names]
        if missing:
            raise DataError(f"galaxies table lacks columns {missing}; it has {sorted(names)}")
        idx = np.asarray(column_values(galaxies["cluster_index"]), dtype=np.int64)
        keep = np.ones(idx.shape, bool)
        if members_only:
            if "is_member" not in names:
                raise DataError("members_only=True needs an 'is_member' column in galaxies")
            keep &= np.asarray(column_values(galaxies["is_member"]), dtype=bool)
        if idx.size and (idx.min() < 0 or idx.max() >= n_clusters):
            raise DataError(f"galaxies.cluster_index must lie in [0, {n_clusters})")
        idx = idx[keep]
        order = np.argsort(idx, kind="stable")
        counts = np.bincount(idx, minlength=n_clusters)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

        def col(name: str) -> np.ndarray:
            return np.asarray(column_values(galaxies[name]), dtype=np.float64)[keep][order]

        return cls(offsets, col("x_mpc_h"), col("y_mpc_h"), col("v_los_km_s"))


def _names(table: Any) -> list[str]:
    if hasattr(table, "colnames"):
        return list(table.colnames)
    if getattr(table, "dtype", None) is not None and table.dtype.names:
        return list(table.dtype.names)
    if isinstance(table, Mapping):
        return list(table.keys())
    raise DataError(f"cannot read column names from a {type(table).__name__}")


def column_values(col: Any) -> np.ndarray:
    """Plain ndarray of a table column (astropy Quantity/Column, masked or not)."""
    value = getattr(col, "value", col)
    if np.ma.isMaskedArray(value):
        value = np.ma.filled(value.astype(float), np.nan)
    return np.asarray(value)


@dataclass
class ClusterArrays:
    """Inputs and labels of N clusters as plain arrays.

    Parameters
    ----------
    images : ndarray, shape (N, C, H, W)
        Photon counts per band (C = 3 for [0.5,1.2), [1.2,2.0), [2.0,7.0) keV, or 1).
    redshift : ndarray, shape (N,)
        Cluster redshift.
    log10_m500c : ndarray, shape (N,) or None
        log10(M500c / (h^-1 Msun)); None for observed data without labels.
    positions : ndarray, shape (N, 3) or None
        Comoving box positions [h^-1 Mpc] for spatial folds.
    snapshot : ndarray of int, shape (N,) or None
        Simulation snapshot (for per-snapshot proxy fits and leave-one-snapshot-out folds).
    cluster_id : ndarray, shape (N,) or None
        Identifiers carried through to predictions.
    galaxies : RaggedGalaxies or None
        Galaxies in the cylinder of each cluster (multimodal input).
    kde_cubes : ndarray, shape (N, D, D, D) or None
        Precomputed galaxy densities (:func:`models.kde.kde_cubes`), normalised to sum 1.
    scalars : dict of str to ndarray
        Extra per-cluster columns (scalar proxies, hidden truth) for baselines.
    """

    images: np.ndarray
    redshift: np.ndarray
    log10_m500c: np.ndarray | None = None
    positions: np.ndarray | None = None
    snapshot: np.ndarray | None = None
    cluster_id: np.ndarray | None = None
    galaxies: RaggedGalaxies | None = None
    kde_cubes: np.ndarray | None = None
    scalars: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise DataError(f"images must have shape (N, C, H, W); got {self.images.shape}")
        n = self.images.shape[0]
        self.redshift = np.asarray(self.redshift, dtype=np.float64)
        checks: dict[str, tuple[Any, tuple[int, ...]]] = {
            "redshift": (self.redshift, (n,)),
            "log10_m500c": (self.log10_m500c, (n,)),
            "positions": (self.positions, (n, 3)),
            "snapshot": (self.snapshot, (n,)),
            "cluster_id": (self.cluster_id, (n,)),
        }
        for name, (arr, shape) in checks.items():
            if arr is not None and np.shape(arr) != shape:
                raise DataError(f"{name} must have shape {shape}; got {np.shape(arr)}")
        if self.galaxies is not None and self.galaxies.n_clusters != n:
            raise DataError(f"galaxies cover {self.galaxies.n_clusters} clusters, images {n}")
        if self.kde_cubes is not None and self.kde_cubes.shape[0] != n:
            raise DataError(f"kde_cubes cover {self.kde_cubes.shape[0]} clusters, images {n}")
        for key, arr in self.scalars.items():
            if np.shape(arr) != (n,):
                raise DataError(f"scalars[{key!r}] must have shape ({n},); got {np.shape(arr)}")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def n_bands(self) -> int:
        """Number of energy bands C in ``images``."""
        return int(self.images.shape[1])

    def require_labels(self) -> np.ndarray:
        """Return ``log10_m500c``; raise :class:`DataError` when absent."""
        if self.log10_m500c is None:
            raise DataError("log10_m500c is required for training and metrics but is None")
        return np.asarray(self.log10_m500c, dtype=np.float64)

    def subset(self, index: np.ndarray | Sequence[int]) -> ClusterArrays:
        """Return the clusters ``index`` (copies of the selected rows)."""
        index = np.asarray(index, dtype=np.int64)

        def take(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else np.asarray(a)[index]

        return replace(
            self,
            images=self.images[index],
            redshift=self.redshift[index],
            log10_m500c=take(self.log10_m500c),
            positions=take(self.positions),
            snapshot=take(self.snapshot),
            cluster_id=take(self.cluster_id),
            galaxies=None if self.galaxies is None else self.galaxies.subset(index),
            kde_cubes=take(self.kde_cubes),
            scalars={k: np.asarray(v)[index] for k, v in self.scalars.items()},
        )

    @classmethod
    def from_parts(
        cls,
        truth: Any,
        counts: np.ndarray,
        galaxies: Any | None = None,
        *,
        scalar_columns: Sequence[str] | None = None,
    ) -> ClusterArrays:
        """Build from a truth table, a count-map cube and a galaxy table.

        Parameters
        ----------
        truth : astropy Table/QTable or structured array
            One row per cluster with ``redshift`` and, when present, ``log10_m500c``,
            ``pos_x/pos_y/pos_z`` [h^-1 Mpc comoving], ``snapshot``, ``cluster_id``. Any other
            numeric column (or only ``scalar_columns``) is kept in ``scalars``.
        counts : ndarray, shape (N, C, H, W)
            Count maps (AGN+ICM for training).
        galaxies : structured array or table, optional
            See :meth:`RaggedGalaxies.from_structured`.
        scalar_columns : sequence of str, optional
            Columns of ``truth`` to keep as scalars (default: every 1-D numeric column).
        """
        names = _names(truth)
        if "redshift" not in names:
            raise DataError(f"truth table lacks 'redshift'; it has {sorted(names)}")
        n = len(column_values(truth["redshift"]))

        def opt(name: str, dtype: Any = np.float64) -> np.ndarray | None:
            return np.asarray(column_values(truth[name]), dtype=dtype) if name in names else None

        positions = None
        if all(c in names for c in ("pos_x", "pos_y", "pos_z")):
            positions = np.stack([opt(c) for c in ("pos_x", "pos_y", "pos_z")], axis=1)
        skip = {"redshift", "log10_m500c", "pos_x", "pos_y", "pos_z", "snapshot", "cluster_id"}
        wanted = (
            scalar_columns if scalar_columns is not None else [c for c in names if c not in skip]
        )
        scalars: dict[str, np.ndarray] = {}
        for c in wanted:
            if c not in names:
                raise DataError(f"scalar column {c!r} not in truth table; it has {sorted(names)}")
            v = column_values(truth[c])
            if v.shape == (n,) and (np.issubdtype(v.dtype, np.number) or v.dtype == np.bool_):
                scalars[c] = v.astype(np.float64)
        return cls(
            images=np.asarray(counts),
            redshift=opt("redshift"),
            log10_m500c=opt("log10_m500c"),
            positions=positions,
            snapshot=opt("snapshot", np.int64),
            cluster_id=None if "cluster_id" not in names else column_values(truth["cluster_id"]),
            galaxies=None if galaxies is None else RaggedGalaxies.from_structured(galaxies, n),
            scalars=scalars,
        )

    def save_npz(self, path: str | Path, *, compress: bool = True) -> Path:
        """Write every array to one ``.npz`` (exact round trip with :meth:`load_npz`).

        The count maps are stored in the narrowest unsigned integer type that holds them when
        they are whole non-negative numbers (photon counts compress ~10x that way), else as they
        are. This is how a catalogue travels to a host without the database stack (a GPU
        machine): ``arrays.save_npz(p)`` here, ``ClusterArrays.load_npz(p)`` there.
        ``compress=False`` writes faster (KDE cubes, ~1 MB each, barely compress).
        """
        path = Path(path)
        images = np.asarray(self.images)
        if (
            images.size
            and np.issubdtype(images.dtype, np.number)
            and np.all(images >= 0)
            and np.all(np.mod(images, 1) == 0)
        ):
            top = float(images.max())
            narrow = next(t for t in (np.uint8, np.uint16, np.uint32, np.uint64)
                          if top <= np.iinfo(t).max)  # fmt: skip
            stored = images.astype(narrow)
        else:
            stored = images
        parts: dict[str, np.ndarray] = {
            "images": stored,
            "images_dtype": np.array(str(images.dtype)),
            "redshift": self.redshift,
        }
        for name in ("log10_m500c", "positions", "snapshot", "cluster_id", "kde_cubes"):
            value = getattr(self, name)
            if value is not None:
                parts[name] = np.asarray(value)
        if self.galaxies is not None:
            for name in ("offsets", "x", "y", "v"):
                parts[f"galaxies.{name}"] = np.asarray(getattr(self.galaxies, name))
        for key, value in self.scalars.items():
            parts[f"scalars.{key}"] = np.asarray(value)
        with path.open("wb") as fh:
            (np.savez_compressed if compress else np.savez)(fh, **parts)
        return path

    @classmethod
    def load_npz(cls, path: str | Path) -> ClusterArrays:
        """Read a file written by :meth:`save_npz`."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                parts = {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: not a ClusterArrays .npz ({exc})") from exc
        if "images" not in parts or "redshift" not in parts:
            raise DataError(f"{path}: lacks 'images' or 'redshift'; it has {sorted(parts)}")
        images = parts.pop("images").astype(str(parts.pop("images_dtype", "float32")))
        galaxies = None
        if "galaxies.offsets" in parts:
            galaxies = RaggedGalaxies(
                *(parts.pop(f"galaxies.{n}") for n in ("offsets", "x", "y", "v"))
            )
        scalars = {
            k[len("scalars.") :]: parts.pop(k) for k in list(parts) if k.startswith("scalars.")
        }
        return cls(
            images=images,
            redshift=parts.pop("redshift"),
            log10_m500c=parts.pop("log10_m500c", None),
            positions=parts.pop("positions", None),
            snapshot=parts.pop("snapshot", None),
            cluster_id=parts.pop("cluster_id", None),
            galaxies=galaxies,
            kde_cubes=parts.pop("kde_cubes", None),
            scalars=scalars,
        )
