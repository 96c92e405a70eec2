"""Masses and radii of catalogue rows: units, little-h, mass definitions, errors, R500c.

Steps 4 and 5 of :mod:`survey.catalogues` (moved here whole): a mass column in any unit and
little-h convention -> log10 M500c [h^-1 Msun] (other overdensities through an NFW halo with the
Diemer & Joyce 2019 c(M), :func:`survey.cosmology.convert_mass_definition`), its errors in dex;
R500c from a proper length or an angle (via D_A(z)), or derived from M500c. Pure: no database.
"""

from __future__ import annotations

import math
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import Table

from survey.catalogue_rows import _Rows, _values
from survey.cosmology import convert_mass_definition
from survey.errors import CatalogueReadError
from survey.files import (
    column_unit,
    float_column,
)
from survey.plausibility import (
    M500C_MSUN,
    MASS_DEFINITION_SLACK,
    R500C_MPC,
    PlausibleRange,
)
from survey.specs import (
    CatalogueSpec,
    ColumnRef,
    MassSpec,
    RadiusSpec,
)
from survey.units import ParsedUnit

__all__ = ["r500c_from_m500c"]


def _h_factor(unit: ParsedUnit, convention: str, h: float) -> float:
    """Factor turning a value in ``unit`` (with ``convention``) into ``unit.unit * h^-1``."""
    if convention == "unit":
        return unit.to_h_inverse(h)
    if convention == "h^-1":
        return 1.0
    if convention == "h70^-1":
        return 0.7
    return h  # "none": physical units for the catalogue's h


def _masses(
    table: Table,
    spec: CatalogueSpec,
    ms: MassSpec,
    z: np.ndarray,
    rows: _Rows,
    path: Path,
    notes: list[str],
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray], str]:
    raw, unit = _values(table, spec, ms, "mass", path)
    h = spec.cosmology.h
    hf = _h_factor(unit, ms.h_convention, h)
    scale = unit.unit.to(u.Msun) * hf
    with np.errstate(all="ignore"):
        m = (10.0**raw if ms.log10 else raw) * scale
        bad = ~np.isfinite(m) | (m <= 0)
        reason = "mass missing, not finite or not positive"
        rows.reject(bad, ms.column, raw, reason, skip=ms.required)
        logm = np.where(bad, np.nan, np.log10(np.where(bad, 1.0, m)))
        # plausibility on the physical mass [Msun] = M [h^-1 Msun] / h; another definition is
        # screened with slack first, so that wild values never reach the NFW conversion
        screen = M500C_MSUN
        if ms.definition != "500c":
            screen = PlausibleRange(
                f"M{ms.definition}",
                M500C_MSUN.lo / MASS_DEFINITION_SLACK,
                M500C_MSUN.hi * MASS_DEFINITION_SLACK,
                M500C_MSUN.unit,
                hint=M500C_MSUN.hint,
            )
        wild = screen.outside(10.0**logm / h)
        rows.reject(wild, ms.column, raw, screen.reason(), skip=ms.required)
        logm[wild] = np.nan
        lo, hi, problems, err_col = _mass_errors(table, spec, ms, m, h, path)
        for bad_err, err_reason in problems:
            bad_err &= np.isfinite(logm)
            rows.reject(bad_err, err_col, raw, err_reason, skip=ms.required)
            logm[bad_err] = np.nan
    hnote = {
        "unit": f"unit {unit.text!r}",
        "h^-1": "values in h^-1 Msun",
        "h70^-1": "values in h70^-1 Msun",
        "none": f"physical Msun for h={h:.4g}",
    }
    note = (
        f"{spec.name}: column {ms.column} ({'log10 ' if ms.log10 else ''}{ms.definition}, "
        f"{hnote[ms.h_convention]}) -> h^-1 Msun x{hf:.4g}"
    )
    if ms.definition != "500c":
        good = np.isfinite(logm) & rows.ok
        conv = convert_mass_definition(
            10.0 ** logm[good], z[good], ms.definition, "500c", spec.cosmology
        )
        ratio = conv / 10.0 ** logm[good]
        logm = logm.copy()
        logm[good] = np.log10(conv)
        wild = M500C_MSUN.outside(10.0**logm / h)
        rows.reject(wild, ms.column, raw, M500C_MSUN.reason(), skip=ms.required)
        logm[wild] = np.nan
        note += (
            f"; M{ms.definition}->M500c with an NFW profile and the diemer19 c(M) model "
            f"(colossus, cosmology {spec.cosmology.name}); M500c/M{ms.definition} median "
            f"{np.median(ratio) if ratio.size else float('nan'):.3f}; errors kept in dex"
        )
    notes.append(note)
    lo, hi = np.where(np.isfinite(logm), lo, np.nan), np.where(np.isfinite(logm), hi, np.nan)
    return logm, (0.5 * (lo + hi), lo, hi), note


def _check_errors(
    lo: np.ndarray, hi: np.ndarray, has_value: np.ndarray, asymmetric: bool, what: str
) -> list[tuple[np.ndarray, str]]:
    """Rows whose errors are inconsistent with a present value, as ``(mask, reason)`` pairs.

    An error must be finite and positive wherever the value is present; with asymmetric
    errors, a row with only one of the two is a reject (never stored one-sided).
    """
    ok_lo = np.isfinite(lo) & (lo > 0)
    ok_hi = np.isfinite(hi) & (hi > 0)
    if not asymmetric:
        reason = f"{what} error missing, NaN, zero or negative while the value is given"
        return [(has_value & ~ok_hi, reason)]
    one = "only the {} error is usable (the other is missing, NaN, zero or negative)"
    both = "neither error is usable (missing, NaN, zero or negative)"
    return [
        (has_value & ok_lo & ~ok_hi, f"{what}: " + one.format("lower") + "; not stored one-sided"),
        (has_value & ~ok_lo & ok_hi, f"{what}: " + one.format("upper") + "; not stored one-sided"),
        (has_value & ~ok_lo & ~ok_hi, f"{what}: {both} while the value is given"),
    ]


