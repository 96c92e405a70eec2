"""Pure readers for real survey data: specs, catalogues, cross-matching, images, galaxies.

No database, Prefect or service imports here: :mod:`db.survey` writes what these functions
return and :mod:`services.jobs.ingest_catalogues` / :mod:`services.jobs.ingest_observed` sequence them.
"""

from survey.catalogues import ClusterRow, ParsedCatalogue, Reject, read_catalogue
from survey.crossmatch import Match, crossmatch
from survey.errors import (
    BandError,
    CatalogueColumnError,
    CatalogueReadError,
    GalaxyTableError,
    ImageError,
    SpecError,
    SurveyError,
    UnitParseError,
)
from survey.galaxies import analyse_galaxies, dynamical_mass, velocity_dispersion
from survey.images import GridImages, load_band_images, model_grid_wcs, reproject_to_grid
from survey.model_input import TARGET_BANDS, model_input, plan_bands
from survey.specs import CatalogueSpec, GalaxySpec, ImageSetSpec, load_spec, shipped_specs
from survey.units import parse_unit

__all__ = [
    "BandError",
    "CatalogueColumnError",
    "CatalogueReadError",
    "CatalogueSpec",
    "ClusterRow",
    "GalaxySpec",
    "GalaxyTableError",
    "GridImages",
    "ImageError",
    "ImageSetSpec",
    "Match",
    "ParsedCatalogue",
    "Reject",
    "SpecError",
    "SurveyError",
    "TARGET_BANDS",
    "UnitParseError",
    "analyse_galaxies",
    "crossmatch",
    "dynamical_mass",
    "load_band_images",
    "load_spec",
    "model_grid_wcs",
    "model_input",
    "parse_unit",
    "plan_bands",
    "read_catalogue",
    "reproject_to_grid",
    "shipped_specs",
    "velocity_dispersion",
]
