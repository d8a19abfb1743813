"""Shared test fixtures.

Tests that read the real catalogs in ../shared/data take the `shared_data`
fixture: on a user's clone without that folder they skip with the reason, but
under CI=true a missing folder fails the run, so CI never skips them.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    # Nothing in a test may reach a model hub.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "fashion" / "styles.csv").is_file():
        message = f"real catalogs not found at {SHARED_DATA} (they sit beside the project in ../shared/data)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI must not skip these tests")
        pytest.skip(message)
    return SHARED_DATA


@pytest.fixture
def dummies(monkeypatch):
    """The stand-in models of tests/dummy_models.py registered for one test;
    returns the image references `image-dummy` received."""
    from dummy_models import RecordingImageModel, register_dummies

    register_dummies(monkeypatch)
    return RecordingImageModel.seen


@pytest.fixture
def shop(tmp_path):
    """A catalog file with its photos in shop/photos, named by the `image` column: (path, frame)."""
    from tiny_catalogs import tiny_image_frame

    frame = tiny_image_frame(tmp_path / "shop" / "photos", n_per_class=8)
    path = tmp_path / "shop" / "catalog.csv"
    frame.to_csv(path, index=False)
    return path, frame


@pytest.fixture
def record_progress(monkeypatch):
    """record_progress("step" or "status") -> the list of what that Reporter method shows, in
    order: each message it opens with, then each update given within it."""
    from prodcat.console import Reporter

    def record(method: str) -> list[str]:
        shown: list[str] = []

        @contextmanager
        def showing(self, message):
            shown.append(message)
            yield shown.append

        monkeypatch.setattr(Reporter, method, showing)
        return shown

    return record
