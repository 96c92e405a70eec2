"""Sky cross-matching of two cluster lists with a separation and a redshift tolerance.

Nearest neighbour on the sphere with astropy ``SkyCoord.match_to_catalog_sky`` (a KD-tree on
unit vectors), then cuts on the angular separation and on ``|z_a - z_b|`` (or
``|z_a - z_b| / (1 + z_a)`` with ``relative_dz``). With ``one_to_one`` a cluster of B matched by
several clusters of A keeps only its closest partner.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord

from survey.errors import CrossmatchError

__all__ = ["Match", "crossmatch", "describe_method"]


@dataclass(frozen=True)
class Match:
    """One accepted pair: indices into A and B, separation [arcsec] and |delta z|."""

    index_a: int
    index_b: int
    separation_arcsec: float
    delta_z: float


def describe_method(max_sep_arcsec: float, max_dz: float | None, relative_dz: bool) -> str:
    """Short text stored with each match (``cluster_matches.method``)."""
    dz = "no z cut" if max_dz is None else f"{'dz/(1+z)' if relative_dz else 'dz'}<={max_dz:g}"
    return f"sky nearest, sep<={max_sep_arcsec:g}arcsec, {dz}"


def check_limits(max_sep_arcsec: float, max_dz: float | None) -> None:
    """Refuse tolerances that select nothing sensible.

    Parameters
    ----------
    max_sep_arcsec : float
        Largest separation [arcsec]: finite and > 0.
    max_dz : float or None
        Largest redshift difference: None (no cut) or finite and >= 0.

    Raises
    ------
    CrossmatchError
        NaN, infinite, zero or negative separation; NaN, infinite or negative ``max_dz``.
    """
    if not (math.isfinite(max_sep_arcsec) and max_sep_arcsec > 0):
        raise CrossmatchError(
            f"max_sep_arcsec must be a finite number of arcsec > 0, got {max_sep_arcsec}"
        )
    if max_dz is not None and not (math.isfinite(max_dz) and max_dz >= 0):
        raise CrossmatchError(f"max_dz must be finite and >= 0 (or None: no cut), got {max_dz}")


def crossmatch(
    ra_a: np.ndarray,
    dec_a: np.ndarray,
    z_a: np.ndarray,
    ra_b: np.ndarray,
    dec_b: np.ndarray,
    z_b: np.ndarray,
    *,
    max_sep_arcsec: float = 120.0,
    max_dz: float | None = 0.05,
    relative_dz: bool = False,
    one_to_one: bool = True,
) -> list[Match]:
    """Match each cluster of A to its nearest neighbour in B within the tolerances.

    Parameters
    ----------
    ra_a, dec_a : ndarray ['angle']
        ICRS coordinates of A [deg].
    z_a : ndarray ['redshift']
        Redshifts of A.
    ra_b, dec_b, z_b : ndarray
        The same for B.
    max_sep_arcsec : float
        Largest accepted separation [arcsec].
    max_dz : float or None
        Largest accepted redshift difference (None: no redshift cut).
    relative_dz : bool
        Compare ``|dz| / (1 + z_a)`` instead of ``|dz|``.
    one_to_one : bool
        Keep only the closest A for each matched B.

    Returns
    -------
    list of Match
        Sorted by index in A.

    Raises
    ------
    CrossmatchError
        Meaningless tolerances (:func:`check_limits`).
    """
    ra_a, dec_a, z_a = (np.asarray(x, dtype=float) for x in (ra_a, dec_a, z_a))
    ra_b, dec_b, z_b = (np.asarray(x, dtype=float) for x in (ra_b, dec_b, z_b))
    check_limits(max_sep_arcsec, max_dz)
    if ra_a.size == 0 or ra_b.size == 0:
        return []
    a = SkyCoord(ra_a * u.deg, dec_a * u.deg)
    b = SkyCoord(ra_b * u.deg, dec_b * u.deg)
    if ra_b.size == 1:  # match_to_catalog_sky needs >= 2 catalogue entries... pad with a copy
        b = SkyCoord(np.repeat(ra_b, 2) * u.deg, np.repeat(dec_b, 2) * u.deg)
        z_b = np.repeat(z_b, 2)
    idx, sep, _ = a.match_to_catalog_sky(b)
    if ra_b.size == 1:
        idx = np.zeros_like(idx)
    sep_as = sep.to_value(u.arcsec)
    dz = np.abs(z_a - z_b[idx])
    metric = dz / (1.0 + z_a) if relative_dz else dz
    ok = sep_as <= max_sep_arcsec
    if max_dz is not None:
        ok &= np.isfinite(metric) & (metric <= max_dz)
    chosen = np.flatnonzero(ok)
    if one_to_one:
        best: dict[int, int] = {}
        for i in chosen:
            j = int(idx[i])
            if j not in best or sep_as[i] < sep_as[best[j]]:
                best[j] = int(i)
        chosen = np.array(sorted(best.values()), dtype=int)
    return [Match(int(i), int(idx[i]), float(sep_as[i]), float(dz[i])) for i in chosen]
