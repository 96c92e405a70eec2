"""Unit strings from real catalogues, parsed safely with astropy.units.

Survey tables carry unit strings that astropy either rejects (``ergs s**-1``) or, worse, parses
into the wrong thing: ``Msun/h`` is read by astropy's generic format as *solar masses per hour*.
:func:`parse_unit` therefore

1. applies explicit overrides (a module table plus the spec's ``unit_overrides``),
2. reads the spellings catalogues use for solar units (``Msun``, ``Msol``, ``M_sun``, ``Lsun``)
   and scale factors (``10^14``, ``10**14``, ``10+14``, ``10^{14}``, ``1E14``, ``x10^14``) as
   astropy's ``solMass``, ``solLum`` and ``1e14``, so ``10^14 Msol`` and ``1e44 erg/s`` parse,
3. strips little-h tokens (``/h``, ``h^-1``, ``h-1``, ``h**-1``, ``/h70``) and records them as a
   power of ``h`` with its reference value (1 for h = H0/100, 0.7 for ``h70``),
4. normalises a few spellings (``ergs`` -> ``erg``) and tries the generic, CDS and FITS formats,
5. optionally checks the physical type (a "mass" column whose unit parses as Msun/hour fails here).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import astropy.units as u

from survey.errors import UnitParseError

__all__ = ["ParsedUnit", "parse_unit", "KNOWN_OVERRIDES"]

#: Unit strings seen in real catalogues that astropy cannot read (or misreads), mapped to
#: strings it reads correctly. Little-h tokens are handled separately (see :func:`parse_unit`).
KNOWN_OVERRIDES: dict[str, str] = {
    "10+14Msun": "1e14 solMass",
    "10+37W": "1e37 W",
    "1e+37 W": "1e37 W",
    "ergs s**-1": "erg / s",
    "ergs s**-1 cm**-2": "erg / (s cm2)",
    "erg s**-1": "erg / s",
    "erg s**-1 cm**-2": "erg / (s cm2)",
    "Msun": "solMass",
    "M_sun": "solMass",
    "Msol": "solMass",
    "km s**-1": "km / s",
    "km s-1": "km / s",
}

# "/h", "/h70", "h^-1", "h-1", "h**-1", "h70^-1", "h^{-1}" as separate tokens (not "hour").
_LITTLE_H = re.compile(
    r"(?:/\s*h(?P<r1>70)?(?![A-Za-z0-9])"
    r"|(?<![A-Za-z])h(?P<r2>70)?\s*(?:\^\{?|\*\*)?\s*-1\}?(?![0-9]))"
)


@dataclass(frozen=True)
class ParsedUnit:
    """A unit with its little-h dependence split off.

    A value ``x`` in this unit means ``x * unit * (h / h_ref) ** h_power``, so ``Msun/h`` is
    ``ParsedUnit(solMass, h_power=-1, h_ref=1.0)``: divide by ``h`` to get solar masses.

    Attributes
    ----------
    unit : astropy.units.UnitBase
        The unit without the little-h factor.
    h_power : int
        Power of ``h`` (0 = no h dependence; -1 for ``h^-1``).
    h_ref : float
        Reference ``h`` of the convention: 1.0 for h = H0/(100 km/s/Mpc), 0.7 for ``h70``.
    text : str
        The string as given.
    """

    unit: u.UnitBase
    h_power: int = 0
    h_ref: float = 1.0
    text: str = ""

    def to_h_inverse(self, h: float) -> float:
        """Factor that turns a value in this unit into ``unit * h^-1`` for a given ``h``.

        Parameters
        ----------
        h : float
            Dimensionless Hubble parameter H0 / (100 km/s/Mpc) of the catalogue's cosmology.
        """
        # x [unit (h/h_ref)^p] = x (h/h_ref)^p [unit] = x (h/h_ref)^p h [unit h^-1]
        return float((h / self.h_ref) ** self.h_power * h)


# Solar units as catalogues write them (a whole token: not the "Msun" inside "solMass").
_SOLAR = re.compile(r"(?<![A-Za-z_])(?:M_?sun|M_?sol|M_?\\odot)(?![A-Za-z_])")
_SOLAR_LUM = re.compile(r"(?<![A-Za-z_])(?:L_?sun|L_?sol|L_?\\odot)(?![A-Za-z_])")
# A leading power-of-ten scale: "10^14", "10**14", "10+14", "10^{14}", "x10^14", "1E14", "1e+14".
_SCALE = re.compile(
    r"^\s*(?:[x*]\s*)?(?:10\s*(?:\^\{?|\*\*|(?=[+-]))\s*(?P<p1>[+-]?\d+)\}?"
    r"|1[eE](?P<p2>[+-]?\d+))(?![\d.])\s*\*?\s*"
)


def _normalise(text: str) -> str:
    """Rewrite catalogue spellings astropy does not know into ones it does (see module doc)."""
    s = _SOLAR.sub("solMass", text)
    s = _SOLAR_LUM.sub("solLum", s)
    m = _SCALE.match(s)
    if m:
        power = int(m.group("p1") or m.group("p2"))
        rest = s[m.end() :].strip()
        s = f"1e{power} {rest}".strip() if rest else f"1e{power}"
    return re.sub(r"\bergs\b", "erg", s)


def _first_sentence(exc: Exception) -> str:
    """Return the reason astropy gives, without its advice and URL (about astropy, not specs)."""
    text = str(exc).split(" If this is meant to be a custom unit")[0]
    return text.split(". Did you mean")[0].strip().rstrip(".")


def _astropy_parse(text: str, raw: str, where: str) -> u.UnitBase:
    errors: list[str] = []
    for fmt in ("generic", "cds", "fits"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                return u.Unit(text, format=fmt)
        except (ValueError, TypeError, u.UnitsWarning) as exc:
            errors.append(_first_sentence(exc))
    read_as = f" (read as {text!r})" if text != raw else ""
    raise UnitParseError(
        f"{where + ': ' if where else ''}unit {raw!r}{read_as} cannot be parsed: astropy does "
        f"not know it ({errors[0]}). Fix: write the unit in astropy's form in the spec, e.g. "
        f"'unit: \"1e14 solMass\"', 'unit: \"1e44 erg / s\"', 'unit: \"km / s\"'; or, to keep "
        f"the file's own string, map it in the spec's 'unit_overrides', e.g. "
        f'\'unit_overrides: {{"{raw}": "<astropy unit>"}}\' (docs/specs.md, Units)'
    )


def parse_unit(
    text: str | None,
    *,
    overrides: Mapping[str, str] | None = None,
    physical_type: str | None = None,
    where: str = "",
) -> ParsedUnit:
    """Parse a unit string from a catalogue header or spec.

    Parameters
    ----------
    text : str or None
        The unit string; ``None`` or ``""`` means dimensionless.
    overrides : mapping of str to str, optional
        Extra ``{as written: astropy string}`` replacements, checked before the built-in ones.
    physical_type : str, optional
        Required physical type (e.g. ``"mass"``, ``"length"``, ``"angle"``, ``"power"``).
    where : str
        Context for error messages, e.g. ``"spec 'mcxc' mass.unit"``.

    Returns
    -------
    ParsedUnit

    Raises
    ------
    UnitParseError
        The string is not a unit, or has the wrong physical type.
    """
    raw = (text or "").strip()
    table = {**KNOWN_OVERRIDES, **(overrides or {})}
    s = table.get(raw, raw)
    h_power, h_ref = 0, 1.0
    match = _LITTLE_H.search(s)
    if match:
        h_power = -1
        h_ref = 0.7 if (match.group("r1") or match.group("r2")) else 1.0
        s = (s[: match.start()] + " " + s[match.end() :]).strip()
        if _LITTLE_H.search(s):
            raise UnitParseError(f"{where}: unit {raw!r} has more than one little-h factor")
    s = _normalise(table.get(s, s))
    unit = u.dimensionless_unscaled if s == "" else _astropy_parse(s, raw, where)
    if physical_type is not None:
        ok = unit.physical_type == physical_type or (
            physical_type == "dimensionless" and unit.is_equivalent(u.dimensionless_unscaled)
        )
        if not ok:
            raise UnitParseError(
                f"{where + ': ' if where else ''}unit {raw!r} parses as {unit!s} "
                f"({unit.physical_type}), expected a {physical_type}"
            )
    return ParsedUnit(unit=unit, h_power=h_power, h_ref=h_ref, text=raw)
