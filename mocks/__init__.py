"""eROSITA-like mock galaxy-cluster catalogues from cited physics (the stand-in for Magneticum).

Public API::

    from mocks import MockConfig, MockCatalogue, generate, read_catalogue
    cat = generate(MockConfig(n_clusters=3300, seed=1))
    cat.write("out/")
    cat2 = read_catalogue("out/")

Pure numpy/scipy/astropy/colossus: no database, service or workflow imports.
"""

from mocks.catalogue import MockCatalogue, read_catalogue, read_map_file
from mocks.config import MockConfig
from mocks.errors import MockCatalogueError, MockError, MockFileMissingError, MockParameterError
from mocks.generate import generate

__all__ = [
    "MockConfig",
    "MockCatalogue",
    "generate",
    "read_catalogue",
    "read_map_file",
    "MockError",
    "MockParameterError",
    "MockCatalogueError",
    "MockFileMissingError",
]
