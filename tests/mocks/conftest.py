"""Small mock catalogues shared by the mock tests (generated once per test session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mocks import MockCatalogue, MockConfig, generate

# Two snapshots keep the per-snapshot set-up (mass function, interloper field) cheap.
SMALL = dict(n_clusters=240, seed=11, snapshot_redshifts=(0.1, 0.4), batch_size=32)


@pytest.fixture(scope="session")
def small_config() -> MockConfig:
    return MockConfig(**SMALL)


@pytest.fixture(scope="session")
def small_cat(small_config: MockConfig) -> MockCatalogue:
    return generate(small_config)


@pytest.fixture(scope="session")
def written_cat(small_cat: MockCatalogue, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mock") / "cat"
    small_cat.write(out)
    return out
