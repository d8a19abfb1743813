"""Reading product images safely: every failure is counted, none is raised.

A catalog of thousands of photos always holds a few that are missing,
truncated, not images at all, or absurdly large. A training or prediction run
must go on without them, and say how many there were:

    >>> reader = ImageReader()
    >>> reader.read("no/such/photo.jpg") is None
    True
    >>> reader.stats.summary()
    '1 of 1 images could not be used: 1 missing (first: no/such/photo.jpg: no such file)'

An image reference is a file path (str or os.PathLike), the bytes of an
encoded image, or None (the product has no image). URLs are not fetched: no
run ever reaches the network. What is read comes back as an RGB
`PIL.Image.Image` with its EXIF orientation applied; transparent images are
composited on white (product photos are shot on white, so a transparent
background means white, not black).

Safety: only common raster formats are opened (never EPS or PDF, which
Pillow would hand to Ghostscript); an image larger than `max_pixels` is
refused from its header, before a byte of it is decoded (a decompression
bomb is a few KB of file that decodes to gigabytes); a truncated file is
unreadable (Pillow's global LOAD_TRUNCATED_IMAGES is left alone).
"""

from __future__ import annotations

import io
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Union

import numpy as np
from PIL import Image, ImageOps

#: Default largest image, in pixels, that is decoded: 40 megapixels is more
#: than any product photo (a 50 MP camera's raw frames aside) and decodes to
#: 120 MB of RGB; anything larger in a catalog is a mistake or an attack.
DEFAULT_MAX_PIXELS = 40_000_000

#: Default largest photo a client of the server or the app may send, in
#: pixels: lower than a catalog's, because a client's photos cost this
#: machine's CPU, and a PNG of a few KB can claim DEFAULT_MAX_PIXELS (about
#: a second to decode). 16 megapixels holds a phone's 4032x3024 photo.
CLIENT_MAX_PIXELS = 16_000_000


@dataclass(frozen=True)
class RefusedPath:
    """A photo path that is never opened: a catalog someone else sent (an
    upload to the server or the app) named a file outside the image folder.
    Counted as missing, with the path as the catalog wrote it."""

    path: str
    reason: str = "outside the image folder: not read"

    def __str__(self) -> str:
        return self.path


#: What an image reference may be.
ImageRef = Union[str, os.PathLike, bytes, bytearray, memoryview, RefusedPath, None]

# Raster formats a product catalog can hold. Pillow could open more, some of
# them through external programs (EPS via Ghostscript); a catalog does not
# need them, so they are never tried.
_WANTED_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF", "PPM", "TGA")
Image.init()
FORMATS: tuple[str, ...] = tuple(f for f in _WANTED_FORMATS if f in Image.OPEN)

#: The failure kinds ImageStats counts, in the order a summary names them.
FAILURE_KINDS = ("missing", "unreadable", "too_large")
_KIND_WORDS = {"missing": "missing", "unreadable": "unreadable", "too_large": "too large"}

# warnings.catch_warnings swaps process-wide state; serializing the (cheap,
# header-only) Image.open calls that use it keeps concurrent readers from
# restoring each other's filters. Decoding happens outside this lock.
_OPEN_LOCK = threading.Lock()


@dataclass(frozen=True)
class ReadResult:
    """The outcome of reading one reference.

    image: the RGB image, or None when it could not be used.
    kind: "read", "absent" (the reference is None), "missing", "unreadable" or "too_large".
    reason: why it could not be used, in a few words ("" when read).
    """

    image: Image.Image | None
    kind: str
    reason: str = ""


