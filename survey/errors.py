"""Errors of the survey readers. Messages name the file, row and column, and list valid choices."""

from __future__ import annotations

__all__ = [
    "SurveyError",
    "SpecError",
    "UnitParseError",
    "CatalogueReadError",
    "CatalogueColumnError",
    "ImageError",
    "BandError",
    "GalaxyTableError",
]


class SurveyError(ValueError):
    """Base class of errors raised while reading survey files."""


class SpecError(SurveyError):
    """A mapping spec is missing, malformed or names an unknown option."""


class UnitParseError(SurveyError):
    """A unit string cannot be parsed, or has the wrong physical type."""


class CatalogueReadError(SurveyError):
    """A catalogue file cannot be read at all (not a table, truncated, wrong format)."""


class CatalogueColumnError(CatalogueReadError):
    """A column named by the spec is absent from the file."""


class ImageError(SurveyError):
    """An X-ray image cannot be used (no WCS, shape mismatch, outside the field, ...)."""


class BandError(ImageError):
    """The image's energy bands cannot provide the bands a model needs."""


class CrossmatchError(SurveyError):
    """Cross-match tolerances that mean nothing (NaN, infinite, zero or negative)."""


class GalaxyTableError(SurveyError):
    """A member-galaxy table cannot be used (too few galaxies, bad columns, ...)."""
