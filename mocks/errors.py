"""Errors raised by the mock generator. Messages name the parameter or file and the valid choices."""

from __future__ import annotations

__all__ = ["MockError", "MockParameterError", "MockCatalogueError", "MockFileMissingError"]


class MockError(Exception):
    """Base class of clustermass mock-generator errors."""


class MockParameterError(MockError, ValueError):
    """A generator parameter or a physics-function argument is invalid.

    Parameters
    ----------
    parameter : str
        Name of the offending parameter (dotted for nested config, e.g. ``xray.exposure_s``).
    message : str
        What is wrong and what is allowed.
    """

    def __init__(self, parameter: str, message: str) -> None:
        self.parameter = parameter
        self.detail = message
        super().__init__(f"{parameter}: {message}")


class MockCatalogueError(MockError, ValueError):
    """A written mock catalogue is incomplete, corrupt or inconsistent (the message names the file)."""

    def __init__(self, path: object, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


class MockFileMissingError(MockCatalogueError, FileNotFoundError):
    """A file that the catalogue manifest lists (or the manifest itself) does not exist."""
