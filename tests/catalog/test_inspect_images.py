"""`inspect_catalog` counts the products with a photo and the photos that read."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
from PIL import Image
from rich.console import Console

from prodcat.catalog.fields import FieldMapping
from prodcat.catalog.inspect import inspect_catalog, render_inspection
from prodcat.catalog.load import load_catalog

MAPPING = FieldMapping(text_cols=("title",), label_cols=("category",), image_col="photo", image_root="photos")


def shop(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(photos / "rgb.png")
    Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(photos / "grey.png")
    Image.new("CMYK", (16, 16), (10, 20, 30, 0)).save(photos / "cmyk.jpg")
    (photos / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    frame = pd.DataFrame({
        "title": ["red shirt", "grey mug", "cmyk poster", "broken lamp", "lost sock", "no photo", "web photo"],
        "category": ["Shirts", "Mugs", "Posters", "Lamps", "Socks", "Socks", "Mugs"],
        "photo": ["rgb.png", "grey.png", "cmyk.jpg", "corrupt.jpg", "lost.jpg", "", "https://cdn.example.com/1.jpg"],
    })
    frame.to_csv(tmp_path / "catalog.csv", index=False)
    return load_catalog(tmp_path / "catalog.csv", MAPPING)


def test_counts_readable_missing_corrupt_and_absent_photos(tmp_path):
    report = inspect_catalog(shop(tmp_path))
    images = report["images"]
    assert images["column"] == "photo"
    assert images["with_reference"] == 6
    assert images["read"] == 3  # rgb, grey-scale and CMYK all read
    assert images["unreadable"] == 1
    assert images["missing"] == 2  # no such file, and a URL (never fetched)
    assert images["absent"] == 1
    reasons = {ref.rsplit("/", 1)[-1]: reason for ref, reason in images["failures"]}
    assert set(reasons) == {"corrupt.jpg", "lost.jpg", "1.jpg"}
    assert "3 of 6 images could not be used" in images["summary"]
    json.dumps(report)  # plain JSON data


def test_renders_the_image_table(tmp_path, monkeypatch):
    catalog = shop(tmp_path)
    monkeypatch.chdir(tmp_path)  # failures under the current directory are shown relative to it
    buffer = io.StringIO()
    render_inspection(inspect_catalog(catalog), Console(file=buffer, width=80))
    text = buffer.getvalue()
    assert "Images (column photo)" in text and "readable" in text and "First failures:" in text
    assert "  photos/corrupt.jpg: " in text and "  photos/lost.jpg: " in text


def test_a_photo_that_is_a_symlink_loop_is_counted_and_shown(tmp_path, monkeypatch):
    # Showing the failure resolved the path, and a loop raised RuntimeError: a traceback from inspect.
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").symlink_to(tmp_path / "photos" / "b.jpg")
    (tmp_path / "photos" / "b.jpg").symlink_to(tmp_path / "photos" / "a.jpg")
    pd.DataFrame({"title": ["loop"], "category": ["Shirts"], "photo": ["a.jpg"]}).to_csv(tmp_path / "c.csv", index=False)
    report = inspect_catalog(load_catalog(tmp_path / "c.csv", MAPPING))
    assert report["images"]["missing"] == 1
    monkeypatch.chdir(tmp_path)
    buffer = io.StringIO()
    render_inspection(report, Console(file=buffer, width=200))
    assert "photos/a.jpg: no such file" in buffer.getvalue()


def test_no_image_field_or_no_check_gives_no_image_section(tmp_path):
    catalog = shop(tmp_path)
    assert "images" not in inspect_catalog(catalog, check_images=False)
    plain = load_catalog(tmp_path / "catalog.csv", FieldMapping(text_cols=("title",), label_cols=("category",)))
    assert "images" not in inspect_catalog(plain)
