"""Exceptions of :mod:`models.attribution` (subclasses of the ``models`` base error)."""

from __future__ import annotations

from models.errors import ModelsError

__all__ = ["AttributionError"]


class AttributionError(ModelsError, ValueError):
    """Attribution inputs are inconsistent (shapes, methods, radii, missing maps)."""
