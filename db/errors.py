"""Errors raised by the database layer. Each message says what to run to fix it."""

from __future__ import annotations

__all__ = [
    "DatabaseError",
    "DatabaseUnavailableError",
    "SchemaOutOfDateError",
    "ClusterNotFoundError",
    "CatalogueNotFoundError",
    "CatalogueInUseError",
    "CatalogueKindError",
    "RunNotFoundError",
    "ProductIntegrityError",
    "ProductFileMissingError",
    "EmbeddedServerError",
    "BinEdgesError",
    "ProxyNotFoundError",
    "ProxyFitError",
    "sqlstate",
]


class DatabaseError(RuntimeError):
    """Base class of clustermass database errors."""


class DatabaseUnavailableError(DatabaseError):
    """The configured server cannot be reached, or the URL is wrong."""


class SchemaOutOfDateError(DatabaseError):
    """The database schema is not at the migration head of this code."""


class EmbeddedServerError(DatabaseError):
    """The embedded PostgreSQL server could not be started or stopped."""


class ClusterNotFoundError(DatabaseError, LookupError):
    """No cluster matches the given name or id."""


class CatalogueNotFoundError(DatabaseError, LookupError):
    """No catalogue with that name or id."""


class CatalogueInUseError(DatabaseError):
    """A catalogue cannot be deleted: model runs use it (``--force`` deletes anyway)."""


class CatalogueKindError(DatabaseError, ValueError):
    """A catalogue name is held by a catalogue of another kind (kinds never change)."""


class RunNotFoundError(DatabaseError, LookupError):
    """No model run matches the given id."""


class ProductIntegrityError(DatabaseError):
    """A product file is missing or its checksum does not match the database."""


class ProductFileMissingError(ProductIntegrityError):
    """A product file is not in the store (often: the store is not where the files were written)."""


class BinEdgesError(DatabaseError, ValueError):
    """Bin edges are not at least two strictly increasing numbers."""


class ProxyNotFoundError(DatabaseError, LookupError):
    """No observable (or proxy mass estimate) of the given name exists in the catalogue."""


class ProxyFitError(DatabaseError, ValueError):
    """A scaling relation cannot be fitted (too few clusters, no mass spread, zero slope)."""


def sqlstate(exc: BaseException) -> str | None:
    """Return the SQLSTATE of a database error (``None`` when it carries none).

    psycopg 3 (the default driver for ``postgresql://``) names it ``sqlstate``, psycopg2
    ``pgcode``; SQLAlchemy wraps either in ``exc.orig``.
    """
    orig = getattr(exc, "orig", exc)
    return getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
