"""Read what an attribution job needs from a run directory, and write its products to files.

A run directory is the record written by :func:`models.runio.write_run` (``config.yaml``,
``folds.json`` with the test fold of every cluster, ``fold_<k>_m<j>/`` weights and
preprocessing). Attributions use ensemble member 0 of each fold (a deep ensemble's members
explain the same data; averaging their maps is left for later).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.attribution.errors import AttributionError
from models.attribution.population import PopulationAttribution
from models.config import RunConfig
from models.errors import CheckpointError
from models.inference import ModelState
from models.preprocessing import Preprocessing
from models.runio import load_fold

__all__ = ["RunModels", "load_run_models", "write_population"]


@dataclass
class RunModels:
    """The per-fold models of a run and the test fold of every cluster.

    Attributes
    ----------
    config : RunConfig
        The run's configuration.
    folds : ndarray of int, shape (N,)
        Test fold of every cluster, in the order of the arrays the run was trained on.
    model_states : dict of int to ModelState
        Member ``member`` of each fold that has weights.
    preprocessing : dict of int to Preprocessing
        Their training-fold statistics.
    """

    config: RunConfig
    folds: np.ndarray
    model_states: dict[int, ModelState]
    preprocessing: dict[int, Preprocessing]


def load_run_models(run_dir: str | Path, *, member: int = 0) -> RunModels:
    """Load config, fold assignment and every fold's model of a run directory.

    Raises
    ------
    CheckpointError
        ``config.yaml`` or ``folds.json`` is missing, or no fold has weights.
    """
    d = Path(run_dir)
    cfg_path, folds_path = d / "config.yaml", d / "folds.json"
    for p in (cfg_path, folds_path):
        if not p.is_file():
            raise CheckpointError(f"{p} does not exist: {d} is not a complete run directory")
    config = RunConfig.from_config(cfg_path)
    folds = np.asarray(json.loads(folds_path.read_text())["fold"], dtype=np.int64)
    states, pres = {}, {}
    for f in np.unique(folds).tolist():
        try:
            loaded = load_fold(d, int(f), member)
        except CheckpointError:
            continue  # a partial run (cv.folds) has weights for some folds only
        states[int(f)], pres[int(f)] = loaded.model_state, loaded.preprocessing
    if not states:
        raise CheckpointError(f"no fold of {d} has weights for member {member}")
    return RunModels(config, folds, states, pres)


def write_population(result: PopulationAttribution, out_dir: str | Path) -> dict[str, Path]:
    """Write ``<method>.npz`` (:meth:`PopulationAttribution.to_arrays`) and ``<method>.json``.

    The JSON holds the population summary and the per-cluster rows. Returns name -> path.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not len(result):
        raise AttributionError("nothing to write: the result holds no cluster")
    npz = out / f"{result.method}.npz"
    np.savez_compressed(npz, **result.to_arrays())
    js = out / f"{result.method}.json"
    js.write_text(
        json.dumps({"summary": result.summary, "rows": result.rows()}, indent=1, allow_nan=False)
    )
    return {"npz": npz, "json": js}
