"""Fixtures shared by the web app's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from prodcat import Categorizer
from tiny_catalogs import IMAGE_CNN, tiny_frame, tiny_image_frame


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A small path-label model of the tiny catalog, saved once per test module."""
    path = tmp_path_factory.mktemp("app") / "model"
    Categorizer(text_cols=["title", "description"], label_col="category", label_format="path",
                id_cols=["sku"], quiet=True).fit(tiny_frame()).save(path)
    return path


@pytest.fixture(scope="module")
def image_shop(tmp_path_factory) -> Path:
    """A folder holding shop.csv (the tiny catalog with an `image` column) and its photos in images/."""
    shop = tmp_path_factory.mktemp("app_images")
    tiny_image_frame(shop / "images").to_csv(shop / "shop.csv", index=False)
    return shop


@pytest.fixture(scope="module")
def image_model_dir(image_shop) -> Path:
    """An image-cnn model of `image_shop`, whose saved image_root is "images"."""
    path = image_shop.parent / "image_model"
    Categorizer(model="image-cnn", text_cols=["title", "description"], label_col="category", label_format="path",
                id_cols=["sku"], image_col="image", image_root="images", params=IMAGE_CNN,
                quiet=True).fit(image_shop / "shop.csv").save(path)
    return path
