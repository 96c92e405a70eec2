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

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from survey.cosmology import CosmologySpec
from survey.errors import SpecError
from survey.plausibility import REDSHIFT
from survey.spec_columns import (
    ColumnRef,
    MassSpec,
    NameCoordinates,
    ObservableSpec,
    PositionSpec,
    RadiusSpec,
    _TableSpec,
)
from survey.spec_images import ClusterRef, ImageBand, ImageSetSpec, confined_path

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


def _refuse_unread_errors(refs: dict[str, ColumnRef | None]) -> None:
    """Refuse error columns on quantities whose errors are not stored (never ignore them)."""
    given = [k for k, r in refs.items() if r is not None and (r.error or r.error_lo)]
    if given:
        raise ValueError(
            f"{given}: errors are read for masses and observables only; remove 'error' / "
            "'error_lo' / 'error_hi' there (they would be ignored)"
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
    def _errors_only_where_read(self) -> CatalogueSpec:
        refs = {"redshift": self.redshift, "radius": self.radius}
        refs |= {"position.ra": self.position.ra, "position.dec": self.position.dec}
        _refuse_unread_errors(refs)
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
        _refuse_unread_errors(
            {"ra": self.ra, "dec": self.dec, "redshift": self.redshift, "velocity": self.velocity}
        )
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
