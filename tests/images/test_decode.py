"""prodcat.images decoding: every mode to RGB, orientation, and every bad image counted, never raised.

Images are made here with Pillow and numpy; the real catalogs' photos are
benchmarks' business.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image, ImageFile

from prodcat.images import DEFAULT_MAX_PIXELS, ImageReader, ImageStats, check_images, load_image, to_rgb

RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


def encoded(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    return Image.fromarray((np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8))


def close(pixel, expected, tolerance: int = 12) -> bool:
    return all(abs(int(a) - int(b)) <= tolerance for a, b in zip(pixel, expected))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG signature and header claiming width x height pixels, with no pixel data: what a bomb's
    header says (Image.open reads only this)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey-scale
    pixels = chunk(b"IDAT", zlib.compress(b"\0" * 16))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + pixels + chunk(b"IEND", b"")


# --- what reads ------------------------------------------------------------------


def test_an_rgb_jpeg_file_reads_as_rgb(tmp_path):
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (40, 30), RED).save(path, quality=95)
    reader = ImageReader()
    image = reader.read(str(path))
    assert image.mode == "RGB" and image.size == (40, 30)
    assert close(image.getpixel((20, 15)), RED)
    assert reader.stats.read == 1 and reader.stats.failed == 0


def test_grey_scale_becomes_three_equal_channels(tmp_path):
    path = tmp_path / "grey.png"
    Image.new("L", (16, 16), 90).save(path)
    image = ImageReader().read(path)  # a Path works as well as a str
    assert image.mode == "RGB" and image.getpixel((3, 3)) == (90, 90, 90)


def test_cmyk_jpeg_is_converted_to_rgb():
    # full magenta + yellow, no cyan or black: red
    data = encoded(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=95)
    image = ImageReader().read(data)
    assert image.mode == "RGB" and close(image.getpixel((8, 8)), RED)


def test_palette_png_with_transparency_is_composited_on_white():
    palette_image = Image.new("P", (16, 8), 0)
    palette_image.putpalette([0, 0, 0] + list(RED) + [0, 0, 0] * 254)  # index 0 black (transparent), 1 red
    palette_image.paste(1, (8, 0, 16, 8))
    data = encoded(palette_image, "PNG", transparency=0)
    image = ImageReader().read(data)
    assert image.mode == "RGB"
    assert image.getpixel((2, 4)) == WHITE  # transparent black is white, not black
    assert image.getpixel((12, 4)) == RED


def test_rgba_half_transparent_is_blended_with_white():
    image = ImageReader().read(encoded(Image.new("RGBA", (8, 8), (0, 0, 0, 128))))
    assert close(image.getpixel((4, 4)), (127, 127, 127), tolerance=2)


@pytest.mark.parametrize("value, expected", [(65535, 255), (32896, 128), (0, 0)])
def test_16_bit_grey_is_scaled_not_clipped(value, expected):
    image16 = Image.fromarray(np.full((8, 8), value, dtype=np.uint16))
    assert image16.mode.startswith("I;16")
    image = ImageReader().read(encoded(image16))
    assert image.getpixel((1, 1)) == (expected,) * 3


def test_one_bit_image_is_black_and_white():
    bilevel = Image.new("1", (8, 8), 0)
    bilevel.paste(1, (4, 0, 8, 8))
    image = ImageReader().read(encoded(bilevel))
    assert image.getpixel((1, 1)) == (0, 0, 0) and image.getpixel((6, 1)) == WHITE


def test_exif_orientation_is_applied(tmp_path):
    # Stored 40 wide x 20 high, left half red, right half blue, with EXIF
    # orientation 6 ("rotate 90 degrees clockwise to display"): shown 20 x 40,
    # red on top.
    stored = Image.new("RGB", (40, 20), RED)
    stored.paste(BLUE, (20, 0, 40, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    stored.save(path, "JPEG", quality=95, exif=exif.tobytes())
    image = ImageReader().read(str(path))
    assert image.size == (20, 40)
    assert close(image.getpixel((10, 5)), RED, tolerance=30)
    assert close(image.getpixel((10, 35)), BLUE, tolerance=30)


def test_bytes_and_bytearray_references():
    data = encoded(Image.new("RGB", (8, 8), BLUE))
    reader = ImageReader()
    assert reader.read(data).getpixel((0, 0)) == BLUE
    assert reader.read(bytearray(data)).getpixel((0, 0)) == BLUE
    assert reader.stats.read == 2


def test_a_huge_image_within_the_limit_is_read(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("RGB", (5000, 5000), BLUE).save(path)
    reader = ImageReader()
    image = reader.read(str(path))
    assert image.size == (5000, 5000) and image.getpixel((4999, 4999)) == BLUE
    assert reader.stats.read == 1


def test_a_large_jpeg_decodes_at_reduced_scale_with_a_size_hint():
    data = encoded(Image.new("RGB", (2400, 1800), RED), "JPEG")
    full = load_image(data)
    hinted = load_image(data, target_size=128)
    assert full.image.size == (2400, 1800)
    # 1/8 scale still gives at least 128 on each side: 300 x 225
    assert hinted.image.size == (300, 225)
    assert close(hinted.image.getpixel((150, 110)), RED)


# --- what fails, and how it is counted ------------------------------------------------


def test_none_is_absent_not_a_failure():
    reader = ImageReader()
    assert reader.read(None) is None
    assert (reader.stats.absent, reader.stats.failed, reader.stats.total) == (1, 0, 0)


def test_a_missing_file(tmp_path):
    reader = ImageReader()
    assert reader.read(str(tmp_path / "nope.jpg")) is None
    assert reader.stats.missing == 1
    assert reader.stats.failures == [(str(tmp_path / "nope.jpg"), "no such file")]


def test_a_name_too_long_for_the_file_system_is_missing_not_raised(tmp_path):
    # a stray long text in the image column; Path.exists raises ENAMETOOLONG rather than answer False
    reader = ImageReader()
    assert reader.read(str(tmp_path / ("x" * 300 + ".jpg"))) is None
    assert reader.stats.missing == 1 and reader.stats.failures[0][1] == "file name too long"


def test_a_corrupt_file_is_unreadable(tmp_path):
    path = tmp_path / "corrupt.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg" + bytes(range(256)))
    reader = ImageReader()
    assert reader.read(str(path)) is None
    assert reader.stats.unreadable == 1


def test_a_text_file_is_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello")
    assert load_image(str(path)).reason == "not an image"


def test_a_directory_is_unreadable(tmp_path):
    result = load_image(str(tmp_path))
    assert (result.kind, result.reason) == ("unreadable", "not a file")


@pytest.mark.parametrize("keep", [0.5, 0.95])
def test_a_truncated_jpeg_is_unreadable(tmp_path, keep):
    data = encoded(noise(64, 64), "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: int(len(data) * keep)])
    reader = ImageReader()
    assert reader.read(str(path)) is None
    assert reader.stats.unreadable == 1 and reader.stats.failures[0][1] == "truncated file"
    # also when decoding at reduced scale, and Pillow's global switch is left alone
    assert load_image(str(path), target_size=8).kind == "unreadable"
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_an_eps_file_is_never_handed_to_ghostscript():
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto showpage\n"
    result = load_image(eps)
    assert (result.kind, result.reason) == ("unreadable", "not an image")


@pytest.mark.parametrize("url", ["http://example.com/a.jpg", "https://cdn.example.com/p/17.png"])
def test_urls_are_not_fetched(url):
    reader = ImageReader()
    assert reader.read(url) is None
    assert reader.stats.missing == 1 and reader.stats.failures == [(url, "URLs are not fetched")]


def test_something_that_is_not_a_reference():
    result = load_image(12345)
    assert result.kind == "unreadable" and "int" in result.reason


def test_a_bomb_is_refused_before_any_decoding(monkeypatch):
    data = encoded(Image.new("RGB", (300, 300), RED))

    def no_decoding(self, *args, **kwargs):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    reader = ImageReader(max_pixels=10_000)
    assert reader.read(data) is None
    assert reader.stats.too_large == 1
    assert reader.stats.failures[0][1] == "300x300 pixels is over the limit of 10,000"


@pytest.mark.parametrize("side", [10_000, 20_000])  # above Pillow's warning limit; above its error limit
def test_pillow_decompression_bomb_warning_and_error_count_as_too_large(side):
    header = png_header_only(side, side)
    assert len(header) < 100
    reader = ImageReader(max_pixels=10**10)  # our limit out of the way: Pillow's own check speaks
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may escape as a warning either
        assert reader.read(header) is None
    assert reader.stats.too_large == 1
    # and with the default limit it is refused too
    assert load_image(header).kind == "too_large"
    assert DEFAULT_MAX_PIXELS < side * side


def test_a_reader_shared_by_threads_counts_every_image(tmp_path):
    good = encoded(Image.new("RGB", (8, 8), RED))
    refs = [good, None, str(tmp_path / "missing.png"), b"junk"] * 25
    reader = ImageReader()
    with ThreadPoolExecutor(4) as pool:
        images = list(pool.map(reader.read, refs))
    assert sum(image is not None for image in images) == 25
    stats = reader.stats
    assert (stats.read, stats.absent, stats.missing, stats.unreadable) == (25, 25, 25, 25)
    assert len(stats.failures) == ImageStats.MAX_EXAMPLES
    assert reader.reset_stats().total == 75 and reader.stats.total == 0


# --- stats and check_images ----------------------------------------------------------


def test_summary_reads_as_one_line():
    stats = ImageStats(read=8_225, missing=3, unreadable=8, too_large=1, failures=[("images/17.jpg", "not an image")])
    assert stats.summary() == (
        "12 of 8,237 images could not be used: 3 missing, 8 unreadable, 1 too large "
        "(first: images/17.jpg: not an image)"
    )
    assert ImageStats(read=5, absent=2).summary() == "all 5 images could be read; 2 products have no image"
    assert ImageStats(absent=3).summary() == "no product has an image (3 without one)"
    assert "\n" not in stats.summary()


def test_stats_merge_and_to_dict():
    a, b = ImageStats(), ImageStats()
    a.add("read")
    a.add("missing", "a.jpg", "no such file")
    b.add("unreadable", b"xx", "not an image")
    merged = a.merge(b)
    assert (merged.read, merged.missing, merged.unreadable, merged.failed) == (1, 1, 1, 2)
    assert merged.to_dict()["failures"] == [["a.jpg", "no such file"], ["<2 bytes>", "not an image"]]
    with pytest.raises(ValueError):
        a.add("lost")


def test_check_images_decodes_everything(tmp_path):
    cut = tmp_path / "cut.jpg"
    data = encoded(noise(64, 64), "JPEG")
    cut.write_bytes(data[: len(data) * 9 // 10])
    refs = [data, encoded(Image.new("L", (9, 9))), str(cut), str(tmp_path / "gone.jpg"), None]
    for workers in (1, 3):
        stats = check_images(refs, workers=workers)
        assert (stats.read, stats.unreadable, stats.missing, stats.absent) == (2, 1, 1, 1)
    assert check_images([png_header_only(400, 400)], max_pixels=1_000).too_large == 1


def test_to_rgb_leaves_rgb_alone():
    image = Image.new("RGB", (2, 2), RED)
    assert to_rgb(image) is image
