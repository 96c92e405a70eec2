"""Mass models: the CNNs of Ho et al. (2023), preprocessing, cross-validation and baselines.

Pure science (numpy, scipy, astropy, torch): no database, service or orchestration imports.
Modules are imported as ``from models import training`` etc.; the most used names are
re-exported here.
"""

from models.config import RunConfig, paper_config
from models.data import ClusterArrays, RaggedGalaxies
from models.errors import (
    CheckpointError,
    DataError,
    KDEError,
    ModelConfigError,
    ModelsError,
    ProxyError,
)
from models.inference import ModelState, predict
from models.preprocessing import Preprocessing, fit_preprocessing
from models.registry import NETWORKS, NetworkName, build_network
from models.training import FoldResult, TrainProgress, train_fold

__all__ = [
    "RunConfig",
    "paper_config",
    "ClusterArrays",
    "RaggedGalaxies",
    "CheckpointError",
    "DataError",
    "KDEError",
    "ModelConfigError",
    "ModelsError",
    "ProxyError",
    "ModelState",
    "predict",
    "Preprocessing",
    "fit_preprocessing",
    "NETWORKS",
    "NetworkName",
    "build_network",
    "FoldResult",
    "TrainProgress",
    "train_fold",
]
