"""Image models trained from scratch: `image-cnn` and `image-resnet`.

Both read each product's photo through `ImageTorchModel` (lazy decoding,
augmentation, a learned fallback for products without a usable image) and
differ only in the network:

- `image-cnn`: four blocks of 3x3 convolution, batch norm, ReLU and 2x2 max
  pooling (32, 64, 128, 256 channels), global average pooling, dropout, output.
- `image-resnet`: a small residual network: a strided stem with max pooling,
  then four stages of two basic residual blocks (32, 64, 128, 256 channels,
  each stage after the first halving the resolution), global average
  pooling, dropout, output.

`width` multiplies every channel count (0.5: a quarter of the computation).
They learn from the catalog's photos alone, so they need many images per
class; `image-pretrained` starts from ImageNet features and does better on
small catalogs.

    >>> from prodcat import Categorizer
    >>> clf = Categorizer(model="image-resnet", text_cols="title", label_col="category",
    ...                   image_col="image", image_root="photos")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from prodcat.errors import ConfigError
from prodcat.models import register
from prodcat.models.image_base import ImageTorchModel
from prodcat.models.torch_base import check_probability_below_one

#: channel counts of the four blocks / stages at width 1
BASE_WIDTHS = (32, 64, 128, 256)


def scaled_widths(width: float) -> tuple[int, ...]:
    """BASE_WIDTHS times `width`, at least 8 channels each."""
    return tuple(max(8, int(round(c * width))) for c in BASE_WIDTHS)


def conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),  # BN has the bias
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class ImageCNNNet(nn.Module):
    """conv-BN-ReLU-maxpool x 4 -> global average pool -> dropout -> logits.

        >>> ImageCNNNet(5, widths=(8, 8, 16, 16)).eval()(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 5])
    """

    def __init__(self, n_classes: int, *, widths: tuple[int, ...] = BASE_WIDTHS, dropout: float = 0.2):
        super().__init__()
        blocks: list[nn.Module] = []
        channels = 3
        for out in widths:
            blocks += [conv_bn_relu(channels, out), nn.MaxPool2d(2, ceil_mode=True)]
            channels = out
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(channels, n_classes)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.output(self.dropout(self.pool(self.features(pixels)).flatten(1)))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a shortcut (a strided 1x1 convolution when the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        # Each block starts as the identity (its last norm's scale at 0): a
        # deep residual stack then trains from the first step (Goyal et al., 2017).
        nn.init.zeros_(self.bn2.weight)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ImageResNetNet(nn.Module):
    """Stem (3x3 stride 2, max pool) -> 4 stages of `blocks` BasicBlocks -> GAP -> dropout -> logits.

    A 128-pixel image is 32x32 after the stem and 4x4 after the last stage.

        >>> ImageResNetNet(3, widths=(8, 8, 16, 16)).eval()(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self, n_classes: int, *, widths: tuple[int, ...] = BASE_WIDTHS, blocks: int = 2, dropout: float = 0.2
    ):
        super().__init__()
        self.stem = nn.Sequential(conv_bn_relu(3, widths[0], stride=2), nn.MaxPool2d(3, stride=2, padding=1))
        stages: list[nn.Module] = []
        channels = widths[0]
        for i, out in enumerate(widths):
            stride = 1 if i == 0 else 2
            stage = [BasicBlock(channels, out, stride)] + [BasicBlock(out, out) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*stage))
            channels = out
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(channels, n_classes)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.output(self.dropout(self.pool(self.stages(self.stem(pixels))).flatten(1)))


# Defaults for a CPU: 128-pixel images, batches of 32 and early stopping a
# little more patient than for text (augmented epochs are noisier).
# class_weight "balanced" (the facade's default) already evens out the
# classes, so the sampler stays the trainer's default "shuffle": a balanced
# sampler on top would weight rare classes twice.
SCRATCH_DEFAULTS: dict[str, Any] = {
    # 96 px: a from-scratch network learns shapes and colours, not fine print, and a
    # CPU trains it about twice as fast as at 128 (2-core CPU: ~35 photos/s at 128)
    "image_size": 96,
    "batch_size": 32,
    "epochs": 20,
    "patience": 3,
    "lr": 2e-3,
    # multiplies every channel count
    "width": 1.0,
    "dropout": 0.2,
}


class ScratchImageModel(ImageTorchModel):
    """The settings and checks `image-cnn` and `image-resnet` share."""

    DEFAULTS: ClassVar[dict[str, Any]] = SCRATCH_DEFAULTS

    def check_settings(self, s: dict[str, Any]) -> None:
        name = self.name or type(self).__name__
        if not 0 < s["width"] <= 8:
            raise ConfigError(f"{name}: width must be a number above 0 and at most 8, got {s['width']!r}")
        check_probability_below_one(name, "dropout", s["dropout"])


@register("image-cnn")
class ImageCNNModel(ScratchImageModel):
    """A basic CNN trained from scratch on product photos.

    Settings (besides image_size, augment and the trainer's): width (channel
    multiplier), dropout (before the output layer).

        >>> ImageCNNModel(width=0.5).get_params()["width"]
        0.5
    """

    def build_image_network(self, n_classes: int) -> nn.Module:
        s = self.settings
        return ImageCNNNet(n_classes, widths=scaled_widths(s["width"]), dropout=s["dropout"])


@register("image-resnet")
class ImageResNetModel(ScratchImageModel):
    """A small residual CNN (4 stages of 2 basic blocks) trained from scratch on product photos.

    Settings (besides image_size, augment and the trainer's): width (channel
    multiplier), dropout (before the output layer).

        >>> ImageResNetModel().get_params()["image_size"]
        96
    """

    def build_image_network(self, n_classes: int) -> nn.Module:
        s = self.settings
        return ImageResNetNet(n_classes, widths=scaled_widths(s["width"]), dropout=s["dropout"])