@dataclass
class ImageStats:
    """Counts of how reading a set of image references went.

    read: images decoded; absent: products without an image reference;
    missing: no such file (or a URL, which is never fetched); unreadable:
    truncated, corrupt or not an image; too_large: more pixels than allowed.
    failures: the first few failures as (reference shown as text, reason).

        >>> stats = ImageStats(read=8, missing=1)
        >>> stats.failed, stats.total
        (1, 9)
    """

    read: int = 0
    absent: int = 0
    missing: int = 0
    unreadable: int = 0
    too_large: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)

    #: how many failures are kept as examples
    MAX_EXAMPLES = 5

    @property
    def failed(self) -> int:
        """References that were given but could not be used (absent ones are not failures)."""
        return self.missing + self.unreadable + self.too_large

    @property
    def total(self) -> int:
        """References that were given (read or failed)."""
        return self.read + self.failed

    def add(self, kind: str, ref: ImageRef = None, reason: str = "") -> None:
        """Count one outcome; a failure's reference and reason are kept among the first few."""
        if kind not in ("read", "absent", *FAILURE_KINDS):
            raise ValueError(f"unknown image outcome {kind!r}")
        setattr(self, kind, getattr(self, kind) + 1)
        if kind in FAILURE_KINDS and len(self.failures) < self.MAX_EXAMPLES:
            self.failures.append((describe_ref(ref), reason))

    def merge(self, other: ImageStats) -> ImageStats:
        """A new ImageStats counting both."""
        merged = ImageStats(**{k: getattr(self, k) + getattr(other, k) for k in ("read", "absent", *FAILURE_KINDS)})
        merged.failures = (self.failures + other.failures)[: self.MAX_EXAMPLES]
        return merged

    def to_dict(self) -> dict:
        """JSON-able counts and example failures (for a model's training info or `inspect`)."""
        return {
            "read": self.read,
            "absent": self.absent,
            "missing": self.missing,
            "unreadable": self.unreadable,
            "too_large": self.too_large,
            "failures": [list(f) for f in self.failures],
        }

    @classmethod
    def from_dict(cls, data: dict) -> ImageStats:
        """The ImageStats `to_dict` gave (counts handed between processes, e.g. by Ray actors)."""
        stats = cls(**{k: int(data[k]) for k in ("read", "absent", *FAILURE_KINDS)})
        stats.failures = [(str(ref), str(reason)) for ref, reason in data.get("failures", [])]
        return stats

    def summary(self) -> str:
        """One line, e.g. "12 of 8,237 images could not be used: 3 missing, 8 unreadable, 1 too large
        (first: images/17.jpg: not an image)"; products without an image are mentioned after a semicolon."""
        if self.total == 0:
            line = "no images" if self.absent == 0 else "no product has an image"
            return line if self.absent == 0 else f"{line} ({self.absent:,} without one)"
        if self.failed == 0:
            line = f"all {self.total:,} images could be read"
        else:
            parts = [f"{getattr(self, k):,} {_KIND_WORDS[k]}" for k in FAILURE_KINDS if getattr(self, k)]
            line = f"{self.failed:,} of {self.total:,} images could not be used: {', '.join(parts)}"
            if self.failures:
                ref, reason = self.failures[0]
                line += f" (first: {ref}: {reason})"
        if self.absent:
            line += f"; {self.absent:,} product{'s have' if self.absent != 1 else ' has'} no image"
        return line


def describe_ref(ref: ImageRef) -> str:
    """A reference as text for messages: the path, or "<12,345 bytes>" for an image given as bytes."""
    if ref is None:
        return "<none>"
    if isinstance(ref, (bytes, bytearray, memoryview)):
        return f"<{len(ref):,} bytes>"
    return os.fspath(ref) if isinstance(ref, os.PathLike) else str(ref)


