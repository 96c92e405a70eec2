"""Mapping specs: which columns of a user's file hold which quantity, in which unit and convention.

A spec is a small YAML document validated by pydantic (felis-style: units are parsed at load
time, so a spec that says ``Msun/hour`` for a mass fails when it is loaded, not in a plot).
Shipped specs live in ``survey/specs/`` (``mcxc``, ``efeds``, ``spiders_codex``);
users pass their own with ``--spec PATH``. Three kinds:

* :class:`CatalogueSpec` - a cluster catalogue (positions, redshift, mass, proxies, citation);
* :class:`GalaxySpec` - a spectroscopic member-galaxy table of one cluster;
* :class:`ImageSetSpec` - an X-ray image set (counts, exposure, background per band) of one
  cluster, with paths relative to the YAML file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from survey.cosmology import CosmologySpec
from survey.errors import SpecError, UnitParseError
from survey.plausibility import REDSHIFT
from survey.text_tables import DEFAULT_MAX_CELL_BYTES
from survey.units import ParsedUnit, parse_unit

__all__ = [
    "ColumnRef",
    "MassSpec",
    "RadiusSpec",
    "ObservableSpec",
    "PositionSpec",
    "NameCoordinates",
    "CatalogueSpec",
    "GalaxySpec",
    "ImageBand",
    "ClusterRef",
    "ImageSetSpec",
    "SPEC_DIR",
    "shipped_specs",
    "load_spec",
    "detect_spec",
    "load_image_set",
    "load_galaxy_spec",
    "load_any",
    "confined_path",
]

SPEC_DIR = Path(__file__).resolve().parent / "specs"
TableFormat = Literal["auto", "fits", "csv", "ecsv", "votable"]
ObservableKind = Literal[
    "luminosity", "flux", "richness", "sigma_v", "n_gal", "temperature", "other"
]
HConvention = Literal["unit", "h^-1", "h70^-1", "none"]
_MDEF = re.compile(r"^(\d+(\.\d+)?[cm]|vir)$")
_PHYSICAL: dict[str, str | None] = {
    "luminosity": "power",
    "flux": "energy flux",
    "richness": "dimensionless",
    "sigma_v": "speed",
    "n_gal": "dimensionless",
    "temperature": None,  # keV or K
    "other": None,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnRef(_Strict):
    """One column holding a quantity, with its unit and errors.

    ``unit`` overrides the file's own unit string (``None`` = use the file's ``TUNIT``/ECSV unit,
    ``""`` = dimensionless). ``log10: true`` means the column holds ``log10(value / unit)``.
    Errors: ``error`` (symmetric) or ``error_lo``/``error_hi`` columns, in ``error_unit``
    (default: the value's unit) or in dex when ``error_log10`` is true.
    ``required: true`` rejects a row whose value is missing or invalid; ``false`` keeps the row
    and drops the value (both are recorded in the rejects table).
    """

    column: str
    unit: str | None = None
    log10: bool = False
    error: str | None = None
    error_lo: str | None = None
    error_hi: str | None = None
    error_unit: str | None = None
    error_log10: bool = False
    required: bool = True

    @model_validator(mode="after")
    def _errors_consistent(self) -> ColumnRef:
        if self.error and (self.error_lo or self.error_hi):
            raise ValueError("give either 'error' or 'error_lo'/'error_hi', not both")
        if bool(self.error_lo) != bool(self.error_hi):
            raise ValueError("'error_lo' and 'error_hi' go together")
        return self

    def columns(self) -> list[str]:
        """All file columns this reference reads."""
        return [c for c in (self.column, self.error, self.error_lo, self.error_hi) if c]


class MassSpec(ColumnRef):
    """A halo-mass column: definition (``500c``, ``200c``, ``200m``, ``vir``) and h-convention.

    ``h_convention``: ``unit`` takes it from the unit string (``Msun/h`` -> h^-1 Msun, plain
    ``Msun`` -> physical masses for the catalogue cosmology's h); ``h^-1`` / ``h70^-1`` / ``none``
    state it explicitly.
    """

    definition: str = "500c"
    h_convention: HConvention = "unit"

    @field_validator("definition")
    @classmethod
    def _mdef(cls, v: str) -> str:
        if not _MDEF.match(v):
            raise ValueError(f"mass definition {v!r}: use e.g. '500c', '200c', '200m' or 'vir'")
        return v


class RadiusSpec(ColumnRef):
    """An overdensity radius: a proper length (``Mpc``, ``kpc``) or an angle (``arcmin``)."""

    definition: str = "500c"
    h_convention: HConvention = "unit"


class ObservableSpec(ColumnRef):
    """A scalar mass proxy stored in ``observables`` under ``name`` (in ``store_unit``)."""

    name: str = Field(max_length=64)
    kind: ObservableKind = "other"
    band_kev: tuple[float, float] | None = None
    store_unit: str | None = None
    note: str = ""

    @model_validator(mode="after")
    def _band(self) -> ObservableSpec:
        if self.kind in ("luminosity", "flux") and self.band_kev is None:
            raise ValueError(f"observable {self.name!r}: a {self.kind} needs band_kev [lo, hi]")
        if self.band_kev is not None and not 0 < self.band_kev[0] < self.band_kev[1]:
            raise ValueError(f"observable {self.name!r}: band_kev must be 0 < lo < hi")
        return self


class NameCoordinates(_Strict):
    """Coordinates encoded in an IAU-style name, e.g. ``eFEDS J093712.9+031652``.

    ``pattern`` is a regular expression with named groups ``rah``, ``ram``, ``ras``, ``sign``,
    ``decd``, ``decm`` and optionally ``decs``. Name-encoded positions are truncated, not rounded
    (IAU convention), so they are good to ~0.1 s in RA and ~1 arcsec in Dec.
    """

    column: str
    pattern: str = (
        r"J(?P<rah>\d{2})(?P<ram>\d{2})(?P<ras>\d{2}(?:\.\d+)?)"
        r"(?P<sign>[+-])(?P<decd>\d{2})(?P<decm>\d{2})(?P<decs>\d{2}(?:\.\d+)?)?"
    )

    @field_validator("pattern")
    @classmethod
    def _groups(cls, v: str) -> str:
        try:
            groups = set(re.compile(v).groupindex)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from exc
        missing = {"rah", "ram", "ras", "sign", "decd", "decm"} - groups
        if missing:
            raise ValueError(f"pattern lacks named groups {sorted(missing)}")
        return v


class PositionSpec(_Strict):
    """Sky position: RA/Dec columns (angles) or coordinates parsed from a name column."""

    ra: ColumnRef | None = None
    dec: ColumnRef | None = None
    from_name: NameCoordinates | None = None
    frame: Literal["icrs", "fk5", "galactic"] = "icrs"

    @model_validator(mode="after")
    def _one_source(self) -> PositionSpec:
        has_cols = self.ra is not None and self.dec is not None
        if has_cols == (self.from_name is not None):
            raise ValueError("give either both 'ra' and 'dec' columns or 'from_name'")
        if (self.ra is None) != (self.dec is None):
            raise ValueError("'ra' and 'dec' go together")
        return self

    def columns(self) -> list[str]:
        """File columns read for positions."""
        if self.from_name is not None:
            return [self.from_name.column]
        return [*self.ra.columns(), *self.dec.columns()]  # type: ignore[union-attr]


class _TableSpec(_Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    citation: str = ""
    format: TableFormat = "auto"
    hdu: int | str = 1
    max_cell_bytes: int = Field(
        default=DEFAULT_MAX_CELL_BYTES,
        gt=0,
        le=64 * 2**20,
        description="CSV/ECSV: a file with a longer cell is refused before reading (memory).",
    )
    unit_overrides: dict[str, str] = Field(default_factory=dict)

    def unit(self, ref: ColumnRef, file_unit: str | None, physical: str | None) -> ParsedUnit:
        """Parse the unit of ``ref`` (spec unit first, then the file's), checking its type."""
        text = ref.unit if ref.unit is not None else file_unit
        if not text and physical not in (None, "dimensionless"):
            raise UnitParseError(
                f"spec {self.name!r} column {ref.column!r}: the file gives no unit and the spec "
                f"none; add 'unit:' (a {physical}) to the spec"
            )
        return parse_unit(
            text,
            overrides=self.unit_overrides,
            physical_type=physical,
            where=f"spec {self.name!r} column {ref.column!r}",
        )


class CatalogueSpec(_TableSpec):
    """How to read a cluster catalogue (see the shipped YAML files for examples)."""

    kind: Literal["catalogue"] = "catalogue"
    id_column: str | None = None
    name_columns: list[str] = Field(default_factory=list)
    position: PositionSpec
    redshift: ColumnRef
    cosmology: CosmologySpec = Field(default_factory=CosmologySpec)
    mass: MassSpec | None = None
    radius: RadiusSpec | None = None
    luminosity: ObservableSpec | None = None
    richness: ObservableSpec | None = None
    sigma_v: ObservableSpec | None = None
    observables: list[ObservableSpec] = Field(default_factory=list)
    file: str | None = Field(
        default=None, description="Catalogue file, relative to the YAML (for self-contained drops)"
    )
    max_redshift: float = Field(
        default=REDSHIFT.hi,
        gt=0,
        le=20,
        description="Rows with a redshift above this are rejects (survey.plausibility.REDSHIFT).",
    )
    max_reject_fraction: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Refuse the whole file when more rows than this are rejected (a wrong spec).",
    )

    @model_validator(mode="after")
    def _redshift_is_required(self) -> CatalogueSpec:
        if not getattr(self.redshift, "required", True):
            raise ValueError(
                "redshift: 'required: false' is not allowed: a cluster without a redshift has no "
                "mass, R500c or distance (rows without one are rejects); remove that line"
            )
        return self

    @model_validator(mode="after")
    def _unique_observables(self) -> CatalogueSpec:
        names = [o.name for o in self.all_observables()]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"observable names must be unique, repeated: {dupes}")
        return self

    def all_observables(self) -> list[ObservableSpec]:
        """Luminosity, richness, sigma_v and the extra observables, in that order."""
        fixed = [self.luminosity, self.richness, self.sigma_v]
        return [o for o in fixed if o is not None] + list(self.observables)

    def required_columns(self) -> list[str]:
        """Every column the spec reads (a file lacking one is refused)."""
        cols: list[str] = [*self.position.columns(), *self.redshift.columns()]
        if self.id_column:
            cols.append(self.id_column)
        cols += self.name_columns
        for ref in (self.mass, self.radius, *self.all_observables()):
            if ref is not None:
                cols += ref.columns()
        return list(dict.fromkeys(cols))


class GalaxySpec(_TableSpec):
    """How to read a member-galaxy table: RA, Dec and a redshift or a velocity ``cz`` column."""

    kind: Literal["galaxies"] = "galaxies"
    name: str = "galaxies"
    id_column: str | None = None
    ra: ColumnRef
    dec: ColumnRef
    redshift: ColumnRef | None = None
    velocity: ColumnRef | None = Field(
        default=None, description="Recession velocity c*z (optical convention) [speed]"
    )
    file: str | None = Field(default=None, description="Galaxy table, relative to the YAML")
    cluster: ClusterRef | None = Field(default=None, description="The cluster they belong to")

    @model_validator(mode="after")
    def _z_or_v(self) -> GalaxySpec:
        if (self.redshift is None) == (self.velocity is None):
            raise ValueError("give exactly one of 'redshift' or 'velocity'")
        return self

    @classmethod
    def guess(cls, colnames: Iterable[str], *, name: str = "galaxies") -> GalaxySpec:
        """Build a spec from common column names (``ra``/``RAdeg``, ``dec``, ``z``/``cz``).

        Raises
        ------
        SpecError
            No unambiguous RA, Dec and redshift/velocity columns; the message lists the columns.
        """
        cols = list(colnames)
        low = {c.lower(): c for c in cols}

        def pick(*cands: str) -> str | None:
            return next((low[c] for c in cands if c in low), None)

        ra = pick("ra", "radeg", "ra_deg", "raj2000", "ra_icrs", "alpha")
        dec = pick("dec", "dedeg", "dec_deg", "dej2000", "decj2000", "dec_icrs", "delta")
        z = pick("z", "redshift", "zspec", "z_spec", "specz", "z_helio", "zhelio")
        v = pick("cz", "v", "velocity", "vhelio", "v_helio", "rv")
        if ra is None or dec is None or (z is None and v is None):
            raise SpecError(
                f"cannot guess the galaxy columns from {cols}; write a galaxy spec YAML with "
                "ra, dec and redshift (or velocity) columns"
            )
        return cls(
            name=name,
            ra=ColumnRef(column=ra, unit="deg"),
            dec=ColumnRef(column=dec, unit="deg"),
            redshift=ColumnRef(column=z, unit="") if z else None,
            velocity=ColumnRef(column=v, unit="km/s") if z is None and v else None,
        )


class ClusterRef(_Strict):
    """Which cluster an image or galaxy table belongs to.

    By catalogue + external id, by name (e.g. ``A3158``, matched against ``clusters.name`` and
    the external id), or by ``ra``/``dec``/``z`` (a new target in the ``observed_targets``
    catalogue unless a catalogued cluster lies within ``match_radius_arcsec``).
    """

    catalogue: str | None = None
    external_id: str | None = None
    name: str | None = None
    ra: float | None = Field(default=None, ge=0, lt=360)
    dec: float | None = Field(default=None, ge=-90, le=90)
    z: float | None = Field(default=None, gt=0)
    match_radius_arcsec: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _enough(self) -> ClusterRef:
        by_id = self.catalogue is not None and self.external_id is not None
        by_pos = self.ra is not None and self.dec is not None and self.z is not None
        if not (by_id or self.name or by_pos):
            raise ValueError("identify the cluster by catalogue+external_id, name, or ra+dec+z")
        return self


class ImageBand(_Strict):
    """One energy band of an image set: counts, exposure (map or constant) and background."""

    band_kev: tuple[float, float]
    counts: str
    exposure: str | None = None
    exposure_s: float | None = Field(default=None, gt=0)
    background: str | None = None
    hdu: int = 0

    @model_validator(mode="after")
    def _check(self) -> ImageBand:
        if not 0 < self.band_kev[0] < self.band_kev[1]:
            raise ValueError(f"band_kev {self.band_kev}: need 0 < lo < hi")
        if (self.exposure is None) == (self.exposure_s is None):
            raise ValueError("give either an 'exposure' map file or a constant 'exposure_s'")
        return self


class ImageSetSpec(_Strict):
    """An X-ray image set of one cluster (paths relative to ``root``)."""

    kind: Literal["image_set"] = "image_set"
    instrument: str = Field(min_length=1, max_length=64)
    cluster: ClusterRef
    centre_ra: float | None = Field(default=None, ge=0, lt=360)
    centre_dec: float | None = Field(default=None, ge=-90, le=90)
    bands: list[ImageBand] = Field(min_length=1)
    mask: str | None = Field(default=None, description="Point-source mask image, 1 = use")
    root: Literal["manifest", "shared"] = Field(
        default="manifest",
        description="Paths relative to the YAML file, or to the shared data folder",
    )
    citation: str = ""
    note: str = ""

    def files(self) -> list[str]:
        """All files the set reads."""
        return [entry for _, entry in self.file_entries()]

    def file_entries(self) -> list[tuple[str, str]]:
        """Every file the set reads, as ``(field, entry)``: ``('bands[0].counts', 'c.fits')``."""
        out = [("mask", self.mask)] if self.mask else []
        for i, b in enumerate(self.bands):
            for field in ("counts", "exposure", "background"):
                entry = getattr(b, field)
                if entry:
                    out.append((f"bands[{i}].{field}", entry))
        return out

    def resolve_files(
        self, base: Path, *, source: str, allow_absolute: bool = False
    ) -> dict[str, Path]:
        """Map every file entry to its resolved path, confined to ``base``.

        See :func:`confined_path`.

        Raises
        ------
        SpecError
            An entry escapes ``base`` (names ``source`` and the entry).
        """
        return {
            entry: confined_path(
                base, entry, source=source, field=field, allow_absolute=allow_absolute
            )
            for field, entry in self.file_entries()
        }


GalaxySpec.model_rebuild()

_KINDS: dict[str, type[BaseModel]] = {
    "catalogue": CatalogueSpec,
    "galaxies": GalaxySpec,
    "image_set": ImageSetSpec,
}


def _validate(data: Any, source: str, expect: type[BaseModel]) -> Any:
    if not isinstance(data, dict):
        raise SpecError(f"spec {source}: expected a YAML mapping, got {type(data).__name__}")
    kind = data.get("kind", {v: k for k, v in _KINDS.items()}[expect])
    if _KINDS.get(kind) is not expect:
        raise SpecError(f"spec {source}: kind {kind!r}, expected {expect.__name__}")
    try:
        return expect.model_validate(data)
    except ValidationError as exc:
        parts = [f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in exc.errors()]
        raise SpecError(f"spec {source} is invalid: " + "; ".join(parts)) from exc


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """Describe a YAML error without its quoted snippet of the file (it may be anything)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return f"invalid YAML ({exc.problem or exc.context or 'syntax error'}{where})"
    return f"invalid YAML ({type(exc).__name__})"


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"spec file {path} cannot be read: not UTF-8 text") from exc
    except OSError as exc:
        raise SpecError(f"spec file {path} cannot be read: {exc.strerror or exc}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"spec file {path} cannot be read: {_yaml_problem(exc)}") from exc


def shipped_specs() -> dict[str, Path]:
    """Names and paths of the catalogue specs shipped with clustermass."""
    return {p.stem: p for p in sorted(SPEC_DIR.glob("*.yaml"))}


@lru_cache(maxsize=32)
def _load_cached(path: str, mtime: float) -> CatalogueSpec:
    return _validate(_read_yaml(Path(path)), path, CatalogueSpec)


def load_spec(spec: str | Path | CatalogueSpec) -> CatalogueSpec:
    """Return a catalogue spec from a shipped name, a YAML path, or a spec object.

    Raises
    ------
    SpecError
        Unknown name (the message lists the shipped ones) or an invalid document.
    """
    if isinstance(spec, CatalogueSpec):
        return spec
    path = Path(spec)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise SpecError(f"spec file {path} does not exist")
        return _load_cached(str(path.resolve()), path.stat().st_mtime)
    shipped = shipped_specs()
    if str(spec) not in shipped:
        raise SpecError(
            f"unknown spec {str(spec)!r}: choose one of {sorted(shipped)} or give a YAML path"
        )
    return load_spec(shipped[str(spec)])


def detect_spec(colnames: Iterable[str], *, file: str = "") -> CatalogueSpec:
    """Pick the shipped spec whose columns all exist in a file (exactly one must fit).

    Raises
    ------
    SpecError
        No shipped spec, or more than one, fits the file's columns.
    """
    have = set(colnames)
    fits = [
        name for name, p in shipped_specs().items() if set(load_spec(p).required_columns()) <= have
    ]
    if len(fits) == 1:
        return load_spec(fits[0])
    what = "no shipped spec fits" if not fits else f"several shipped specs fit ({fits})"
    raise SpecError(
        f"{file or 'file'}: {what} its columns {sorted(have)[:40]}; pass --spec NAME|PATH "
        f"(shipped: {sorted(shipped_specs())})"
    )


def confined_path(
    base: Path, entry: str, *, source: str, field: str, allow_absolute: bool = False
) -> Path:
    """Resolve a file named by a manifest, refusing any that lies outside ``base``.

    Manifests (image-set YAMLs, a catalogue or galaxy YAML's ``file``) name files relative to
    their folder (or to the shared data folder, ``root: shared``). An absolute entry, a ``..``
    that climbs out of ``base`` and a symbolic link whose target lies outside ``base`` are
    refused before anything is opened, so a dropped manifest cannot make the service read (and
    quote) ``/etc/passwd``.

    Parameters
    ----------
    base
        The folder the entries are relative to.
    entry
        The path as written in the manifest.
    source
        The manifest, for the message (its path or a description).
    field
        The manifest field holding ``entry`` (``bands[0].counts``, ``file``), for the message.
    allow_absolute
        Accept absolute entries (still confined to ``base``): only for specs a trusted caller
        built from paths it was given (the CLI passes ``base = /``), never for a YAML file.

    Returns
    -------
    Path
        The resolved path (symbolic links followed), inside ``base``.

    Raises
    ------
    SpecError
        Empty entry, NUL byte, absolute path (unless allowed), or a path resolving outside
        ``base``; the message names ``source``, ``field`` and ``entry``, never file content.
    """
    where = f"{source}: {field} {entry!r}"
    if not entry or "\x00" in entry:
        raise SpecError(f"{where}: not a usable file name")
    p = Path(entry)
    if p.is_absolute() and not allow_absolute:
        raise SpecError(
            f"{where} is an absolute path; a manifest names its files relative to its own "
            f"folder ({base})"
        )
    root = Path(base).resolve()
    try:
        target = (root / p).resolve()
    except (OSError, RuntimeError) as exc:  # symlink loop
        raise SpecError(f"{where} cannot be resolved ({type(exc).__name__})") from exc
    if not target.is_relative_to(root):
        raise SpecError(
            f"{where} lies outside the manifest's folder {root} (through '..', an absolute "
            "path or a symbolic link); manifest files must be inside it"
        )
    return target


def load_image_set(path: Path) -> ImageSetSpec:
    """Load an image-set YAML manifest."""
    return _validate(_read_yaml(Path(path)), str(path), ImageSetSpec)


def load_galaxy_spec(path: Path) -> GalaxySpec:
    """Load a galaxy-table YAML spec."""
    return _validate(_read_yaml(Path(path)), str(path), GalaxySpec)


def load_any(path: Path) -> CatalogueSpec | GalaxySpec | ImageSetSpec:
    """Load a YAML document of any spec kind (``kind:`` catalogue, galaxies or image_set)."""
    data = _read_yaml(Path(path))
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind not in _KINDS:
        raise SpecError(f"spec {path}: 'kind' must be one of {sorted(_KINDS)}, got {kind!r}")
    return _validate(data, str(path), _KINDS[kind])
