"""Read a cluster catalogue with a mapping spec into validated rows and per-row rejects.

Pipeline per file (pure: no database):

1. read the table (:mod:`survey.files`: truncated / non-FITS files fail with the file name);
2. check every mapped column exists (one error listing all missing ones);
3. per row: position (columns or IAU name) in range, redshift finite and plausible
   (0 < z <= ``spec.max_redshift``), unique id;
4. masses: unit + little-h convention -> h^-1 Msun; other overdensities -> M500c (NFW with the
   Diemer & Joyce 2019 c(M), :func:`survey.cosmology.convert_mass_definition`);
   errors -> dex; the conversion is written into each row's ``mass_note``;
5. R500c: a proper length or an angle (via D_A(z)) -> proper h^-1 Mpc; derived from M500c when
   absent (R = [3 M / (4 pi 500 rho_c(z))]^(1/3));
6. observables converted to their storage unit.

Redshift, M500c, R500c and luminosity must lie in the plausible ranges of
:mod:`survey.plausibility` (checked on physical values, after unit and little-h conversion).

A row with an invalid *required* value is skipped; an invalid optional value is dropped and the
row kept. Both are recorded as :class:`Reject` (file, row, column, value, reason). When more than
``spec.max_reject_fraction`` of the rows are skipped the whole file is refused (it almost always
means the spec does not fit the file).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table

from survey.catalogue_rows import ClusterRow, ObservableValue, ParsedCatalogue, Reject
from survey.cosmology import convert_mass_definition
from survey.errors import CatalogueReadError, UnitParseError
from survey.files import (
    column_unit,
    float_column,
    require_columns,
    row_lines,
    sha256_path,
    str_column,
)
from survey.plausibility import (
    LUMINOSITY_ERG_S,
    M500C_MSUN,
    MASS_DEFINITION_SLACK,
    R500C_MPC,
    REDSHIFT,
    PlausibleRange,
)
from survey.spec_columns import _PHYSICAL
from survey.specs import (
    CatalogueSpec,
    ColumnRef,
    MassSpec,
    ObservableSpec,
    RadiusSpec,
    load_spec,
)
from survey.units import ParsedUnit

__all__ = [
    "Reject",
    "ObservableValue",
    "ClusterRow",
    "ParsedCatalogue",
    "read_catalogue",
    "parse_catalogue_table",
    "r500c_from_m500c",
]


class _Rows:
    """Row validity bookkeeping shared by the steps below.

    ``lines``: per row, its file line (text tables), for :class:`Reject`.
    """

    def __init__(self, n: int, lines: np.ndarray | None = None) -> None:
        self.ok = np.ones(n, dtype=bool)
        self.rejects: list[Reject] = []
        self.lines = lines

    def label(self, i: int) -> str:
        """How a message names row ``i`` (0-based): ``line 7 (row 4)`` or ``row 4``."""
        return Reject(i + 1, None, None, "", line=self.line(i)).where()

    def line(self, i: int) -> int | None:
        """File line of row ``i`` (0-based), if known."""
        return None if self.lines is None else int(self.lines[i])

    def reject(
        self,
        bad: np.ndarray,
        column: str | None,
        values: np.ndarray,
        reason: str,
        *,
        skip: bool = True,
    ) -> None:
        for i in np.flatnonzero(bad & self.ok):
            self.rejects.append(
                Reject(int(i) + 1, column, _fmt(values[i]), reason, skip, self.line(int(i)))
            )
        if skip:
            self.ok &= ~bad


def _fmt(v: object) -> str:
    if isinstance(v, float | np.floating):
        return "nan" if np.isnan(v) else repr(float(v))
    return str(v)


def read_catalogue(
    path: Path, spec: str | Path | CatalogueSpec, *, sha256: str | None = None
) -> ParsedCatalogue:
    """Read a catalogue file with a spec (a shipped name, a YAML path, or an object).

    Raises
    ------
    CatalogueReadError
        The file cannot be read, lacks mapped columns, or too many rows are invalid.
    SpecError
        The spec is unknown or invalid.
    """
    path = Path(path)
    spec = load_spec(spec)
    table = spec.read_table(path)
    parsed = parse_catalogue_table(table, spec, path=path)
    parsed.sha256 = sha256 or sha256_path(path)
    parsed.size_bytes = path.stat().st_size
    return parsed


def parse_catalogue_table(table: Table, spec: CatalogueSpec, *, path: Path) -> ParsedCatalogue:
    """Validate and convert an already-read table (see module docstring).

    Raises
    ------
    UnitParseError
        A column's unit is missing or of the wrong kind; the message names the file.
    """
    try:
        return _parse_catalogue_table(table, spec, path=path)
    except UnitParseError as exc:
        if str(path) in str(exc):
            raise
        raise UnitParseError(f"{path}: {exc}") from exc


def _parse_catalogue_table(table: Table, spec: CatalogueSpec, *, path: Path) -> ParsedCatalogue:
    require_columns(table, spec.required_columns(), path=path, spec_name=spec.name)
    n = len(table)
    rows = _Rows(n, row_lines(table))
    notes: list[str] = []

    ids = _ids(table, spec, rows)
    ra, dec = _positions(table, spec, rows, path)
    zcol = spec.redshift.column
    z = _values(table, spec, spec.redshift, "dimensionless", path)[0]
    rows.reject(~np.isfinite(z), zcol, z, "redshift missing or not finite")
    z_range = REDSHIFT.with_hi(spec.max_redshift)
    rows.reject(z_range.outside(z), zcol, z, z_range.reason())

    logm = logm_err = logm_err_lo = logm_err_hi = None
    mass_note = ""
    if spec.mass is not None:
        logm, logm_errs, mass_note = _masses(table, spec, spec.mass, z, rows, path, notes)
        logm_err, logm_err_lo, logm_err_hi = logm_errs
    r500 = _radii(table, spec, spec.radius, z, logm, rows, path, notes)
    obs = _observables(table, spec, rows, path)
    names = [_text(table, c, rows) for c in spec.name_columns]
    _reject_duplicates(ids, spec, rows)

    out: list[ClusterRow] = []
    for i in np.flatnonzero(rows.ok):
        name = next((col[i] for col in names if col[i]), None)
        out.append(
            ClusterRow(
                row=int(i) + 1,
                external_id=ids[i],
                name=name[:200] if name else None,
                ra_deg=float(ra[i]),
                dec_deg=float(dec[i]),
                redshift=float(z[i]),
                log10_m500c=_opt(logm, i),
                log10_m500c_err=_opt(logm_err, i),
                log10_m500c_err_lo=_opt(logm_err_lo, i),
                log10_m500c_err_hi=_opt(logm_err_hi, i),
                r500c_mpc_h=_opt(r500, i),
                mass_note=mass_note if logm is not None and np.isfinite(logm[i]) else "",
                observables=[o for o in (f(i) for f in obs) if o is not None],
                aliases=[
                    (c, col[i][:200])
                    for c, col in zip(spec.name_columns, names, strict=True)
                    if col[i]
                ],
            )
        )
    skipped = sorted({ids[i] for i in np.flatnonzero(~rows.ok) if ids[i]})
    parsed = ParsedCatalogue(spec, path, "", 0, n, out, rows.rejects, notes, skipped)
    if n and parsed.n_skipped / n > spec.max_reject_fraction:
        first = "; ".join(r.message(path.name) for r in rows.rejects[:3])
        raise CatalogueReadError(
            f"{path}: {parsed.n_skipped} of {n} rows are invalid under spec {spec.name!r} "
            f"(more than max_reject_fraction={spec.max_reject_fraction}); nothing ingested. "
            f"First problems: {first}"
        )
    return parsed


def _opt(arr: np.ndarray | None, i: int) -> float | None:
    if arr is None or not np.isfinite(arr[i]):
        return None
    return float(arr[i])


def _ids(table: Table, spec: CatalogueSpec, rows: _Rows) -> list[str]:
    n = len(table)
    if spec.id_column is None:
        return [str(i) for i in range(n)]
    ids = [s[:100] for s in _text(table, spec.id_column, rows)]
    arr = np.array(ids, dtype=object)
    rows.reject(arr == "", spec.id_column, arr, "identifier missing")
    return ids


_UNDECODABLE = (
    "text is not UTF-8 (latin-1 or another 8-bit encoding? FITS strings are ASCII); "
    "re-encode the column as UTF-8"
)


def _text(table: Table, column: str, rows: _Rows) -> list[str]:
    """Read a text column; a row whose cell is not UTF-8 is rejected (no U+FFFD guessing)."""
    col = str_column(table, column)
    if col.undecodable:
        bad = np.zeros(len(table), dtype=bool)
        bad[list(col.undecodable)] = True
        raw = np.array([col.undecodable.get(i, "") for i in range(len(table))], dtype=object)
        rows.reject(bad, column, raw, _UNDECODABLE)
    return col.values


def _reject_duplicates(ids: list[str], spec: CatalogueSpec, rows: _Rows) -> None:
    """Keep the first *valid* row of each identifier; reject its later valid copies.

    Runs after every other row check, so a duplicate whose first copy was rejected (a bad
    redshift, say) is kept, and the reject names the row that was kept.
    """
    if spec.id_column is None:
        return
    arr = np.array(ids, dtype=object)
    first: dict[str, int] = {}
    for i in np.flatnonzero(rows.ok):
        s = ids[i]
        if s in first:
            dup = np.zeros(len(ids), dtype=bool)
            dup[i] = True
            reason = f"duplicate identifier ({rows.label(first[s])} kept)"
            rows.reject(dup, spec.id_column, arr, reason)
        else:
            first[s] = int(i)


def _values(
    table: Table, spec: CatalogueSpec, ref: ColumnRef, physical: str | None, path: Path
) -> tuple[np.ndarray, ParsedUnit]:
    unit = spec.unit(ref, column_unit(table, ref.column), physical)
    return float_column(table, ref.column, path=path), unit


_NAME_FAIL = "cannot parse coordinates from the name"


def _positions(
    table: Table, spec: CatalogueSpec, rows: _Rows, path: Path
) -> tuple[np.ndarray, np.ndarray]:
    pos = spec.position
    n = len(table)
    if pos.from_name is not None:
        col = pos.from_name.column
        names = np.array(_text(table, col, rows), dtype=object)
        pattern = re.compile(pos.from_name.pattern)
        ra, dec = np.full(n, np.nan), np.full(n, np.nan)
        for i, s in enumerate(names):
            m = pattern.search(s)
            if m:
                g = m.groupdict()
                ra[i] = 15.0 * (float(g["rah"]) + float(g["ram"]) / 60 + float(g["ras"]) / 3600)
                sign = -1.0 if g["sign"] == "-" else 1.0
                dec[i] = sign * (
                    float(g["decd"]) + float(g["decm"]) / 60 + float(g.get("decs") or 0) / 3600
                )
        rows.reject(~np.isfinite(ra), col, names, _NAME_FAIL)
        ra_col = dec_col = col
    else:
        assert pos.ra is not None and pos.dec is not None
        ra_raw, ra_unit = _values(table, spec, pos.ra, "angle", path)
        dec_raw, dec_unit = _values(table, spec, pos.dec, "angle", path)
        ra = (ra_raw * ra_unit.unit).to_value(u.deg)
        dec = (dec_raw * dec_unit.unit).to_value(u.deg)
        ra_col, dec_col = pos.ra.column, pos.dec.column
        rows.reject(~np.isfinite(ra), ra_col, ra_raw, "RA missing or not finite")
        rows.reject(~np.isfinite(dec), dec_col, dec_raw, "Dec missing or not finite")
    bad_dec = np.isfinite(dec) & ((dec < -90) | (dec > 90))
    rows.reject(bad_dec, dec_col, dec, "Dec out of range [-90, 90] deg")
    if pos.frame != "icrs":
        good = rows.ok & np.isfinite(ra) & np.isfinite(dec)
        c = SkyCoord(ra[good] * u.deg, dec[good] * u.deg, frame=pos.frame).icrs
        ra, dec = ra.copy(), dec.copy()
        ra[good], dec[good] = c.ra.deg, c.dec.deg
    ra = np.where(np.isclose(ra, 360.0, rtol=0, atol=1e-9), 0.0, ra)
    bad_ra = np.isfinite(ra) & ((ra < 0) | (ra >= 360))
    rows.reject(bad_ra, ra_col, ra, "RA out of range [0, 360) deg")
    return ra, dec


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


def _observables(table: Table, spec: CatalogueSpec, rows: _Rows, path: Path) -> list:

    getters = []
    for o in spec.all_observables():
        raw, unit = _values(table, spec, o, _PHYSICAL[o.kind], path)
        store = u.Unit(o.store_unit) if o.store_unit else unit.unit
        with np.errstate(all="ignore"):
            vals = (10.0**raw if o.log10 else raw) * unit.unit.to(store)
        bad = ~np.isfinite(vals)
        if o.kind in ("luminosity", "flux", "sigma_v", "richness", "n_gal"):
            bad |= vals <= 0
        rows.reject(
            bad, o.column, raw, f"{o.name} missing, not finite or not positive", skip=o.required
        )
        if o.kind == "luminosity":
            with np.errstate(all="ignore"):
                wild = ~bad & LUMINOSITY_ERG_S.outside(vals * store.to(LUMINOSITY_ERG_S.unit))
            rows.reject(wild, o.column, raw, LUMINOSITY_ERG_S.reason(), skip=o.required)
            bad = bad | wild
        lo, hi, problems, err_col = _observable_errors(table, spec, o, vals, store, ~bad, path)
        for bad_err, err_reason in problems:
            rows.reject(bad_err, err_col, raw, err_reason, skip=o.required)
            bad = bad | bad_err
        note = o.note + (f" [{o.band_kev[0]}-{o.band_kev[1]} keV]" if o.band_kev else "")
        unit_str = "" if store == u.dimensionless_unscaled else store.to_string()
        getters.append(_getter(o.name, vals, bad, (lo, hi), unit_str, note.strip()))
    return getters


def _observable_errors(
    table: Table,
    spec: CatalogueSpec,
    o: ObservableSpec,
    vals: np.ndarray,
    store: u.UnitBase,
    has_value: np.ndarray,
    path: Path,
) -> tuple[np.ndarray | None, np.ndarray | None, list[tuple[np.ndarray, str]], str | None]:
    """Lower and upper errors of an observable in its storage unit, and the rows to reject.

    Errors are in the value's unit (or ``error_unit``); for a ``log10`` column, or with
    ``error_log10``, they are in dex and turned into linear errors about the value
    (upper v (10^e - 1), lower v (1 - 10^-e)).
    """
    if not (o.error or o.error_lo):
        return None, None, [], None

    def linear(col: str, upper: bool) -> np.ndarray:
        e = float_column(table, col, path=path)
        if o.error_log10 or (o.log10 and o.error_unit is None):
            return vals * (10.0**e - 1.0) if upper else vals * (1.0 - 10.0**-e)
        text = o.error_unit if o.error_unit is not None else o.unit
        eu = spec.unit(ColumnRef(column=col, unit=text), column_unit(table, col), None)
        return e * eu.unit.to(store)

    with np.errstate(all="ignore"):
        if o.error:
            lo = hi = linear(o.error, True)
            problems = _check_errors(lo, hi, has_value, False, o.name)
            col: str | None = o.error
        else:
            lo, hi = linear(o.error_lo, False), linear(o.error_hi, True)  # type: ignore[arg-type]
            problems = _check_errors(lo, hi, has_value, True, o.name)
            col = f"{o.error_lo}/{o.error_hi}"
    return lo, hi, problems, col


def _getter(name, vals, bad, errors, unit_str, note):
    lo, hi = errors

    def get(i: int) -> ObservableValue | None:
        if bad[i]:
            return None
        if lo is None or hi is None:
            return ObservableValue(name, float(vals[i]), unit_str, None, note)
        e_lo, e_hi = float(lo[i]), float(hi[i])
        sym = 0.5 * (e_lo + e_hi)
        return ObservableValue(name, float(vals[i]), unit_str, sym, note, e_lo, e_hi)

    return get
