"""Fixtures shared by the web app's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from prodcat import Categorizer
from tiny_catalogs import tiny_frame


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A small path-label model of the tiny catalog, saved once per test module."""
    path = tmp_path_factory.mktemp("app") / "model"
    Categorizer(text_cols=["title", "description"], label_col="category", label_format="path",
                id_cols=["sku"], quiet=True).fit(tiny_frame()).save(path)
    return path
