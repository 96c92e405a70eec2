"""Parameters of jobs, declared once and shared by the CLI, the flows, the Celery tasks and the jobs.

A Celery task receives ``params.model_dump()`` (JSON) and validates it back; a Prefect flow takes
the model itself (Prefect shows its fields as the flow-run parameters). Light on purpose: pydantic
only, so the CLI can build one without importing torch.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AttributionMethod", "AttributeParams"]

AttributionMethod = Literal["saliency", "integrated_gradients", "smoothgrad"]


class AttributeParams(BaseModel):
    """What to attribute: a run's clusters (all, or a seeded random subset), which methods."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: int = Field(gt=0, description="Model run id")
    methods: tuple[AttributionMethod, ...] = Field(
        default=("saliency",), min_length=1, description="Attribution methods"
    )
    max_clusters: int | None = Field(
        default=None, gt=0, description="Random subset size (seeded); None = every cluster"
    )
    n_boot: int = Field(default=1000, ge=0, description="Bootstrap resamples of the summaries")
    seed: int = Field(default=0, description="Seed of the subset and of the bootstrap")
