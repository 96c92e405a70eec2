"""IAU-style names for positions: ``CM J123456.7+123456`` (clusters given by coordinates).

The IAU recommendation for coordinate-based designations
(https://cdsweb.u-strasbg.fr/Dic/iau-spec.html) truncates, never rounds, each field, so that
a name always lies in the cell of the sky it names: RA as ``HHMMSS.s``, Dec as ``+DDMMSS``.
"""

from __future__ import annotations

import math

__all__ = ["iau_name"]

PREFIX = "CM"
"""Acronym of names this project makes (targets given by coordinates, not by a catalogue)."""


def iau_name(ra_deg: float, dec_deg: float, prefix: str = PREFIX) -> str:
    """Return ``'<prefix> JHHMMSS.s+DDMMSS'`` for an ICRS position (fields truncated).

    Raises
    ------
    ValueError
        RA not in [0, 360) or Dec not in [-90, 90], or not finite.
    """
    if not (math.isfinite(ra_deg) and 0 <= ra_deg < 360):
        raise ValueError(f"ra_deg={ra_deg}: give a finite right ascension in [0, 360) deg")
    if not (math.isfinite(dec_deg) and -90 <= dec_deg <= 90):
        raise ValueError(f"dec_deg={dec_deg}: give a finite declination in [-90, 90] deg")
    tenths = math.floor(round(ra_deg / 15 * 36000, 6))  # RA in units of 0.1 s of time
    hh, rem = divmod(tenths, 36000)
    mm, rem = divmod(rem, 600)
    ss, t = divmod(rem, 10)
    sign = "-" if dec_deg < 0 else "+"
    arcsec = math.floor(round(abs(dec_deg) * 3600, 6))
    dd, rem = divmod(arcsec, 3600)
    dm, ds = divmod(rem, 60)
    return f"{prefix} J{hh:02d}{mm:02d}{ss:02d}.{t:d}{sign}{dd:02d}{dm:02d}{ds:02d}"
