"""Product images: safe decoding to RGB, and the resizing and augmentation image models use.

    >>> from prodcat.images import ImageReader
    >>> reader = ImageReader()
    >>> reader.read(None) is None, reader.stats.absent
    (True, 1)

Decoding is Pillow only (no torchvision): any mode to RGB, EXIF orientation
applied, decompression bombs refused before decoding, and a bad image is
counted, never raised (see `prodcat.images.decode`).
"""

from prodcat.images.decode import (
    DEFAULT_MAX_PIXELS,
    ImageReader,
    ImageStats,
    ReadResult,
    check_images,
    load_image,
    to_rgb,
)
from prodcat.images.transforms import augment, resize_center_crop, to_tensor

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ImageReader",
    "ImageStats",
    "ReadResult",
    "augment",
    "check_images",
    "load_image",
    "resize_center_crop",
    "to_rgb",
    "to_tensor",
]
