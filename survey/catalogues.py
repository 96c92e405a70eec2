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

import re
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table

from survey.catalogue_masses import _check_errors, _masses, _radii, r500c_from_m500c
from survey.catalogue_rows import (
    ClusterRow,
    ObservableValue,
    ParsedCatalogue,
    Reject,
    _Rows,
    _values,
)
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
    REDSHIFT,
)
from survey.spec_columns import _PHYSICAL
from survey.specs import (
    CatalogueSpec,
    ColumnRef,
    ObservableSpec,
    load_spec,
)

__all__ = [
    "Reject",
    "ObservableValue",
    "ClusterRow",
    "ParsedCatalogue",
    "read_catalogue",
    "parse_catalogue_table",
    "r500c_from_m500c",
]


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
