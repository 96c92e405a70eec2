"""The three networks: parameter counts from the paper's layer list, padding, tiling, registry."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.config import RunConfig
from models.errors import ModelConfigError
from models.networks import Conv2dSame, MultiModalCNN, count_parameters, same_padding
from models.registry import NETWORKS, build_network
from models.training import parameter_groups


def conv(c_in: int, c_out: int, k: int, dims: int = 2) -> int:
    """Kernel k^dims x c_in x c_out plus c_out biases."""
    return k**dims * c_in * c_out + c_out


def dense(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


# Ho et al. 2023 / authors' notebook layer lists, counted by hand.
SINGLE = (
    conv(1, 24, 5)  # 624
    + conv(24, 10, 3)  # 2,170
    + conv(10, 24, 5)  # 6,024   after MaxPool 4: 128 -> 32
    + conv(24, 10, 3)  # 2,170   then MaxPool 2: 32 -> 16, flatten 16*16*10 = 2,560
    + dense(16 * 16 * 10, 128)  # 327,808
    + dense(128, 128)  # 16,512
    + dense(128, 64)  # 8,256
    + dense(64, 1)  # 65
)
MULTI = SINGLE - conv(1, 24, 5) + conv(3, 24, 5)  # first conv 1,824
MULTIMODAL = (
    conv(4, 24, 5, 3)  # 12,024  64^3 -> 60^3, pool -> 30
    + conv(24, 16, 3, 3)  # 10,384  -> 28, pool -> 14
    + conv(16, 8, 1, 3)  # 136     -> 14, pool -> 7; flatten 7^3 * 8 = 2,744
    + dense(7**3 * 8, 128)  # 351,360
    + conv(3, 24, 5)  # 1,824   stride 2: 128 -> 64
    + conv(24, 10, 3)  # 2,170   stride 2: -> 32, pool 4 -> 8
    + conv(10, 24, 5)  # 6,024   stride 2: -> 4
    + conv(24, 10, 3)  # 2,170   -> 4, pool 2 -> 2; flatten 2*2*10 = 40
    + dense(40, 128)  # 5,248
    + dense(256, 128)  # 32,896
    + dense(128, 64)  # 8,256
    + dense(64, 1)  # 65
)


def test_hand_counts_match_paper_totals() -> None:
    assert (SINGLE, MULTI, MULTIMODAL) == (363_629, 364_829, 432_557)


@pytest.mark.parametrize(
    ("kind", "expected"), [("single", SINGLE), ("multi", MULTI), ("multimodal", MULTIMODAL)]
)
def test_parameter_counts(kind: str, expected: int) -> None:
    assert count_parameters(build_network({"kind": kind})) == expected


def test_input_size_sets_dense_width() -> None:
    net = build_network({"kind": "single", "args": {"input_size": 32}})
    # 32 -> pool 4 -> 8 -> pool 2 -> 4: flatten 4*4*10 = 160
    assert net.flat_features == 160
    assert count_parameters(net) == SINGLE - dense(2560, 128) + dense(160, 128)
    out = net(torch.randn(3, 1, 32, 32))
    assert out.shape == (3, 1)


def test_gaussian_head_has_two_outputs() -> None:
    net = build_network({"kind": "multi", "args": {"input_size": 32, "head": "gaussian"}})
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 2)
    assert count_parameters(net) == MULTI - dense(2560, 128) + dense(160, 128) + 65


@pytest.mark.parametrize(
    ("size", "k", "s"), [(128, 5, 2), (64, 3, 2), (8, 5, 2), (4, 3, 1), (7, 4, 1)]
)
def test_same_padding_is_tensorflows(size: int, k: int, s: int) -> None:
    conv_same = Conv2dSame(2, 3, k, stride=s)
    x = torch.randn(1, 2, size, size)
    top, bottom = same_padding(size, k, s)
    # TensorFlow: output ceil(n/s), total padding split with the smaller half first.
    assert top + bottom == max((-(-size // s) - 1) * s + k - size, 0)
    assert top <= bottom
    ref = F.conv2d(F.pad(x, (top, bottom, top, bottom)), conv_same.weight, conv_same.bias, stride=s)
    out = conv_same(x)
    assert out.shape[-1] == -(-size // s)
    torch.testing.assert_close(out, ref)


def test_multimodal_tiles_image_along_velocity() -> None:
    net = MultiModalCNN(image_size=64, cube_size=16)
    image = torch.randn(2, 3, 64, 64)
    kde = torch.randn(2, 1, 16, 16, 16)
    merged = net.merge_inputs(image, kde)
    pooled = F.avg_pool2d(image, 4)
    assert merged.shape == (2, 4, 16, 16, 16)
    torch.testing.assert_close(merged[:, :1], kde)
    for v in (0, 7, 15):  # every velocity slice is the sky-plane image, in the cube's (x, y)
        torch.testing.assert_close(merged[:, 1:, :, :, v], pooled.transpose(-2, -1))
    with pytest.raises(ModelConfigError, match="KDE cube"):
        net(image, None)


def test_too_small_input_names_the_argument() -> None:
    with pytest.raises(ModelConfigError, match="image_size"):
        build_network({"kind": "multimodal", "args": {"image_size": 32, "cube_size": 16}})


def test_registry_rejects_unknown_names_and_args() -> None:
    with pytest.raises(
        ModelConfigError, match=r"choose one of \['multi', 'multimodal', 'single'\]"
    ):
        build_network({"kind": "resnet"})
    with pytest.raises(ModelConfigError, match="accepted arguments"):
        build_network({"kind": "single", "args": {"widht": 3}})
    assert set(NETWORKS) == {"single", "multi", "multimodal"}


def test_config_rejects_unknown_kind_and_keys() -> None:
    with pytest.raises(ModelConfigError, match="choose one of"):
        RunConfig.from_config(model={"kind": "vit"})
    with pytest.raises(ValueError, match="max_epoch"):
        RunConfig.from_config(model={"kind": "single"}, training={"max_epoch": 3})


def test_l2_only_on_kernels() -> None:
    net = build_network({"kind": "multimodal"})
    decay, no_decay = parameter_groups(net, 1e-4)
    assert decay["weight_decay"] == pytest.approx(2e-4)  # Keras L2(1e-4): grad 2e-4 w
    assert no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"])
    assert all(p.dim() == 1 for p in no_decay["params"])
    n_layers = 7 + 5  # 3-D convs 3 + 2-D convs 4 = 7 kernels; dense 128, 128, 128, 64, 1 = 5
    assert len(decay["params"]) == n_layers == len(no_decay["params"])


def test_keras_initialisation() -> None:
    net = build_network({"kind": "single"})
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d | torch.nn.Linear):
            assert torch.count_nonzero(m.bias) == 0
            fan_in = m.weight[0].numel()
            fan_out = m.weight.shape[0] * m.weight[0, 0].numel()
            limit = (6 / (fan_in + fan_out)) ** 0.5  # Glorot uniform
            assert m.weight.abs().max() <= limit
            assert m.weight.abs().max() > 0.8 * limit


def test_shipped_configs_validate() -> None:
    from pathlib import Path

    import yaml

    configs = [  # run configs define a model; others (e.g. mock_default.yaml) are for mocks
        p
        for p in sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))
        if "model" in (yaml.safe_load(p.read_text()) or {})
    ]
    assert {p.stem for p in configs} >= {"single", "multi", "multimodal"}
    for path in configs:
        cfg = RunConfig.from_config(path)
        net = cfg.build_network()
        assert count_parameters(net) > 0
    paper = {p.stem: RunConfig.from_config(p) for p in configs}
    assert count_parameters(paper["single"].build_network()) == SINGLE
    assert count_parameters(paper["multimodal"].build_network()) == MULTIMODAL
    assert (paper["multi"].training.loss, paper["multimodal"].training.batch_size) == ("mae", 100)


def test_run_key_is_canonical_config_hash() -> None:
    a = RunConfig.from_config(model={"kind": "single"}, training={"seed": 1})
    b = RunConfig.from_config(training={"seed": 1}, model={"kind": "single", "args": {}})
    assert a.key() == b.key() and len(a.key()) == 64
    assert a.key() != RunConfig.from_config(model={"kind": "single"}, training={"seed": 2}).key()


def test_multimodal_image_and_galaxies_share_the_sky_plane() -> None:
    """Emission and galaxies at the same sky offset land in the same cube column."""
    from models.kde import kde_cube

    rng = np.random.default_rng(3)
    x0, y0 = 1.2, -0.8  # h^-1 Mpc: a clump off-centre along +x and -y
    gx = x0 + 0.05 * rng.standard_normal(200)
    gy = y0 + 0.05 * rng.standard_normal(200)
    gv = 300.0 * rng.standard_normal(200)
    cube = kde_cube(gx, gy, gv, n_grid=16)
    ix, iy, _ = np.unravel_index(np.argmax(cube), cube.shape)

    image = torch.zeros(1, 3, 64, 64)  # [band, y, x] over +-2.3 h^-1 Mpc
    pix = 4.6 / 64
    row, col = int((y0 + 2.3) / pix), int((x0 + 2.3) / pix)
    image[:, :, row, col] = 1.0
    net = MultiModalCNN(image_size=64, cube_size=16)
    merged = net.merge_inputs(image, torch.as_tensor(cube)[None, None].float())
    plane = merged[0, 1, :, :, 0]
    jx, jy = np.unravel_index(int(torch.argmax(plane)), plane.shape)
    assert (jx, jy) == (ix, iy)
