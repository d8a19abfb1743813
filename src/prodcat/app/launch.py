"""Start the Streamlit server for `prodcat app MODEL_DIR`.

    >>> from prodcat.app.launch import launch, streamlit_command
    >>> streamlit_command("models/demo", host="127.0.0.1", port=8501)[:4]  # doctest: +ELLIPSIS
    ['...', '-m', 'streamlit', 'run']
    >>> launch("models/demo", port=8501)                   # doctest: +SKIP

The model directory is loaded once here before Streamlit starts, so a wrong
path is one error line on the terminal rather than a page that cannot load.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from prodcat.errors import ConfigError

APP_SCRIPT = Path(__file__).with_name("streamlit_app.py")
#: where the app looks for its model directory when no --model is given
MODEL_ENV = "PRODCAT_APP_MODEL"
# After Ctrl+C, how long Streamlit gets to close its sessions before it is killed.
SHUTDOWN_GRACE_SECONDS = 10


def streamlit_command(model_dir: str | Path, *, host: str = "127.0.0.1", port: int = 8501) -> list[str]:
    """The command line that serves the app for `model_dir`."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT),
        "--server.headless", "true",
        "--server.address", host,
        "--server.port", str(port),
        "--browser.gatherUsageStats", "false",
        # Streamlit's toolbar would offer to deploy to its cloud; prodcat users want the app only.
        "--client.toolbarMode", "minimal",
        "--", "--model", str(Path(model_dir).resolve()),
    ]


def model_dir_from_command_line(argv: list[str]) -> str | None:
    """The app script's side of `streamlit_command`: `--model DIR`, else $PRODCAT_APP_MODEL.

    >>> model_dir_from_command_line(["--model", "models/demo"])
    'models/demo'
    """
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--model")
    # parse_known_args: under AppTest sys.argv is pytest's, full of options not meant for us.
    known, _ = parser.parse_known_args(argv)
    return known.model or os.environ.get(MODEL_ENV) or None


def launch(model_dir: str | Path, *, host: str = "127.0.0.1", port: int = 8501) -> None:
    """Check the model directory, then serve the app until the server stops.

    Raises ModelDirError (one line) for a directory that is not a model, and
    ConfigError for a port outside 1-65535, a port in use or a host that does
    not resolve. Exits with Streamlit's status when the server fails.
    """
    from prodcat import Categorizer

    from prodcat.listen import check_can_listen

    if not 0 < port < 65536:
        raise ConfigError(f"--port must be between 1 and 65535, got {port}")
    Categorizer.load(model_dir, quiet=True)
    # Streamlit would answer a taken port with a log line and an unknown host with a traceback.
    check_can_listen(host, port)
    server = subprocess.Popen(streamlit_command(model_dir, host=host, port=port))
    previous = None
    if threading.current_thread() is threading.main_thread():
        # Whoever stops `prodcat app` (a service manager, a test) stops the
        # server too, instead of leaving it serving as an orphan.
        previous = signal.signal(signal.SIGTERM, lambda *_: server.terminate())
    try:
        status = server.wait()
    except KeyboardInterrupt:
        # Ctrl+C reached Streamlit as well (same process group); let it finish.
        try:
            status = server.wait(timeout=SHUTDOWN_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            server.kill()
            status = server.wait()
        if status in (0, -signal.SIGINT):
            return
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if status not in (0, -signal.SIGTERM):
        raise SystemExit(status if status > 0 else 1)
