"""`prodcat app` refuses what would stop Streamlit, in one line, before Streamlit starts."""

from __future__ import annotations

import socket
import subprocess

import pytest

from cli_runner import run


@pytest.fixture
def no_streamlit(monkeypatch):
    def popen(*args, **kwargs):
        raise AssertionError("Streamlit was started")

    monkeypatch.setattr(subprocess, "Popen", popen)


def test_a_taken_port_is_one_line_before_streamlit_starts(model_dir, capsys, no_streamlit):
    # Streamlit used to start and say "Port N is not available" in a log line of its own.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run(capsys, "app", model_dir, "--port", port)
    assert code == 2
    assert err.strip().splitlines() == [f"prodcat: error: cannot listen on 127.0.0.1:{port}: Address already in use"]


def test_a_host_that_does_not_resolve_is_one_line_before_streamlit_starts(model_dir, capsys, no_streamlit):
    # Streamlit used to end in a socket.gaierror traceback.
    code, _, err = run(capsys, "app", model_dir, "--host", "no-such-host.invalid", "--port", "8599")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("prodcat: error: cannot listen on no-such-host.invalid:8599: ")


@pytest.mark.parametrize("argv, message", [
    (["app", "missing"], "model directory not found: missing"),
    (["app", "MODEL", "--port", "0"], "--port must be between 1 and 65535, got 0"),
])
def test_a_missing_model_or_a_port_out_of_range_is_one_line(model_dir, capsys, no_streamlit, argv, message):
    argv = [model_dir if a == "MODEL" else a for a in argv]
    code, _, err = run(capsys, *argv)
    assert code == 2 and err.strip().splitlines() == [f"prodcat: error: {message}"]
