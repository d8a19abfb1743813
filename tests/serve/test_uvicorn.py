"""The API on a real socket: uvicorn in a thread, and `prodcat serve` as a process."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from prodcat import Categorizer
from prodcat.errors import ConfigError, ModelDirError
from prodcat.serve import ServeLimits, app_from_env, create_app, serve
from prodcat.serve.server import LIMITS_ENV, MODEL_DIR_ENV
from tiny_catalogs import tiny_frame

pytestmark = pytest.mark.timeout(120)
TIMEOUT = httpx.Timeout(10.0)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    clf = Categorizer(text_cols=["title", "description"], label_col="category", label_format="path", quiet=True)
    clf.fit(tiny_frame())
    return clf.save(tmp_path_factory.mktemp("uvicorn") / "model")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_health(url: str, seconds: float, process: subprocess.Popen | None = None) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}: {process.stderr.read()}")
        try:
            response = httpx.get(url + "/health", timeout=1.0)
            if response.status_code == 200:
                return response.json()
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer /health within {seconds} s")


def test_a_real_uvicorn_server_answers_and_batches_concurrent_requests(model_dir):
    port = free_port()
    app = create_app(model_dir, batch_wait_ms=5)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_for_health(url, 20) == {"status": "ok", "model": "tfidf-linear"}
        with httpx.Client(base_url=url, timeout=TIMEOUT) as client:
            one = client.post("/v1/predict", json=[{"title": "oxford cotton shirt"}])
            assert one.status_code == 200
            assert one.json()["predictions"][0]["prediction"] == "Apparel > Shirts"
            bad = client.post("/v1/predict", content=b"[{", headers={"content-type": "application/json"})
            assert bad.status_code == 400 and "invalid JSON" in bad.json()["error"]
            assert client.get("/v1/model").json()["text_fields"] == ["title", "description"]

        titles = ["oxford cotton shirt", "leather running sneaker", "steel chef knife", "linen duvet pillow"] * 8
        calls_before = app.state.batcher.model_calls

        async def burst():
            async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as client:
                return await asyncio.gather(*(client.post("/v1/predict", json=[{"title": t}]) for t in titles))

        responses = asyncio.run(burst())
        assert [r.status_code for r in responses] == [200] * len(titles)
        predicted = [r.json()["predictions"][0]["prediction"] for r in responses]
        assert predicted == ["Apparel > Shirts", "Apparel > Shoes", "Home > Kitchen", "Home > Bedding"] * 8
        assert app.state.batcher.model_calls - calls_before < len(titles)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
    assert not thread.is_alive()
    assert app.state.counter["internal_errors"] == 0


@pytest.mark.slow
def test_prodcat_serve_with_two_workers(model_dir):
    # Each worker process imports prodcat and loads the model: ~15 s on 2 cores.
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "prodcat.cli", "serve", str(model_dir), "--port", str(port), "--workers", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_for_health(url, 90, process)["model"] == "tfidf-linear"
        with httpx.Client(base_url=url, timeout=TIMEOUT) as client:
            for _ in range(4):
                response = client.post("/v1/predict?top_k=1", json=[{"title": "linen duvet"}])
                assert response.status_code == 200
                assert response.json()["predictions"][0]["top_k"][0]["label"] == "Home > Bedding"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    assert "Traceback" not in process.stderr.read()


def test_worker_processes_build_the_app_from_the_environment(model_dir, monkeypatch):
    monkeypatch.delenv(MODEL_DIR_ENV, raising=False)
    with pytest.raises(ConfigError, match=MODEL_DIR_ENV):
        app_from_env()
    monkeypatch.setenv(MODEL_DIR_ENV, str(model_dir))
    monkeypatch.setenv(LIMITS_ENV, json.dumps({"max_products": 2}))
    with TestClient(app_from_env()) as client:
        assert client.get("/health").json() == {"status": "ok", "model": "tfidf-linear"}
        response = client.post("/v1/predict", json=[{"title": "linen duvet"}] * 3)
    assert response.status_code == 413 and "the limit is 2" in response.json()["error"]


def test_serve_hands_uvicorn_a_factory_for_several_workers(model_dir, monkeypatch):
    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: seen.update(app=app, **options))
    # serve() sets these for its worker processes; recorded here so the test leaves none behind.
    monkeypatch.delenv(MODEL_DIR_ENV, raising=False)
    monkeypatch.delenv(LIMITS_ENV, raising=False)
    serve(model_dir, port=free_port(), workers=3, limits=ServeLimits(max_products=7))
    assert seen["app"] == "prodcat.serve.server:app_from_env" and seen["factory"] is True and seen["workers"] == 3
    assert os.environ[MODEL_DIR_ENV] == str(model_dir.resolve())
    assert json.loads(os.environ[LIMITS_ENV])["max_products"] == 7


def test_several_workers_load_a_model_dir_given_from_the_home_folder(model_dir, tmp_path, monkeypatch):
    # the workers' environment named a folder "~" under the current directory, which none could load
    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: seen.update(app=app, **options))
    monkeypatch.delenv(MODEL_DIR_ENV, raising=False)
    monkeypatch.setenv("HOME", str(model_dir.parent))
    monkeypatch.chdir(tmp_path)
    serve(f"~/{model_dir.name}", port=free_port(), workers=2)
    assert os.environ[MODEL_DIR_ENV] == str(model_dir.resolve())


def test_prodcat_serve_on_a_broken_model_dir_fails_in_one_line(tmp_path):
    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json")
    result = subprocess.run(
        [sys.executable, "-m", "prodcat.cli", "serve", str(broken), "--port", str(free_port())],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("prodcat: error: ") and str(broken) in lines[0]


def test_serve_checks_the_model_and_port_before_uvicorn_starts(model_dir, tmp_path):
    with pytest.raises(ModelDirError, match="missing"):
        serve(tmp_path / "missing", port=free_port())
    with pytest.raises(ConfigError, match="--workers must be 1 or more"):
        serve(model_dir, workers=0)
    # each of these failed on a comparison with a TypeError
    with pytest.raises(ConfigError, match="--workers must be 1 or more, got '2'"):
        serve(model_dir, workers="2")
    with pytest.raises(ConfigError, match="--port must be between 0 and 65535, got '8000'"):
        serve(model_dir, port="8000")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
            serve(model_dir, port=port)


def test_prodcat_serve_takes_its_photo_pixel_limits(model_dir, monkeypatch, capsys):
    from cli_runner import run

    import prodcat.serve.server as server

    seen = {}
    monkeypatch.setattr(server, "serve", lambda model, **options: seen.update(options))
    code, _, err = run(capsys, "serve", model_dir, "--max-image-pixels", "4000000", "--max-request-pixels", "90000000")
    assert code == 0, err
    assert seen["limits"] == ServeLimits(max_image_pixels=4_000_000, max_request_pixels=90_000_000)
    code, _, err = run(capsys, "serve", model_dir, "--max-image-pixels", "0")
    assert code == 2 and err.strip() == ("prodcat: error: server limit max_image_pixels must be a whole number, "
                                         "1 or more; got 0")
    code, _, err = run(capsys, "serve", model_dir, "--max-image-pixels", "50000000")
    assert code == 2 and err.strip() == ("prodcat: error: server limit max_image_pixels can be at most 40,000,000, "
                                         "the largest photo prodcat decodes; got 50,000,000")