def _mass_errors(
    table: Table,
    spec: CatalogueSpec,
    ms: MassSpec,
    m: np.ndarray,
    h: float,
    path: Path,
) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, str]], str | None]:
    """Lower and upper errors [dex] of the masses ``m`` [h^-1 Msun], and the rows to reject.

    Returns ``(lo, hi, problems, column)``: ``problems`` are ``(mask, reason)`` pairs of rows
    with a mass but errors that are missing, not positive, or one-sided
    (:func:`_check_errors`); a linear lower error as large as the mass has no log and is not
    usable either.
    """
    n = len(m)
    if not (ms.error or ms.error_lo):
        nan = np.full(n, np.nan)
        return nan, nan, [], None

    def to_dex(col: str, upper: bool) -> np.ndarray:
        e = float_column(table, col, path=path)
        if ms.error_log10 or (ms.log10 and ms.error_unit is None):
            return e  # errors in dex (a log10 column's errors are, unless given a unit)
        text = ms.error_unit if ms.error_unit is not None else (ms.unit or column_unit(table, col))
        eu = spec.unit(ColumnRef(column=col, unit=text or ""), None, "mass")
        e_h = e * eu.unit.to(u.Msun) * _h_factor(eu, ms.h_convention, h)
        if upper:
            return np.log10((m + e_h) / m)
        return np.where(m - e_h > 0, np.log10(m / (m - e_h)), np.nan)

    has = np.isfinite(m) & (m > 0)
    with np.errstate(all="ignore"):
        if ms.error:
            lo = hi = to_dex(ms.error, True)
            problems = _check_errors(lo, hi, has, False, "mass")
            col: str | None = ms.error
        else:
            lo, hi = to_dex(ms.error_lo, False), to_dex(ms.error_hi, True)  # type: ignore[arg-type]
            problems = _check_errors(lo, hi, has, True, "mass")
            col = f"{ms.error_lo}/{ms.error_hi}"
    return lo, hi, problems, col


def r500c_from_m500c(log10_m500c_h: np.ndarray, z: np.ndarray, spec: CatalogueSpec) -> np.ndarray:
    """R500c [proper h^-1 Mpc] = (3 M500c / (4 pi 500 rho_c(z)))^(1/3).

    With M in h^-1 Msun and rho_c(z) = rho_c0 E(z)^2 in h^2 Msun Mpc^-3 the radius comes out in
    h^-1 Mpc (proper).
    """
    cosmo = spec.cosmology.astropy()
    rho_c0_h2 = (cosmo.critical_density0 / cosmo.h**2).to_value(u.Msun / u.Mpc**3)
    rho = rho_c0_h2 * np.asarray(cosmo.efunc(z)) ** 2
    return (3.0 * 10.0 ** np.asarray(log10_m500c_h) / (4.0 * math.pi * 500.0 * rho)) ** (1 / 3)


def _radii(
    table: Table,
    spec: CatalogueSpec,
    rs: RadiusSpec | None,
    z: np.ndarray,
    logm: np.ndarray | None,
    rows: _Rows,
    path: Path,
    notes: list[str],
) -> np.ndarray | None:
    derived = None
    if logm is not None:
        with np.errstate(all="ignore"):
            derived = np.where(np.isfinite(logm) & (z > 0), r500c_from_m500c(logm, z, spec), np.nan)
    if rs is None or rs.definition != "500c":
        if derived is not None:
            notes.append(f"{spec.name}: r500c_mpc_h derived from M500c and rho_c(z)")
        return derived
    raw = float_column(table, rs.column, path=path)
    unit = spec.unit(rs, column_unit(table, rs.column), None)
    with np.errstate(all="ignore"):
        if unit.unit.physical_type == "angle":
            cosmo = spec.cosmology.astropy()
            zz = np.where(np.isfinite(z) & (z > 0), z, 1.0)
            da_h = cosmo.angular_diameter_distance(zz).to_value(u.Mpc) * cosmo.h
            r = (raw * unit.unit).to_value(u.rad) * da_h
        elif unit.unit.physical_type == "length":
            r = raw * unit.unit.to(u.Mpc) * _h_factor(unit, rs.h_convention, spec.cosmology.h)
        else:
            raise CatalogueReadError(
                f"{path}: radius column {rs.column!r} has unit {unit.text!r}; need a length or angle"
            )
    bad = ~(np.isfinite(r) & (r > 0))
    rows.reject(bad & rows.ok, rs.column, raw, "R500c missing or not positive", skip=False)
    wild = ~bad & R500C_MPC.outside(r / spec.cosmology.h)  # proper h^-1 Mpc -> proper Mpc
    rows.reject(wild & rows.ok, rs.column, raw, R500C_MPC.reason(), skip=False)
    r = np.where(bad | wild, np.nan, r)
    if derived is not None:
        r = np.where(np.isfinite(r), r, derived)
    return r
