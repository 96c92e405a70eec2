"""Config validation: defaults, YAML loading, and bad input naming the parameter."""

from __future__ import annotations

from pathlib import Path

import pytest

from mocks import MockConfig, MockParameterError
from mocks.config import deep_update

ROOT = Path(__file__).resolve().parents[2]


def test_default_yaml_equals_code_defaults() -> None:
    assert MockConfig.from_yaml(ROOT / "configs" / "mock_default.yaml") == MockConfig()


def test_yaml_overrides_merge_deeply(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("n_clusters: 10\nxray:\n  exposure_median_s: 1000.0\n")
    cfg = MockConfig.from_yaml(path, seed=4, xray={"psf_hew_arcsec": 30.0})
    assert (cfg.n_clusters, cfg.seed) == (10, 4)
    assert cfg.xray.exposure_median_s == 1000.0  # from the file
    assert cfg.xray.psf_hew_arcsec == 30.0  # override merged, not replacing the section
    assert cfg.xray.bands_kev == MockConfig().xray.bands_kev


def test_deep_update_replaces_leaves_only() -> None:
    assert deep_update({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"b": 5}}) == {
        "a": {"b": 5, "c": 2},
        "d": 3,
    }


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"n_clusters": 0}, "n_clusters"),
        ({"n_clusters": -5}, "n_clusters"),
        ({"log10_m500c_min": -13.5}, "log10_m500c_min"),
        ({"snapshot_redshifts": (0.1, 3.0)}, "snapshot_redshifts"),
        ({"snapshot_redshifts": (0.3, 0.1)}, "snapshot_redshifts"),
        ({"xray": {"bands_kev": ((0.05, 0.3),)}}, "xray.bands_kev"),
        ({"xray": {"bands_kev": ((2.0, 15.0),)}}, "xray.bands_kev"),
        ({"xray": {"exposure_median_s": -1.0}}, "xray.exposure_median_s"),
        ({"cosmology": "EdS"}, "cosmology"),
        ({"box_size": 0.0}, "box_size"),
        ({"icm": {"cool_core_fraction": 1.5}}, "icm.cool_core_fraction"),
        ({"scaling": {"scatter": {"T": 0.1}}}, "scaling.scatter"),
        ({"galaxies": {"los_window_km_s": -3785.0}}, "galaxies.los_window_km_s"),
    ],
)
def test_bad_input_names_the_parameter(kwargs: dict, parameter: str) -> None:
    with pytest.raises(MockParameterError) as info:
        MockConfig(**kwargs)
    assert info.value.parameter == parameter
    assert str(info.value).startswith(parameter)


def test_unknown_parameter_lists_valid_ones() -> None:
    with pytest.raises(MockParameterError, match="valid parameters here:.*exposure_median_s"):
        MockConfig(xray={"exposure": 2000})


def test_non_positive_definite_correlation_is_rejected() -> None:
    corr = [[1.0 if i == j else 0.9 for j in range(6)] for i in range(6)]
    corr[0][1] = corr[1][0] = -0.9
    with pytest.raises(MockParameterError, match="scaling.correlation"):
        MockConfig(scaling={"correlation": corr})


def test_missing_and_malformed_yaml(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        MockConfig.from_yaml(tmp_path / "nope.yaml")
    bad = tmp_path / "list.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(MockParameterError, match="mapping"):
        MockConfig.from_yaml(bad)


def test_config_is_frozen_and_serialisable() -> None:
    cfg = MockConfig(n_clusters=7)
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises its own frozen error
        cfg.n_clusters = 8  # type: ignore[misc]
    assert MockConfig(**cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    ("preset", "path"),
    [("erass", "mock_erass.yaml"), ("erass", "mock_default.yaml"), ("paper", "mock_paper.yaml")],
)
def test_preset_yaml_equals_code_preset(preset: str, path: str) -> None:
    assert MockConfig.from_yaml(ROOT / "configs" / path) == MockConfig.from_preset(preset)


def test_unknown_preset_is_named() -> None:
    with pytest.raises(MockParameterError, match="preset"):
        MockConfig.from_preset("magneticum")
