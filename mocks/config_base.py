"""Shared pieces of the mock configuration: the map grid, strict models, error naming.

Every section model derives from :class:`_Strict`: frozen, no unknown keys, and validation
errors raised as :class:`mocks.errors.MockParameterError` naming the dotted parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from mocks.errors import MockParameterError

__all__ = [
    "NPIX",
    "HALF_WIDTH_MPC_H",
    "PIXEL_MPC_H",
    "ARF_RANGE_KEV",
    "SCATTER_ORDER",
    "deep_update",
]

NPIX = 128
"""Pixels per map side (Ho et al. 2023)."""
HALF_WIDTH_MPC_H = 2.3
"""Half-width of a map, comoving [h^-1 Mpc] (Ho et al. 2023)."""
PIXEL_MPC_H = 2 * HALF_WIDTH_MPC_H / NPIX
"""Pixel side, comoving [h^-1 Mpc] (0.0359)."""
ARF_RANGE_KEV = (0.2, 10.0)
"""Energies over which the vendored eFEDS ARF and the absorption model are used [keV]."""
SCATTER_ORDER = ("T", "L_ce", "M_gas", "M_star", "N_gal", "sigma_v")
"""Order of the quantities in :attr:`ScalingConfig.correlation`."""


def deep_update(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``overrides`` merged in recursively (nested mappings merge, others replace)."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_update(out[key], value)
        else:
            out[key] = value
    return out


def _field_names(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """List the valid field names of the (nested) model at ``loc`` (for error messages)."""
    cls: Any = model
    for part in loc:
        field = getattr(cls, "model_fields", {}).get(part)
        if field is None:
            break
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            cls = ann
        else:
            break
    return sorted(getattr(cls, "model_fields", {}))


class _Strict(BaseModel):
    """Frozen, extra-forbidding base whose validation errors become :class:`MockParameterError`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _as_parameter_error(type(self), exc) from exc


def _as_parameter_error(model: type[BaseModel], exc: ValidationError) -> MockParameterError:
    errors = exc.errors()
    first = errors[0]
    loc = tuple(first["loc"])
    name = ".".join(str(p) for p in loc) or model.__name__
    inner = first.get("ctx", {}).get("error")
    if isinstance(inner, MockParameterError):  # a nested model's own error: keep its name
        return MockParameterError(".".join([*map(str, loc), inner.parameter]), inner.detail)
    if first["type"] == "extra_forbidden":
        valid = _field_names(model, loc[:-1])
        msg = f"unknown parameter; valid parameters here: {', '.join(valid)}"
    else:
        msg = f"{first['msg']} (got {first.get('input')!r})"
    if len(errors) > 1:
        others = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[1:4])
        msg += f"; also: {others}"
    return MockParameterError(name, msg)
