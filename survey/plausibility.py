"""Plausible ranges of catalogue quantities: the one place that says what a cluster can be.

A value outside its range is almost always a unit mistake, a wrong column or a placeholder
(``z = 19.9``, ``M500 = 3e16 Msun``), never a discovery: the catalogue reader turns such a row
into a reject (file, row, column, value, reason) and ingests the rest of the file.

Ranges are checked on *physical* quantities, after unit and little-h conversion:

========== ================================== =====================================================
quantity   range                              why
========== ================================== =====================================================
redshift   0 < z <= 3                         the most distant known clusters are at z ~ 2-2.5; a
                                              spec may widen the upper bound (``max_redshift``)
M500c      5e11 <= M <= 5e15 Msun             X-ray groups (MCXC J1224.2+7531, NGC 4386:
                                              9.6e11 Msun) to the most massive clusters (~3e15)
R500c      0.03 <= R <= 5 proper Mpc          R500c of 5e11 Msun at z = 3 (~0.045 Mpc) to 5e15 Msun
                                              at z = 0 (~2.6 Mpc)
L_X        1e40 <= L <= 1e47 erg/s            faint groups to the brightest cool-core clusters
========== ================================== =====================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "PlausibleRange",
    "REDSHIFT",
    "M500C_MSUN",
    "R500C_MPC",
    "LUMINOSITY_ERG_S",
    "MASS_DEFINITION_SLACK",
]


@dataclass(frozen=True)
class PlausibleRange:
    """A closed (or half-open) interval of plausible values of one quantity.

    Parameters
    ----------
    quantity : str
        What is checked, as named in reject reasons (``"redshift"``, ``"M500c"``).
    lo, hi : float
        Bounds, in ``unit``.
    unit : str
        Unit of the bounds (astropy string; ``""`` = dimensionless).
    lo_open : bool
        ``True``: the lower bound itself is implausible (``z > 0``).
    hint : str
        Appended to the reject reason (the likely cause of an out-of-range value).
    """

    quantity: str
    lo: float
    hi: float
    unit: str = ""
    lo_open: bool = False
    hint: str = ""

    def with_hi(self, hi: float) -> PlausibleRange:
        """Return the same range with another upper bound (a spec widens or narrows it)."""
        return PlausibleRange(self.quantity, self.lo, hi, self.unit, self.lo_open, self.hint)

    def outside(self, values: np.ndarray) -> np.ndarray:
        """Boolean mask of the *finite* values outside the range (NaN is checked elsewhere)."""
        v = np.asarray(values, dtype=float)
        with np.errstate(invalid="ignore"):
            low = v <= self.lo if self.lo_open else v < self.lo
            return np.isfinite(v) & (low | (v > self.hi))

    def describe(self) -> str:
        """Return the range as text, e.g. ``0 < redshift <= 3``."""
        op = "<" if self.lo_open else "<="
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.lo:g} {op} {self.quantity} <= {self.hi:g}{unit}"

    def reason(self) -> str:
        """Return the reject reason for a value outside the range."""
        text = f"{self.quantity} outside the plausible range {self.describe()}"
        return f"{text} ({self.hint})" if self.hint else text


REDSHIFT = PlausibleRange(
    "redshift",
    0.0,
    3.0,
    lo_open=True,
    hint="must be > 0; a catalogue of more distant objects sets max_redshift in its spec",
)
M500C_MSUN = PlausibleRange(
    "M500c",
    5e11,
    5e15,
    "Msun",
    hint="physical mass after unit and little-h conversion: wrong unit, or a log10 column not "
    "marked log10?",
)
R500C_MPC = PlausibleRange(
    "R500c", 0.03, 5.0, "Mpc", hint="proper radius after unit and little-h conversion"
)
LUMINOSITY_ERG_S = PlausibleRange(
    "luminosity", 1e40, 1e47, "erg / s", hint="after unit conversion: wrong unit or a log10 column?"
)

# A mass in another definition (M200c, M200m, Mvir, M2500c) is first screened against the M500c
# range widened by this factor on both sides (M200m / M500c < 2.5 and M2500c / M500c > 0.3 for
# any NFW concentration above 2), so that wild values never reach the NFW conversion; the
# converted M500c is then checked against the exact range.
MASS_DEFINITION_SLACK = 3.0
