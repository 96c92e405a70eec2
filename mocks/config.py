"""Validated configuration of the mock generator (pydantic), loadable from YAML with overrides.

Every physical number of the mock lives here with its unit and its source. Numbers marked
"recalled" in a description were not checked against the paper they cite (the project had no
access to it); numbers marked "verified" were read from the source (abstract or table). See
``docs/mocks.md`` for the full table.

Validation errors are raised as :class:`mocks.errors.MockParameterError`, naming the (dotted)
parameter, never as a bare pydantic ``ValidationError``.

The sections live in :mod:`mocks.config_halo` (halo and gas) and :mod:`mocks.config_survey`
(telescope, AGN, galaxies); the grid and the strict-model machinery in :mod:`mocks.config_base`.
All are importable from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import Field, field_validator, model_validator

from mocks.config_base import (
    HALF_WIDTH_MPC_H,
    NPIX,
    PIXEL_MPC_H,
    SCATTER_ORDER,
    _Strict,
    deep_update,
)
from mocks.config_halo import AssemblyConfig, IcmConfig, ScalingConfig
from mocks.config_survey import AgnConfig, GalaxyConfig, XrayConfig
from mocks.errors import MockParameterError

__all__ = [
    "MockConfig",
    "ScalingConfig",
    "IcmConfig",
    "XrayConfig",
    "AgnConfig",
    "GalaxyConfig",
    "AssemblyConfig",
    "PRESETS",
    "PAPER_REDSHIFTS",
    "deep_update",
    "NPIX",
    "HALF_WIDTH_MPC_H",
    "PIXEL_MPC_H",
    "SCATTER_ORDER",
]


class MockConfig(_Strict):
    """All parameters of a mock catalogue run.

    Examples
    --------
    >>> cfg = MockConfig(n_clusters=100, seed=3)
    >>> cfg = MockConfig.from_yaml("configs/mock_default.yaml", n_clusters=10)
    """

    n_clusters: int = Field(3300, gt=0, le=1_000_000, description="Clusters to generate")
    seed: int = Field(1, ge=0, le=2**63 - 1, description="Master random seed")
    box_size: float = Field(
        352.0, gt=10, le=10_000, description="Comoving box side [h^-1 Mpc] (Magneticum Box2/hr)"
    )
    snapshot_redshifts: tuple[float, ...] = Field(
        tuple(float(round(z, 4)) for z in np.linspace(0.066, 0.47, 11)),
        description="Snapshot redshifts (Ho+23: 11 snapshots, z = 0.066-0.47)",
    )
    log10_m500c_min: float = Field(
        13.5, ge=12.0, le=16.0, description="Lower limit of log10 M500c [h^-1 Msun]"
    )
    log10_m500c_max: float = Field(
        15.8, ge=12.0, le=16.5, description="Upper limit of the mass-function integral"
    )
    cosmology: Literal["Planck18", "Planck15", "WMAP9"] = Field(
        "Planck18", description="astropy cosmology (sigma8, n_s from colossus's same-named set)"
    )
    mass_function: Literal["tinker08"] = Field("tinker08", description="colossus HMF model")
    concentration_model: Literal["diemer19", "duffy08", "child18"] = Field(
        "diemer19", description="colossus c(M) model for c200c"
    )
    batch_size: int = Field(
        64, ge=1, le=4096, description="Clusters per vectorised batch (part of the RNG layout)"
    )
    compress_maps: bool = Field(False, description="RICE-compress the map HDUs when writing")
    scaling: ScalingConfig = Field(default_factory=ScalingConfig)
    icm: IcmConfig = Field(default_factory=IcmConfig)
    xray: XrayConfig = Field(default_factory=XrayConfig)
    agn: AgnConfig = Field(default_factory=AgnConfig)
    galaxies: GalaxyConfig = Field(default_factory=GalaxyConfig)
    assembly: AssemblyConfig = Field(default_factory=AssemblyConfig)
    preset: Literal["erass", "paper"] = Field(
        "erass",
        description="erass: eROSITA-depth maps with sky and particle backgrounds; paper: the "
        "regime of Ho+23 (ICM + AGN photons only, their 11 snapshot redshifts)",
    )

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> MockConfig:
        """Return the config of a preset (``erass`` or ``paper``) with ``overrides`` merged in."""
        if name not in PRESETS:
            raise MockParameterError("preset", f"unknown {name!r}; choose one of {sorted(PRESETS)}")
        return cls(**deep_update(deep_update({}, PRESETS[name]), overrides))

    @field_validator("snapshot_redshifts")
    @classmethod
    def _check_z(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if len(v) == 0:
            raise ValueError("needs at least one redshift")
        for z in v:
            if not 0.01 <= z <= 1.5:
                raise ValueError(f"redshift {z} out of range: allowed 0.01 <= z <= 1.5")
        if any(b <= a for a, b in zip(v, v[1:], strict=False)):
            raise ValueError("redshifts must be strictly increasing")
        return v

    @model_validator(mode="after")
    def _mass_range(self) -> MockConfig:
        if not self.log10_m500c_min < self.log10_m500c_max:
            raise ValueError("log10_m500c_min must be < log10_m500c_max")
        return self

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> MockConfig:
        """Load a YAML file and deep-merge keyword ``overrides`` into it.

        Parameters
        ----------
        path : str or Path
            YAML mapping of config fields (nested sections as mappings).
        **overrides
            Values replacing those of the file (nested mappings merge recursively).

        Raises
        ------
        FileNotFoundError
            The file does not exist.
        MockParameterError
            The file is not a mapping, or a value is invalid (the parameter is named).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"mock config file not found: {path}")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, Mapping):
            raise MockParameterError(str(path), "the YAML file must hold a mapping of parameters")
        return cls(**deep_update(data, overrides))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every parameter (tuples become lists)."""
        return self.model_dump(mode="json")


#: Snapshot redshifts of Ho+23 (Magneticum Box2/hr snapshots 136 ... 96; their notebook).
PAPER_REDSHIFTS = (
    0.066340191,
    0.10114286,
    0.13708140,
    0.17419289,
    0.21251560,
    0.25208907,
    0.29295412,
    0.33515290,
    0.37872894,
    0.42372720,
    0.47019408,
)

#: Presets: mappings of config fields (overrides merge on top).
PRESETS: dict[str, dict[str, Any]] = {
    "erass": {"preset": "erass"},
    "paper": {
        "preset": "paper",
        "snapshot_redshifts": PAPER_REDSHIFTS,
        "xray": {"diffuse_background": False},
    },
}
