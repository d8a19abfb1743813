"""Serving a model over HTTP (FastAPI + uvicorn): `prodcat serve MODEL_DIR`.

    >>> from prodcat.serve import create_app, serve
    >>> app = create_app("models/shirts")          # an ASGI app; the model loads at start-up  # doctest: +SKIP
    >>> serve("models/shirts", port=8000)          # blocks, like `prodcat serve`              # doctest: +SKIP
"""

from prodcat.serve.batching import MicroBatcher
from prodcat.serve.server import app_from_env, create_app, serve
from prodcat.serve.validation import ServeLimits

__all__ = ["MicroBatcher", "ServeLimits", "app_from_env", "create_app", "serve"]
