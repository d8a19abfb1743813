"""prodcat.images transforms: centre crop, augmentation (deterministic given a Generator), batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from prodcat.images import augment, resize_center_crop, to_tensor
from prodcat.images.transforms import IMAGENET_MEAN, IMAGENET_STD, color_jitter, random_crop_box

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def thirds(width: int, height: int, horizontal: bool = True) -> Image.Image:
    """Red, green, blue thirds side by side (or stacked)."""
    image = Image.new("RGB", (width, height), RED)
    if horizontal:
        image.paste(GREEN, (width // 3, 0, 2 * width // 3, height))
        image.paste(BLUE, (2 * width // 3, 0, width, height))
    else:
        image.paste(GREEN, (0, height // 3, width, 2 * height // 3))
        image.paste(BLUE, (0, 2 * height // 3, width, height))
    return image


def textured(seed: int = 0, size: int = 48) -> Image.Image:
    return Image.fromarray((np.random.default_rng(seed).random((size, size, 3)) * 255).astype(np.uint8))


@pytest.mark.parametrize("horizontal", [True, False])
def test_resize_center_crop_keeps_the_centre(horizontal):
    image = thirds(300, 100) if horizontal else thirds(100, 300, horizontal=False)
    pixels = resize_center_crop(image, 16)
    assert pixels.shape == (16, 16, 3) and pixels.dtype == np.uint8
    # the centre square of a 3:1 image is exactly its middle third
    assert (np.abs(pixels.astype(int) - GREEN).max(axis=2) <= 2).mean() > 0.85


def test_resize_center_crop_converts_other_modes():
    pixels = resize_center_crop(Image.new("L", (20, 10), 77), 8)
    assert pixels.shape == (8, 8, 3) and (pixels == 77).all()
    with pytest.raises(ValueError):
        resize_center_crop(Image.new("RGB", (4, 4)), 0)


def test_augment_shape_and_determinism():
    image = textured()
    a = augment(image, 24, np.random.default_rng(3))
    b = augment(image, 24, np.random.default_rng(3))
    c = augment(image, 24, np.random.default_rng(4))
    assert a.shape == (24, 24, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_augment_flips_about_half_the_time():
    image = thirds(30, 30)
    plain = resize_center_crop(image, 30)
    mirrored = plain[:, ::-1]
    flips = 0
    for seed in range(40):
        view = augment(image, 30, np.random.default_rng(seed), scale=(1, 1), ratio=(1, 1), degrees=0, jitter=0)
        assert np.array_equal(view, plain) or np.array_equal(view, mirrored)
        flips += np.array_equal(view, mirrored)
    assert 10 <= flips <= 30


def test_augment_rotation_fills_corners_with_white():
    black = Image.new("RGB", (32, 32), (0, 0, 0))
    corners = [
        augment(black, 32, np.random.default_rng(seed), scale=(1, 1), ratio=(1, 1), flip=0, jitter=0)[0, 0]
        for seed in range(20)
    ]
    whiteish = sum(int(c.min()) > 100 for c in corners)
    assert whiteish >= 10  # most angles in (-10, 10) degrees uncover the corner pixel
    no_rotation = augment(black, 32, np.random.default_rng(0), scale=(1, 1), ratio=(1, 1), degrees=0, jitter=0)
    assert no_rotation.max() == 0


def test_random_crop_box_stays_inside_and_covers_the_area_share():
    rng = np.random.default_rng(0)
    for _ in range(200):
        left, top, right, bottom = random_crop_box(120, 80, rng)
        assert 0 <= left < right <= 120 + 1e-9 and 0 <= top < bottom <= 80 + 1e-9
        share = (right - left) * (bottom - top) / (120 * 80)
        ratio = (right - left) / (bottom - top)
        assert 0.6 - 1e-9 <= share <= 1.0 + 1e-9 or (right - left) == (bottom - top) == 80  # centre fallback
        assert 3 / 4 - 1e-9 <= ratio <= 4 / 3 + 1e-9


def test_color_jitter():
    pixels = np.full((4, 4, 3), 100, dtype=np.uint8)
    pixels[0, 0] = (200, 50, 10)
    assert np.array_equal(color_jitter(pixels, 1.0, 1.0, 1.0), pixels)
    assert color_jitter(pixels, 0.5, 1.0, 1.0)[1, 1].tolist() == [50, 50, 50]
    grey = color_jitter(pixels, 1.0, 1.0, 0.0)[0, 0]
    assert grey.max() - grey.min() <= 1  # no saturation: grey
    assert color_jitter(np.full((2, 2, 3), 250, np.uint8), 1.2, 1.0, 1.0).max() == 255  # clipped, not wrapped


def test_to_tensor_normalizes_into_a_channels_first_batch():
    images = [np.full((8, 8, 3), 255, np.uint8), np.zeros((8, 8, 3), np.uint8)]
    batch = to_tensor(images, IMAGENET_MEAN, IMAGENET_STD)
    assert batch.shape == (2, 3, 8, 8) and batch.dtype == torch.float32 and batch.is_contiguous()
    expected_white = (1 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    torch.testing.assert_close(batch[0, :, 3, 3], expected_white)
    torch.testing.assert_close(batch[1, :, 0, 0], -torch.tensor(IMAGENET_MEAN) / torch.tensor(IMAGENET_STD))
    # channels come from the last axis
    red = np.zeros((1, 2, 2, 3), np.uint8)
    red[..., 0] = 255
    assert to_tensor(red, (0, 0, 0), (1, 1, 1))[0, :, 0, 0].tolist() == [1.0, 0.0, 0.0]
    with pytest.raises(ValueError):
        to_tensor(np.zeros((2, 8, 8), np.uint8))
