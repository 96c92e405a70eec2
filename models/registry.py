"""Pick a mass network by name from a ``{kind, args}`` config."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, Literal, get_args

from models.errors import ModelConfigError
from models.networks import MassNetwork, MultiBandCNN, MultiModalCNN, SingleBandCNN

__all__ = ["NetworkName", "NETWORKS", "build_network", "network_class"]

NetworkName = Literal["single", "multi", "multimodal"]

NETWORKS: dict[str, type[MassNetwork]] = {
    "single": SingleBandCNN,
    "multi": MultiBandCNN,
    "multimodal": MultiModalCNN,
}
assert set(NETWORKS) == set(get_args(NetworkName))


def network_class(kind: str) -> type[MassNetwork]:
    """Return the class registered as ``kind``; :class:`ModelConfigError` lists valid names."""
    try:
        return NETWORKS[kind]
    except KeyError:
        raise ModelConfigError(
            f"unknown network kind {kind!r}; choose one of {sorted(NETWORKS)}"
        ) from None


def build_network(spec: Mapping[str, Any] | Any) -> MassNetwork:
    """Build a network from ``{"kind": name, "args": {...}}`` (a mapping or a model with those).

    Raises
    ------
    ModelConfigError
        Unknown ``kind`` or an argument the network does not take (the message lists both the
        valid names and the accepted arguments).
    """
    kind = spec["kind"] if isinstance(spec, Mapping) else spec.kind
    args = dict((spec.get("args") if isinstance(spec, Mapping) else spec.args) or {})
    cls = network_class(kind)
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(args) - set(accepted))
    if unknown:
        raise ModelConfigError(
            f"network {kind!r} does not take {unknown}; accepted arguments: {accepted}"
        )
    return cls(**args)