def _white_background(image: Image.Image) -> Image.Image:
    """An image with any transparency composited on white, as RGB."""
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _high_depth_to_rgb(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer or float grey-scale scaled to 8 bits (a plain convert would clip to white)."""
    values = np.asarray(image)
    if image.mode == "F":
        values = values.astype(np.float64)
        finite = values[np.isfinite(values)]
        top = float(finite.max()) if finite.size else 1.0
        # floats in [0, 1] are intensities; anything else is taken as 0-255
        scaled = values * 255.0 if top <= 1.0 else values
    else:
        values = values.astype(np.float64)
        top = float(values.max()) if values.size else 0.0
        if image.mode.startswith("I;16") or 255 < top <= 65535:
            scaled = values / 257.0
        elif top > 65535:
            scaled = values * (255.0 / top)
        else:
            scaled = values
    grey = np.clip(np.nan_to_num(scaled), 0, 255).round().astype(np.uint8)
    return Image.fromarray(grey, mode="L").convert("RGB")


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode as 8-bit RGB: alpha and palette transparency on white, CMYK converted,
    16-bit and float grey-scale scaled rather than clipped, 1-bit as black and white.

        >>> to_rgb(Image.new("LA", (2, 2), (0, 0))).getpixel((0, 0))
        (255, 255, 255)
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        return _white_background(image)
    if mode.startswith("I") or mode == "F":
        return _high_depth_to_rgb(image)
    return image.convert("RGB")


def _source(ref: ImageRef) -> tuple[object | None, ReadResult | None]:
    """What to hand Image.open for a reference, or the ReadResult that ends reading it."""
    if ref is None:
        return None, ReadResult(None, "absent")
    if isinstance(ref, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(ref)), None
    if isinstance(ref, RefusedPath):
        return None, ReadResult(None, "missing", ref.reason)
    if not isinstance(ref, (str, os.PathLike)):
        return None, ReadResult(None, "unreadable", f"not an image reference ({type(ref).__name__})")
    text = os.fspath(ref)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if text.startswith(("http://", "https://")):
        return None, ReadResult(None, "missing", "URLs are not fetched")
    if not text.strip():
        return None, ReadResult(None, "absent")
    path = Path(text)
    try:
        if not path.exists():
            return None, ReadResult(None, "missing", "no such file")
        if not path.is_file():
            return None, ReadResult(None, "unreadable", "not a file")
    except PermissionError:
        return None, ReadResult(None, "unreadable", "permission denied")
    except OSError as exc:
        # exists() raises where no file can be (a name too long for the file
        # system): one such cell must not stop a run.
        return None, ReadResult(None, "missing", (exc.strerror or "no such file").lower())
    return path, None


def load_image(ref: ImageRef, *, max_pixels: int = DEFAULT_MAX_PIXELS, target_size: int | None = None) -> ReadResult:
    """Read one image reference into RGB; never raises for a bad image.

    target_size: a hint, the smallest side the caller needs. A JPEG is then
    decoded at 1/2, 1/4 or 1/8 scale when that still gives at least this
    many pixels on each side (libjpeg's DCT scaling: a 2400x1800 photo
    needed at 128 px decodes as 300x225, several times faster). None: full size.

        >>> load_image(b"not an image").reason
        'not an image'
    """
    source, ended = _source(ref)
    if ended is not None:
        return ended
    image, ended = _open_header(source, max_pixels)
    if ended is not None:
        return ended

    try:
        with image:
            if target_size and image.format in ("JPEG", "MPO"):
                image.draft(None, (int(target_size), int(target_size)))
            image.load()
            try:
                upright = ImageOps.exif_transpose(image)
            except Exception:
                # A malformed EXIF block costs the orientation, not the image.
                upright = image.copy()
            return ReadResult(to_rgb(upright), "read")
    except MemoryError:
        return ReadResult(None, "too_large", "out of memory while decoding")
    except OSError as exc:
        message = str(exc)
        return ReadResult(None, "unreadable", "truncated file" if "truncated" in message else message or "corrupt")
    except Exception as exc:
        # A bad image must never stop a run; Pillow's decoders raise many types.
        return ReadResult(None, "unreadable", str(exc) or type(exc).__name__)


def header_problem(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ReadResult | None:
    """Why encoded image bytes cannot be used, judged from their header alone
    (None: they open as an image of a size `load_image` reads).

    Nothing is decoded, so a request can be checked for the price of a header;
    a truncated image passes here and is found when it is read.

        >>> header_problem(b"not an image").reason
        'not an image'
    """
    return header_pixels(data, max_pixels=max_pixels)[1]


def header_pixels(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, ReadResult | None]:
    """The pixels encoded image bytes claim in their header (0 when it cannot be
    read), and why they cannot be used (as `header_problem`).

        >>> import io
        >>> buffer = io.BytesIO()
        >>> Image.new("L", (40, 30)).save(buffer, format="PNG")
        >>> header_pixels(buffer.getvalue())
        (1200, None)
    """
    image, ended = _open_header(io.BytesIO(bytes(data)), max_pixels)
    if image is None:
        return 0, ended
    width, height = image.size
    image.close()
    return width * height, None


def _open_header(source: object, max_pixels: int) -> tuple[Image.Image | None, ReadResult | None]:
    """The opened (not yet decoded) image, or the ReadResult that ends reading it."""
    try:
        with _OPEN_LOCK, warnings.catch_warnings():
            # Pillow warns (and at twice its limit raises) on huge images; both mean "too large" here.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(source, formats=FORMATS)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        return None, ReadResult(None, "too_large", str(exc).split(",")[0])
    except FileNotFoundError:
        return None, ReadResult(None, "missing", "no such file")
    except PermissionError:
        return None, ReadResult(None, "unreadable", "permission denied")
    except Exception:
        # UnidentifiedImageError, and whatever a malformed header makes a
        # format plugin raise (SyntaxError, ValueError, struct.error, ...).
        return None, ReadResult(None, "unreadable", "not an image")
    width, height = image.size
    if width * height > max_pixels:
        # Refused from the header alone: nothing has been decoded yet.
        image.close()
        return None, ReadResult(None, "too_large", f"{width}x{height} pixels is over the limit of {max_pixels:,}")
    return image, None


class ImageReader:
    """Reads image references into RGB images and counts the outcomes in `stats`.

    Safe to use from a thread pool: counting is locked, decoding is not.

        >>> import io
        >>> buffer = io.BytesIO()
        >>> Image.new("L", (40, 30), 128).save(buffer, format="PNG")
        >>> reader = ImageReader()
        >>> image = reader.read(buffer.getvalue())
        >>> image.mode, image.size, reader.stats.read
        ('RGB', (40, 30), 1)
    """

    def __init__(self, max_pixels: int = DEFAULT_MAX_PIXELS, target_size: int | None = None):
        if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
            raise ValueError(f"max_pixels must be a positive integer, got {max_pixels!r}")
        self.max_pixels = max_pixels
        #: default decoding-size hint of `read` (see `load_image`)
        self.target_size = target_size
        self.stats = ImageStats()
        self._lock = threading.Lock()

    def read_result(self, ref: ImageRef, target_size: int | None = None) -> ReadResult:
        """Read and count one reference; the ReadResult says why it failed, if it did."""
        result = load_image(ref, max_pixels=self.max_pixels, target_size=target_size or self.target_size)
        with self._lock:
            self.stats.add(result.kind, ref, result.reason)
        return result

    def read(self, ref: ImageRef, target_size: int | None = None) -> Image.Image | None:
        """The RGB image, or None (counted in `stats`) when there is none or it cannot be used."""
        return self.read_result(ref, target_size).image

    def reset_stats(self) -> ImageStats:
        """Start counting afresh; returns the counts so far."""
        with self._lock:
            stats, self.stats = self.stats, ImageStats()
        return stats


def check_images(
    refs: Iterable[ImageRef], max_pixels: int = DEFAULT_MAX_PIXELS, *, workers: int | None = None
) -> ImageStats:
    """Read every reference through to its last byte and count what could be used (for `prodcat inspect`).

    Each image is decoded completely, so a truncated file counts as
    unreadable; JPEGs decode at reduced scale (the whole stream is still
    read), which keeps a check of thousands of photos fast.
    workers: decoding threads (None: one per CPU core this process may use).

        >>> check_images([None, b"junk"]).summary()
        '1 of 1 images could not be used: 1 unreadable (first: <4 bytes>: not an image); 1 product has no image'
    """
    reader = ImageReader(max_pixels=max_pixels, target_size=64)
    refs = list(refs)
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

    def check(ref: ImageRef) -> None:
        reader.read_result(ref)  # counted; the image itself is dropped at once

    if workers <= 1 or len(refs) < 2:
        for ref in refs:
            check(ref)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for _ in pool.map(check, refs):
                pass
    return reader.stats
