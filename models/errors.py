"""Exceptions raised by the ``models`` package.

Each subclasses the closest builtin so callers can catch either the specific type or the
builtin; messages name the offending parameter, file or column and list the valid choices.
"""

from __future__ import annotations

__all__ = [
    "ModelsError",
    "ModelConfigError",
    "DataError",
    "KDEError",
    "CheckpointError",
    "ProxyError",
]


class ModelsError(Exception):
    """Base class of every error raised on purpose by ``models``."""


class ModelConfigError(ModelsError, ValueError):
    """A network, training or cross-validation configuration is invalid."""


class DataError(ModelsError, ValueError):
    """Input arrays are inconsistent (shapes, missing columns, non-finite values)."""


class KDEError(ModelsError, ValueError):
    """A galaxy phase-space density cube cannot be computed (too few galaxies, bad grid)."""


class CheckpointError(ModelsError, OSError):
    """A saved run, weights file or preprocessing file is missing or unreadable."""


class ProxyError(ModelsError, ValueError):
    """A scalar mass proxy cannot be fitted (too few clusters, non-positive values)."""
