"""`prodcat app` for real: a Streamlit server driven by headless Chromium.

The browser tests need /usr/bin/chromium (Debian's `chromium` package; `.ci/run`
installs it). Without it they skip with the reason on a user's clone, and
fail under CI=true, so CI never skips them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import expect, sync_playwright

from prodcat.app.launch import APP_SCRIPT, model_dir_from_command_line, streamlit_command
from prodcat.cli import main as cli_main
from tiny_catalogs import tiny_frame

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SERVER_START_SECONDS = 60
# Playwright waits, in milliseconds: generous for a 2-core CI machine, still bounded.
UI_TIMEOUT_MS = 30_000
SCREENSHOT_DIR = Path("/tmp")


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.is_file():
        message = f"{CHROMIUM} not found (install Debian's chromium package to run the browser tests)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI must not skip these tests")
        pytest.skip(message)
    return CHROMIUM


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def health(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as response:
            return response.read().decode()
    except (urllib.error.URLError, OSError):
        return None


@pytest.fixture(scope="module")
def app_url(chromium, model_dir, tmp_path_factory):
    """`prodcat app MODEL_DIR --port PORT` running; killed, with its server, afterwards."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    with open(log_path, "wb") as log:
        # Its own session, so the whole group (prodcat and the Streamlit child) can be stopped.
        server = subprocess.Popen(
            [sys.executable, "-m", "prodcat.cli", "app", str(model_dir), "--host", "127.0.0.1", "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while health(url) != "ok":
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the app did not come up on {url}; its output:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.25)
        yield url
    finally:
        stop_group(server)


def stop_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def page(app_url, chromium):

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS, timeout=UI_TIMEOUT_MS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(UI_TIMEOUT_MS)
            expect.set_options(timeout=UI_TIMEOUT_MS)
            page.goto(app_url)
            page.get_by_text("Product categorizer").wait_for()
            yield page
        finally:
            browser.close()


@pytest.mark.slow
def test_typing_a_product_shows_its_category_bars_and_photo(page, tmp_path):
    from PIL import Image

    photo = tmp_path / "shirt.png"
    Image.new("RGB", (64, 48), (30, 90, 160)).save(photo)
    page.get_by_role("tab", name="Categorize a product").click()
    page.get_by_role("textbox", name="title").fill("oxford collar cotton shirt")
    image_uploader = page.locator('[data-testid="stFileUploader"]').filter(has_text="image (optional)")
    image_uploader.locator('input[type="file"]').set_input_files(str(photo))
    page.get_by_role("button", name="Categorize", exact=True).click()
    page.get_by_role("heading", name="Apparel > Shirts").wait_for()
    page.get_by_text("Top 3 categories").wait_for()
    # Streamlit draws a run's elements one after another: expect() waits for them.
    expect(page.locator('[data-testid="stProgress"]:visible')).to_have_count(3)
    expect(page.get_by_text("Confident").or_(page.get_by_text("Needs review"))).to_be_visible()
    # The photo is accepted and shown, and the page says a text model does not read it.
    page.get_by_text("shirt.png (shown only: this model reads the text fields)").wait_for()
    expect(page.locator('[data-testid="stImage"]:visible img')).to_have_count(1)
    page.screenshot(path=str(SCREENSHOT_DIR / "prodcat_app_product.png"), full_page=True)


@pytest.mark.slow
def test_uploading_a_catalog_shows_a_table_and_downloads(page, tmp_path):
    frame = tiny_frame(n_per_class=5, seed=3)[["sku", "title", "description"]]
    catalog = tmp_path / "new products.csv"
    frame.to_csv(catalog, index=False)

    page.get_by_role("tab", name="Categorize a catalog").click()
    catalog_uploader = page.locator('[data-testid="stFileUploader"]').filter(has_text="Catalog file")
    catalog_uploader.locator('input[type="file"]').set_input_files(str(catalog))
    page.get_by_text(f"{len(frame)} products from new products.csv categorized").wait_for()
    expect(page.locator('[data-testid="stDataFrame"]:visible')).to_be_visible()

    with page.expect_download() as download_info:
        page.get_by_role("button", name=f"Download all {len(frame)} predictions (CSV)").click()
    download = download_info.value
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert download.suggested_filename == "new products.predictions.csv"
    lines = saved.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("sku,prediction,confidence,needs_review,label_1")
    assert len(lines) == len(frame) + 1
    page.screenshot(path=str(SCREENSHOT_DIR / "prodcat_app_catalog.png"), full_page=True)

    # Another format is the same predictions converted, not predicted again.
    page.get_by_text("Parquet", exact=True).click()
    with page.expect_download() as download_info:
        page.get_by_role("button", name=f"Download all {len(frame)} predictions (Parquet)").click()
    download = download_info.value
    assert download.suggested_filename == "new products.predictions.parquet"
    download.save_as(tmp_path / download.suggested_filename)
    converted = pd.read_parquet(tmp_path / download.suggested_filename)
    assert converted["sku"].tolist() == frame["sku"].tolist() and converted["needs_review"].dtype == bool

    # A spreadsheet is a common wrong upload: one error line, no traceback.
    workbook = tmp_path / "products.xlsx"
    workbook.write_bytes(b"PK\x03\x04 not really a workbook")
    catalog_uploader.locator('input[type="file"]').set_input_files(str(workbook))
    page.get_by_text("products.xlsx is not a catalog file this app reads").wait_for()
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)


@pytest.mark.slow
def test_model_page_shows_the_report(page):
    page.get_by_role("tab", name="Model").click()
    page.get_by_text("Headline metrics (held-out test split)").wait_for()
    expect(page.locator('[data-testid="stMetric"]:visible')).to_have_count(6)
    expect(page.get_by_text("No training curves")).to_be_visible()
    # Streamlit scrolls inside its own container, so a tall window is what shows the whole page.
    page.set_viewport_size({"width": 1400, "height": 4000})
    page.get_by_text("Precision against coverage").wait_for()
    page.screenshot(path=str(SCREENSHOT_DIR / "prodcat_app_model.png"))


# ---------------------------------------------------------- the launcher
def test_launch_command_runs_the_app_script_on_the_given_address(tmp_path):
    command = streamlit_command(tmp_path, host="0.0.0.0", port=9999)
    assert command[:5] == [sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT)]
    separator = command.index("--")
    options = dict(zip(command[5:separator:2], command[6:separator:2]))
    assert options == {"--server.headless": "true", "--server.address": "0.0.0.0", "--server.port": "9999",
                       "--browser.gatherUsageStats": "false", "--client.toolbarMode": "minimal"}
    assert command[separator:] == ["--", "--model", str(tmp_path.resolve())]
    assert model_dir_from_command_line(command[separator + 1:]) == str(tmp_path.resolve())


def test_app_on_a_folder_that_is_not_a_model_is_one_error_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["app", str(tmp_path), "--port", str(free_port())])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("prodcat: error:") and str(tmp_path) in error
    assert "\n" not in error
