"""Image-set specs: which cluster, which bands and files, confined to the manifest's folder."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from survey.errors import SpecError
from survey.spec_columns import _Strict

__all__ = ["ClusterRef", "ImageBand", "ImageSetSpec", "confined_path"]


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
    response: str | None = Field(
        default=None,
        description="The instrument's ARF, or RSP/RMF: observed predictions are corrected for "
        "its effective area and bands relative to the training instrument (eROSITA)",
    )
    citation: str = ""
    note: str = ""

    def files(self) -> list[str]:
        """All files the set reads."""
        return [entry for _, entry in self.file_entries()]

    def file_entries(self) -> list[tuple[str, str]]:
        """Every file the set reads, as ``(field, entry)``: ``('bands[0].counts', 'c.fits')``."""
        out = [("mask", self.mask)] if self.mask else []
        if self.response:
            out.append(("response", self.response))
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
