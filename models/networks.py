"""The three mass networks of Ho et al. (2023, arXiv:2303.00005), layer for layer.

Read from the authors' Keras notebook (``McWilliamsCenter/halo_cnn``,
``notebooks/run-multi-final.ipynb``; see ``science.md`` "Networks"):

- every conv and hidden dense layer is followed by ReLU, the output is ``Dense(1)`` linear;
- pools use stride = pool size and 'valid' padding;
- convolutions with ``padding='same'`` follow TensorFlow's rule, which pads
  ``max((ceil(n/s) - 1) s + k - n, 0)`` pixels with the smaller half *before* (this differs
  from a symmetric torch padding for stride 2);
- kernels start Glorot-uniform and biases zero (Keras defaults);
- L2(1e-4) acts on kernels only: :func:`models.training.parameter_groups` puts biases in a
  group without weight decay.

Deviation (fix of flaw 1 in ``science.md``): the multimodal network tiles the pooled image along
the *velocity* axis of the KDE cube, so image pixel (i, j) lines up with cube voxels (i, j, :)
i.e. the sky plane (x, y); the authors' code tiled along y.

Computation (not architecture): the multimodal network's first ``Conv3d(4, 24, 5)`` is
evaluated in factorised form, a Conv3d of the KDE channel plus a broadcast Conv2d of the pooled
image with the kernel summed over velocity (exact, because the tiled image is constant along
velocity and the layer has no padding; :meth:`MultiModalCNN.features3d`). Parameters and
checkpoints are those of the plain layer.

Beyond the paper, ``head="gaussian"`` replaces the output ``Dense(1)`` by ``Dense(2)``
(mean and log-variance, in scaled-target units) for a heteroscedastic Gaussian-NLL loss.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from models.errors import ModelConfigError

__all__ = [
    "HeadKind",
    "Conv2dSame",
    "MassNetwork",
    "SingleBandCNN",
    "MultiBandCNN",
    "MultiModalCNN",
    "same_padding",
    "count_parameters",
]

HeadKind = Literal["point", "gaussian"]


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'same' padding ``(before, after)`` of one axis."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class Conv2dSame(nn.Conv2d):
    """``Conv2d`` with Keras/TensorFlow ``padding='same'`` semantics for any stride.

    Stride 1 with an odd kernel pads symmetrically inside the convolution (fast path);
    otherwise the input is zero-padded asymmetrically as TensorFlow does.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1):
        symmetric = stride == 1 and kernel_size % 2 == 1
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2 if symmetric else 0,
        )
        self._symmetric = symmetric

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve with 'same' padding."""
        if not self._symmetric:
            k, s = self.kernel_size[0], self.stride[0]
            top, bottom = same_padding(x.shape[-2], k, s)
            left, right = same_padding(x.shape[-1], k, s)
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


def _conv_same(size: int, stride: int) -> int:
    return math.ceil(size / stride)


def _pool(size: int, pool: int) -> int:
    return size // pool


def _check(size: int, what: str, cls: str, arg: str) -> int:
    if size < 1:
        raise ModelConfigError(
            f"{cls}: the input is too small, {what} has size {size}; increase {arg}"
        )
    return size


def _init_keras(module: nn.Module) -> None:
    """Keras defaults: Glorot-uniform kernels, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.Conv3d | nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _dense_stack(widths: list[int], dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU(inplace=True)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def count_parameters(model: nn.Module) -> int:
    """Return the number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class MassNetwork(nn.Module):
    """Common interface: ``forward(image, kde=None)`` -> (B, 1) or (B, 2) for a Gaussian head."""

    bands: ClassVar[Literal["single", "multi"]]
    needs_kde: ClassVar[bool] = False
    head: HeadKind

    def _make_head(self, width: int, head: HeadKind) -> nn.Linear:
        if head not in ("point", "gaussian"):
            raise ModelConfigError(f"head must be 'point' or 'gaussian'; got {head!r}")
        self.head = head
        return nn.Linear(width, 1 if head == "point" else 2)


class _ImageCNN(MassNetwork):
    """Shared body of the single-band and multiband CNNs (Ho et al. 2023, Sect. 3.1)."""

    in_channels: ClassVar[int]
    default_dropout: ClassVar[float]

    def __init__(
        self,
        input_size: int = 128,
        dropout: float | None = None,
        head: HeadKind = "point",
    ) -> None:
        super().__init__()
        name = type(self).__name__
        c = self.in_channels
        self.input_size = int(input_size)
        self.dropout = self.default_dropout if dropout is None else float(dropout)
        self.features = nn.Sequential(
            Conv2dSame(c, 24, 5),
            nn.ReLU(inplace=True),
            Conv2dSame(24, 10, 3),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(4),
            Conv2dSame(10, 24, 5),
            nn.ReLU(inplace=True),
            Conv2dSame(24, 10, 3),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        side = _check(
            _pool(_pool(self.input_size, 4), 2), "the last feature map", name, "input_size"
        )
        self.flat_features = 10 * side * side  # 2,560 at 128 x 128
        self.dense = _dense_stack([self.flat_features, 128, 128, 64], self.dropout)
        self.out = self._make_head(64, head)
        _init_keras(self)

    def forward(self, image: torch.Tensor, kde: torch.Tensor | None = None) -> torch.Tensor:
        """Map standardised images (B, C, H, W) to the scaled target (B, 1) or (B, 2)."""
        return self.out(self.dense(torch.flatten(self.features(image), 1)))


class SingleBandCNN(_ImageCNN):
    """Single-band CNN: 128x128x1 (0.5-7 keV counts), 363,629 parameters; no dropout."""

    bands = "single"
    in_channels = 1
    default_dropout = 0.0


class MultiBandCNN(_ImageCNN):
    """Multiband CNN: 128x128x3, 364,829 parameters; Dropout 0.1 after each hidden Dense."""

    bands = "multi"
    in_channels = 3
    default_dropout = 0.1


class MultiModalCNN(MassNetwork):
    """Multimodal CNN: KDE cube of (x, y, v_los) + 3-band image; 432,557 parameters.

    Parameters
    ----------
    image_size : int
        Side of the input image (paper 128).
    cube_size : int
        Side of the KDE cube (paper 64); ``image_size`` must be a multiple of it (the image is
        average-pooled by ``image_size // cube_size`` before tiling).
    dropout : float
        Dropout after every hidden Dense (paper 0.1).
    head : {"point", "gaussian"}
        Output head.
    """

    bands = "multi"
    needs_kde = True

    def __init__(
        self,
        image_size: int = 128,
        cube_size: int = 64,
        dropout: float = 0.1,
        head: HeadKind = "point",
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if image_size % cube_size:
            raise ModelConfigError(
                f"{name}: image_size ({image_size}) must be a multiple of cube_size ({cube_size})"
            )
        self.image_size, self.cube_size = int(image_size), int(cube_size)
        self.pool_factor = self.image_size // self.cube_size
        self.dropout = float(dropout)
        self.branch3d = nn.Sequential(
            nn.Conv3d(4, 24, 5),
            nn.ReLU(inplace=True),
            nn.MaxPool3d(2),
            nn.Conv3d(24, 16, 3),
            nn.ReLU(inplace=True),
            nn.MaxPool3d(2),
            nn.Conv3d(16, 8, 1),
            nn.ReLU(inplace=True),
            nn.MaxPool3d(2),
        )
        s3 = _pool(_pool(_pool(self.cube_size - 4, 2) - 2, 2), 2)
        self.flat3d = (
            8 * _check(s3, "the last 3-D feature map", name, "cube_size") ** 3
        )  # 2,744 at 64^3
        self.dense3d = _dense_stack([self.flat3d, 128], self.dropout)
        self.branch2d = nn.Sequential(
            Conv2dSame(3, 24, 5, stride=2),
            nn.ReLU(inplace=True),
            Conv2dSame(24, 10, 3, stride=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(4),
            Conv2dSame(10, 24, 5, stride=2),
            nn.ReLU(inplace=True),
            Conv2dSame(24, 10, 3),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        s2 = _pool(_conv_same(_pool(_conv_same(_conv_same(self.image_size, 2), 2), 4), 2), 2)
        self.flat2d = (
            10 * _check(s2, "the last 2-D feature map", name, "image_size") ** 2
        )  # 40 at 128^2
        self.dense2d = _dense_stack([self.flat2d, 128], self.dropout)
        self.merge = _dense_stack([256, 128, 64], self.dropout)
        self.out = self._make_head(64, head)
        _init_keras(self)

    def forward(self, image: torch.Tensor, kde: torch.Tensor | None = None) -> torch.Tensor:
        """Map image (B, 3, H, W) and KDE cube (B, 1, D, D, D) to (B, 1) or (B, 2)."""
        a = self.dense3d(torch.flatten(self.features3d(image, kde), 1))
        b = self.dense2d(torch.flatten(self.branch2d(image), 1))
        return self.out(self.merge(torch.cat([a, b], dim=1)))

    def features3d(
        self, image: torch.Tensor, kde: torch.Tensor | None, *, factorised: bool = True
    ) -> torch.Tensor:
        """Output of the 3-D branch (before flattening) for image and KDE cube.

        The paper's layer is ``Conv3d(4, 24, 5)`` (no padding) over the merged cube of
        :meth:`merge_inputs`. Channels 1-3 of that cube are the pooled image, constant along
        the velocity axis (the last one), so their part of the convolution is a 2-D convolution
        of the pooled ``(x, y)`` image with the kernel summed over its velocity axis, the same
        for every output velocity bin. With ``factorised`` (the default, used by
        :meth:`forward`) the layer is computed that way: a ``Conv3d`` of the KDE channel with
        ``weight[:, :1]`` plus a broadcast ``Conv2d`` of the image with
        ``weight[:, 1:].sum(-1)`` and the bias. It is the same function (up to float rounding
        order) with the same parameters, at ~1/4 of the layer's multiply-adds, and the tiled
        4-channel cube is never built. ``factorised=False`` runs the plain ``Conv3d`` over
        :meth:`merge_inputs` (the reference the tests compare against).

        Parameters
        ----------
        image : Tensor, shape (B, 3, H, W)
            Standardised 3-band image, ``[band, y, x]``.
        kde : Tensor, shape (B, 1, D, D, D)
            Standardised KDE cube, ``(x, y, v)``.
        factorised : bool
            Factorised first layer (True) or the plain ``Conv3d`` over the merged cube.

        Returns
        -------
        Tensor, shape (B, 8, s, s, s)
            ``s = 7`` at ``cube_size=64``.
        """
        if not factorised:
            return self.branch3d(self.merge_inputs(image, kde))
        if kde is None:
            raise ModelConfigError("MultiModalCNN needs the KDE cube input (kde=None given)")
        conv = self.branch3d[0]
        w = conv.weight  # (24, 4, kx, ky, kv)
        sky = self._pooled_sky(image).to(kde.dtype)  # (B, 3, x, y)
        planar = F.conv2d(sky, w[:, 1:].sum(-1), conv.bias)  # (B, 24, x', y')
        volume = F.conv3d(kde, w[:, :1])  # (B, 24, x', y', v')
        return self.branch3d[1:](volume + planar.unsqueeze(-1))

    def _pooled_sky(self, image: torch.Tensor) -> torch.Tensor:
        """Average-pool the image to the cube's grid and transpose ``[band, y, x]`` -> (x, y)."""
        pooled = F.avg_pool2d(image, self.pool_factor) if self.pool_factor > 1 else image
        return pooled.transpose(-2, -1)

    def merge_inputs(self, image: torch.Tensor, kde: torch.Tensor | None) -> torch.Tensor:
        """Stack the KDE cube and the pooled image tiled along v: (B, 1 + 3, D, D, D).

        Images are ``[band, y, x]`` (rows along the sky y axis, as in FITS and the mock maps);
        the KDE cube is ``(x, y, v)``. The pooled image is transposed to ``(x, y)`` so that image
        pixel (row j, column i) lands on cube voxels (i, j, :) for every velocity bin: the sky
        planes coincide (the fix of the authors' tiling along the cube's y axis).
        """
        if kde is None:
            raise ModelConfigError("MultiModalCNN needs the KDE cube input (kde=None given)")
        pooled = self._pooled_sky(image)  # [band, y, x] -> [band, x, y], the cube's order
        tiled = pooled.unsqueeze(-1).expand(-1, -1, -1, -1, self.cube_size)
        return torch.cat([kde, tiled.to(kde.dtype)], dim=1)
