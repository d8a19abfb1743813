"""Image resizing, training augmentation and batching, with Pillow and numpy (no torchvision).

Every function takes an RGB `PIL.Image.Image` (as `prodcat.images.ImageReader`
returns) and gives a uint8 array (size, size, 3); `to_tensor` turns a list of
them into a normalized float batch.

    >>> import numpy as np
    >>> from PIL import Image
    >>> photo = Image.new("RGB", (300, 400), (200, 30, 30))
    >>> resize_center_crop(photo, 64).shape
    (64, 64, 3)
    >>> a = augment(photo, 64, np.random.default_rng(7))
    >>> b = augment(photo, 64, np.random.default_rng(7))
    >>> bool((a == b).all())
    True

Augmentation is deterministic given the numpy Generator, so a training run
seeded the same way sees the same augmented pixels.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import numpy as np
from PIL import Image

if TYPE_CHECKING:  # torch is imported only by to_tensor: reading images needs none of it
    import torch

#: ImageNet statistics, the usual normalization (and the one pretrained backbones expect)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_RESAMPLE = Image.Resampling.BILINEAR  # Pillow's bilinear antialiases when shrinking
_WHITE = (255, 255, 255)
# ITU-R 601 luma weights, as Pillow's convert("L") uses
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    from prodcat.images.decode import to_rgb

    return to_rgb(image)


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    return int(size)


def _square(image: Image.Image, box: tuple[float, float, float, float], size: int) -> Image.Image:
    """The region `box` of image resized to size x size in one resampling pass."""
    return image.resize((size, size), _RESAMPLE, box=box)


def center_box(width: int, height: int) -> tuple[float, float, float, float]:
    """The centred square of side min(width, height)."""
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    return (left, top, left + side, top + side)


def resize_center_crop(image: Image.Image, size: int) -> np.ndarray:
    """The shorter side scaled to `size` and the centre cropped square: uint8 (size, size, 3).

    Product photos are mostly centred, so the centre square keeps the product.
    """
    size = _check_size(size)
    image = _rgb(image)
    return np.asarray(_square(image, center_box(*image.size), size), dtype=np.uint8)


def random_crop_box(
    width: int,
    height: int,
    rng: np.random.Generator,
    scale: tuple[float, float] = (0.6, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> tuple[float, float, float, float]:
    """A random region covering `scale` of the image's area with aspect ratio within `ratio`
    (the random resized crop of Inception training); the centre square when ten tries do not fit."""
    area = width * height
    log_low, log_high = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_low, log_high))
        crop_w, crop_h = math.sqrt(target * aspect), math.sqrt(target / aspect)
        if 0 < crop_w <= width and 0 < crop_h <= height:
            left = rng.uniform(0, width - crop_w)
            top = rng.uniform(0, height - crop_h)
            return (left, top, left + crop_w, top + crop_h)
    return center_box(width, height)


def color_jitter(pixels: np.ndarray, brightness: float, contrast: float, saturation: float) -> np.ndarray:
    """Brightness, contrast and saturation scaled by the given factors (1: unchanged): uint8 as input.

    Brightness scales every value; contrast moves values away from (or
    towards) the image's mean grey; saturation away from each pixel's grey.
    """
    x = pixels.astype(np.float32)
    x *= brightness
    mean_grey = float((x @ _LUMA).mean())
    x = (x - mean_grey) * contrast + mean_grey
    grey = (x @ _LUMA)[..., None]
    x = (x - grey) * saturation + grey
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def augment(
    image: Image.Image,
    size: int,
    rng: np.random.Generator,
    *,
    scale: tuple[float, float] = (0.6, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    flip: float = 0.5,
    degrees: float = 10.0,
    jitter: float = 0.2,
) -> np.ndarray:
    """A randomly altered training view of `image`: uint8 (size, size, 3).

    Random resized crop (area share `scale`, aspect `ratio`), horizontal flip
    with probability `flip`, rotation by up to `degrees` either way with the
    uncovered corners white (product photos are shot on white), and
    brightness / contrast / saturation each scaled by a factor in
    [1 - jitter, 1 + jitter]. The same Generator state gives the same output.
    """
    size = _check_size(size)
    image = _rgb(image)
    view = _square(image, random_crop_box(*image.size, rng, scale, ratio), size)
    angle = rng.uniform(-degrees, degrees) if degrees else 0.0
    if angle:
        view = view.rotate(angle, resample=_RESAMPLE, fillcolor=_WHITE)
    if rng.random() < flip:
        view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    pixels = np.asarray(view, dtype=np.uint8)
    if jitter:
        factors = rng.uniform(max(0.0, 1 - jitter), 1 + jitter, size=3)
        pixels = color_jitter(pixels, *(float(f) for f in factors))
    return pixels


def to_tensor(
    arrays: Sequence[np.ndarray] | np.ndarray,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> torch.Tensor:
    """uint8 images (each (S, S, 3)) as one normalized float32 batch (B, 3, S, S).

        >>> to_tensor([np.full((4, 4, 3), 255, np.uint8)], mean=(0.5,) * 3, std=(0.5,) * 3)[0, :, 0, 0]
        tensor([1., 1., 1.])
    """
    import torch

    batch = arrays if isinstance(arrays, np.ndarray) else np.stack(list(arrays))
    if batch.ndim != 4 or batch.shape[-1] != 3:
        raise ValueError(f"expected images of shape (S, S, 3), got a batch of shape {batch.shape}")
    tensor = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.uint8)).permute(0, 3, 1, 2).float().div_(255.0)
    mean_t = torch.tensor(list(mean), dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(list(std), dtype=torch.float32).view(1, 3, 1, 1)
    return tensor.sub_(mean_t).div_(std_t).contiguous()
