"""Experiment configuration of a mass-model run (validated by pydantic, stored as YAML).

The paper's settings (Ho et al. 2023, arXiv:2303.00005, Sect. 3) are the defaults of
:func:`paper_config`; a YAML file overrides only what it names, and code or tests override
single keys with ``RunConfig.from_config(path, training={"max_epochs": 2})``.

The run key is the sha256 of the canonical JSON of the full, validated configuration, so two
runs with the same key were asked for exactly the same thing.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models.errors import ModelConfigError
from models.registry import NETWORKS, NetworkName, build_network
from models.runtime import PrecisionSetting

__all__ = [
    "NetworkSpec",
    "TrainingConfig",
    "KDEConfig",
    "DataConfig",
    "CVConfig",
    "RunConfig",
    "paper_config",
    "deep_update",
    "LossName",
]

LossName = Literal["mse", "mae", "gaussian_nll"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NetworkSpec(_Strict):
    """Which network and its constructor arguments (``models.registry.NETWORKS``)."""

    kind: NetworkName
    args: dict[str, Any] = Field(default_factory=dict)


class TrainingConfig(_Strict):
    """Optimiser, loss, early stopping and execution settings."""

    learning_rate: float = Field(1e-3, gt=0)
    batch_size: int = Field(50, ge=1)
    max_epochs: int = Field(200, ge=1)
    patience: int = Field(20, ge=1)
    val_fraction: float = Field(0.1, gt=0, lt=1)
    loss: LossName = "mse"
    #: Keras ``L2(l2)`` coefficient on kernels: the loss gains ``l2 * sum(w**2)``, i.e. Adam
    #: weight decay ``2 * l2`` on the kernel parameter group (biases are not decayed).
    l2: float = Field(1e-4, ge=0)
    seed: int = 0
    device: str = "auto"
    #: Allow mixed precision under ``precision: auto`` (False: auto means fp32 everywhere).
    amp: bool = True
    #: ``auto``: bf16 autocast only where the hardware computes bf16 natively (CUDA with bf16,
    #: else fp16; CPUs with AVX512-BF16 or AMX-BF16), fp32 elsewhere; ``fp32``: never autocast;
    #: ``bf16``: always (emulated, slower, on other CPUs). The precision actually used is logged
    #: and recorded in each fold's history (``models.runtime.resolve_precision``).
    precision: PrecisionSetting = "auto"
    #: NHWC memory format (oneDNN's fast path for these small convolutions on CPU).
    channels_last: bool = True
    #: On CPU only: split each batch into chunks of this size for the forward/backward pass
    #: and accumulate gradients before one optimiser step (the same update as the full batch).
    #: GPUs always run the full batch. None: no split. ``auto`` (default): the full batch for
    #: the image CNNs in a process with the tuned allocator (the CLI's), else 10
    #: (``models.runtime.resolve_cpu_micro_batch``): chunks of 10 were +25-60% images/s with
    #: glibc's default allocator, the full batch is +24% over them with the tuned one
    #: (benchmarks/bench_train_step.py). A speed setting: ``auto`` keeps the run key of 10.
    cpu_micro_batch: Annotated[int, Field(ge=1)] | Literal["auto"] | None = "auto"
    #: torch intra-op threads (None: leave torch's default).
    num_threads: int | None = Field(None, ge=1)
    #: Batch of validation/test forward passes on GPUs (on CPU: the micro-batch, else the batch).
    eval_batch_size: int = Field(256, ge=1)

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v not in ("auto", "cpu", "cuda") and not v.startswith("cuda:"):
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {v!r}")
        return v


class KDEConfig(_Strict):
    """Galaxy KDE cube settings (paper: 64 bins, +-2.3 h^-1 Mpc, +-3785 km/s, bw 0.15)."""

    n_grid: int = Field(64, ge=4)
    half_width_mpc_h: float = Field(2.3, gt=0)
    half_width_km_s: float = Field(3785.0, gt=0)
    bw_method: float = Field(0.15, gt=0)
    cache_dir: str | None = None


class DataConfig(_Strict):
    """Input preparation."""

    reference_counts: float = Field(4000.0, gt=0)
    kde: KDEConfig = Field(default_factory=KDEConfig)


class CVConfig(_Strict):
    """Cross-validation: 8 spatial octant folds (paper) or leave-one-snapshot-out."""

    scheme: Literal["octants", "snapshot"] = "octants"
    box_size: float = Field(352.0, gt=0)
    #: Train only these folds (None: all). Out-of-fold predictions then cover those folds.
    folds: list[int] | None = None


#: (section, setting, default) added after run keys were in use; omitted from the key at default.
_KEY_NEUTRAL_DEFAULTS: tuple[tuple[str, str, Any], ...] = (("training", "precision", "auto"),)
#: (section, setting, value, hashed as): defaults that replaced an earlier default with the same
#: update, hashed as that earlier value so existing run keys hold (``auto`` micro-batching
#: sums the same gradients as chunks of 10; only the order of floating-point sums differs).
_KEY_LEGACY_VALUES: tuple[tuple[str, str, Any, Any], ...] = (
    ("training", "cpu_micro_batch", "auto", 10),
)


class RunConfig(_Strict):
    """Everything that defines a run; hashed into the run key."""

    name: str | None = None
    model: NetworkSpec
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    cv: CVConfig = Field(default_factory=CVConfig)
    #: Deep-ensemble members per fold (different seeds); 1 = a single network as the paper.
    ensemble: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        head = self.model.args.get("head", "point")
        if (self.training.loss == "gaussian_nll") != (head == "gaussian"):
            raise ValueError(
                "training.loss 'gaussian_nll' goes with model.args.head 'gaussian' and "
                f"vice versa; got loss {self.training.loss!r} with head {head!r}"
            )
        return self

    def canonical_json(self) -> str:
        """Sorted, compact JSON of the full configuration.

        Settings added after run keys were first stored are left out while they hold their
        default (``_KEY_NEUTRAL_DEFAULTS``), so configurations that do not use them keep their
        run key.
        """
        data = self.model_dump(mode="json")
        for section, name, default in _KEY_NEUTRAL_DEFAULTS:
            if data[section].get(name) == default:
                del data[section][name]
        for section, name, value, legacy in _KEY_LEGACY_VALUES:
            if data[section].get(name) == value:
                data[section][name] = legacy
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    def key(self) -> str:
        """sha256 of :meth:`canonical_json` (the run key)."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    def to_yaml(self) -> str:
        """YAML with every setting spelled out."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    def build_network(self):
        """Build the network of this configuration."""
        return build_network(self.model)

    @classmethod
    def from_config(cls, path: str | Path | None = None, **overrides: Any) -> RunConfig:
        """Paper defaults for the model kind, updated by a YAML file, then by ``overrides``.

        Parameters
        ----------
        path : path, optional
            YAML file with any subset of the keys (must give ``model.kind`` unless an override
            does).
        **overrides
            Nested mappings merged last, e.g. ``training={"max_epochs": 2}``.
        """
        data: dict[str, Any] = {}
        if path is not None:
            p = Path(path)
            if not p.is_file():
                raise FileNotFoundError(f"config file {p} does not exist")
            loaded = yaml.safe_load(p.read_text()) or {}
            if not isinstance(loaded, Mapping):
                raise ModelConfigError(f"config file {p} must hold a mapping at top level")
            data = dict(loaded)
        data = deep_update(data, overrides)
        kind = (data.get("model") or {}).get("kind")
        if kind is None:
            raise ModelConfigError(
                f"the config must set model.kind; choose one of {sorted(NETWORKS)}"
            )
        if kind not in NETWORKS:
            raise ModelConfigError(f"unknown model.kind {kind!r}; choose one of {sorted(NETWORKS)}")
        merged = deep_update(paper_config(kind), data)
        return cls.model_validate(merged)


def paper_config(kind: NetworkName) -> dict[str, Any]:
    """Return the paper's settings for ``kind`` as a plain dict (Ho et al. 2023, Sect. 3.1-3.3).

    single: MSE, batch 50, <= 200 epochs; multi: MAE, batch 50, <= 200 epochs, dropout 0.1;
    multimodal: MSE, batch 100, <= 400 epochs, dropout 0.1. Patience 20, Adam 1e-3, L2 1e-4.
    """
    if kind not in NETWORKS:
        raise ModelConfigError(f"unknown network kind {kind!r}; choose one of {sorted(NETWORKS)}")
    training: dict[str, Any] = {"loss": "mse", "batch_size": 50, "max_epochs": 200}
    if kind == "multi":
        training["loss"] = "mae"
    if kind == "multimodal":
        training.update(batch_size=100, max_epochs=400)
    return {"model": {"kind": kind, "args": {}}, "training": training}


def deep_update(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge: mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(dict(base))
    for k, v in update.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_update(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out
