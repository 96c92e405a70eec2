r"""The clustermass schema: SQLAlchemy 2 typed ORM tables.

Conventions
-----------
* Units are part of column names (``ra_deg``, ``r500c_mpc_h``) *and* stated in
  ``info={"unit": ...}`` (an astropy unit string; a test parses every one) and in the column
  comment, which PostgreSQL keeps (``\\d+ clusters`` in psql shows it).
* Masses are stored as ``log10(M500c / (h^-1 Msun))`` in the cosmology recorded on the
  cluster's catalogue (column ``catalogues.cosmology``), i.e. in units of ``dex(solMass / littleh)`` (astropy, with ``astropy.cosmology.units``
  enabled), the little-h convention also stated in the comment.
* Large arrays (photon maps, KDE cubes, saliency, galaxy tables, network weights) never enter the
  database: they are files in the content-addressed store (see :mod:`db.products`) and
  :class:`Product` rows hold their path, sha256, shape and dtype.
* Galaxies (members and interlopers) are stored as a ``galaxies`` product per cluster: an npz
  table with columns ``x_mpc_h``, ``y_mpc_h``, ``v_los_km_s``, ``is_member``. At ~100 galaxies per
  cluster a table would hold ~10^5-10^6 rows that are only ever read per cluster, as a whole,
  by the KDE builder; a file keeps ingest fast and the schema small.
* Every table that a task writes has a natural key (unique constraint) so that writes are upserts
  and redelivered tasks write nothing twice.
"""

# One module per group of tables; every table is importable from here (``from db.tables import
# Cluster``) and registered on ``Base.metadata`` as soon as this package is imported.
from db.tables.base import (
    ATTRIBUTION_METHODS,
    CATALOGUE_KINDS,
    FOLD_SCHEMES,
    INGEST_STATUSES,
    MODEL_KINDS,
    NAMING_CONVENTION,
    PRODUCT_KINDS,
    RUN_STATUSES,
    SCATTER_AXES,
    Base,
)
from db.tables.catalogues import Catalogue, Cluster, Observable, Product
from db.tables.ingest import ClusterMatch, IngestFile, IngestReject
from db.tables.masses import ClusterName, MassEstimate, MatchSet
from db.tables.results import ProxyEstimate, ScatterBootstrap
from db.tables.results_index import ResultsIndexBlock, ResultsIndexCell, ResultsIndexRun
from db.tables.runs import Attribution, ModelRun, ModelRunFold, Prediction
from db.tables.stores import Store

__all__ = [
    "Base",
    "Catalogue",
    "Cluster",
    "Observable",
    "Product",
    "ModelRun",
    "ModelRunFold",
    "Prediction",
    "Attribution",
    "ResultsIndexRun",
    "ResultsIndexBlock",
    "ResultsIndexCell",
    "ClusterMatch",
    "ClusterName",
    "MassEstimate",
    "MatchSet",
    "IngestFile",
    "IngestReject",
    "CATALOGUE_KINDS",
    "PRODUCT_KINDS",
    "MODEL_KINDS",
    "RUN_STATUSES",
    "ATTRIBUTION_METHODS",
    "SCATTER_AXES",
    "FOLD_SCHEMES",
    "INGEST_STATUSES",
    "NAMING_CONVENTION",
    "ProxyEstimate",
    "ScatterBootstrap",
    "Store",
]
