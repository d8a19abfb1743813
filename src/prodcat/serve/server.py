"""The HTTP API: a thin FastAPI layer over `Categorizer`.

    >>> from prodcat.serve import create_app
    >>> app = create_app("models/shirts", max_products=500)      # doctest: +SKIP
    >>> # or, from a shell:  prodcat serve models/shirts --port 8000 --workers 2

Endpoints:
  POST /v1/predict?top_k=3&target_precision=0.95   JSON list of products -> predictions
  POST /v1/predict/file                            CSV/TSV/JSONL/Parquet upload -> the same format back
  GET  /health                                     {"status": "ok", "model": name}
  GET  /v1/model                                   model name and params, fields, classes, metrics, review threshold
  GET  /docs, /openapi.json                        the described API

Every mistake a client can make gets a 4xx `{"error": "one line"}` naming the
product index and field; a 500 means a bug in prodcat, and is logged.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import math
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, fields, replace
from functools import partial
from pathlib import Path, PureWindowsPath
from typing import Any

from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prodcat import __version__
from prodcat.artifacts import user_path
from prodcat.categorizer import Categorizer
from prodcat.catalog.load import served_image_folder
from prodcat.catalog.readers import reword_encoding_hint
from prodcat.errors import ConfigError, ProdcatError
from prodcat.listen import check_can_listen
from prodcat.serve.batching import MicroBatcher
from prodcat.serve.validation import (
    IMAGE_FIELD,
    RequestError,
    ServeLimits,
    check_products,
    image_keys,
    parse_json_body,
)

#: the model directory a worker process loads (set by `serve` for --workers > 1)
MODEL_DIR_ENV = "PRODCAT_MODEL_DIR"
#: ServeLimits as JSON, for the same reason
LIMITS_ENV = "PRODCAT_SERVE_LIMITS"
FILE_ROUTE = "/v1/predict/file"

UPLOAD_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
UPLOAD_CONTENT_TYPES = {
    "text/csv": ".csv",
    "text/tab-separated-values": ".tsv",
    "application/x-ndjson": ".jsonl",
    "application/jsonl": ".jsonl",
    "application/vnd.apache.parquet": ".parquet",
    "application/x-parquet": ".parquet",
}
MEDIA_TYPES = {
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}

log = logging.getLogger("prodcat.serve")


# --------------------------------------------------------------- response models
class TopLabel(BaseModel):
    label: str = Field(description="A class the model knows.")
    probability: float = Field(description="The model's calibrated probability of that class (0 to 1).")


class Prediction(BaseModel):
    prediction: str = Field(description="The chosen category; multi-label models join their labels with '|'.")
    confidence: float = Field(description="Probability of the chosen category (multi-label: of the least sure label).")
    needs_review: bool = Field(description="True when confidence is under the review threshold.")
    top_k: list[TopLabel] = Field(description="The most probable classes, best first.")
    confident_path: str | None = Field(
        default=None, description="Path models: the predicted path cut at its deepest level confident enough for "
        "that level's review threshold ('' where none is); absent for other models.")
    confident_level: int | None = Field(
        default=None, description="Path models: that level (1 = top; 0 where none is).")


class PredictResponse(BaseModel):
    model: str = Field(description="The registered model name.")
    review_threshold: float | None = Field(
        description="Confidence under which a prediction needs review (null: every prediction does)."
    )
    predictions: list[Prediction] = Field(description="One per product, in request order.")


class Health(BaseModel):
    status: str = Field(description="'ok' once the model is loaded.")
    model: str = Field(description="The registered model name.")


class ModelName(BaseModel):
    name: str
    params: dict[str, Any]


class ModelInfo(BaseModel):
    model: ModelName
    prodcat_version: str = Field(description="The prodcat serving this model.")
    trained_with_prodcat: str | None = Field(description="The prodcat that saved the model directory.")
    created: str | None = Field(description="When the model directory was saved (UTC, ISO 8601).")
    text_fields: list[str] = Field(description="The product fields the model reads, by name.")
    reads_images: bool = Field(
        description="Whether the model reads the product photo sent as base64 in `image` (else it is ignored)."
    )
    id_fields: list[str] = Field(description="Id columns copied into prediction files.")
    label_format: str = Field(description="single, multi or path.")
    n_classes: int
    classes: list[str]
    metrics: dict[str, Any] = Field(description="Headline metrics on train / validation / held-out test.")
    review: dict[str, Any] = Field(
        description="The review threshold and the target precision, coverage and precision it had on validation."
    )
    exported: dict[str, Any] | None = Field(
        default=None,
        description="For a model from `prodcat export` (run by ONNX Runtime): its source model, quantization, "
                    "the members exported (an ensemble) and how closely it reproduced PyTorch; null otherwise.",
    )


class ErrorBody(BaseModel):
    error: str = Field(description="One line naming the problem (product index and field where there is one).")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "400": {"model": ErrorBody, "description": "The body is not valid JSON."},
    "413": {"model": ErrorBody, "description": "The body, an image or the number of products is over its limit."},
    "422": {"model": ErrorBody, "description": "A product, field or option is invalid."},
}


# ------------------------------------------------------------------ middleware
class BodyTooLarge(StarletteHTTPException):
    """Raised while a body streams in, so even chunked bodies stop at the limit.

    An HTTPException, because FastAPI turns other errors raised while it parses
    a form into a generic 400."""

    def __init__(self, limit: int):
        super().__init__(413, f"request body over the limit of {limit:,} bytes")


class _BodyLimit:
    """413 for a body over the route's limit: at once from Content-Length, or
    as soon as the streamed bytes pass it."""

    def __init__(self, app: ASGIApp, limits: ServeLimits):
        self.app, self.limits = app, limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.max_upload_bytes if scope["path"] == FILE_ROUTE else self.limits.max_body_bytes
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await JSONResponse({"error": BodyTooLarge(limit).detail}, status_code=413)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


class _CatchAll:
    """The last resort: an exception no handler knew is a bug in prodcat. Log it
    with its traceback, count it, and answer a JSON 500."""

    def __init__(self, app: ASGIApp, counter: dict[str, int]):
        self.app, self.counter = app, counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            self.counter["internal_errors"] += 1
            log.exception("internal error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            body = {"error": "internal error in prodcat (logged on the server); please report it"}
            await JSONResponse(body, status_code=500)(scope, receive, send)


# ----------------------------------------------------------------------- app
def create_app(
    model: str | Path | Categorizer, *, limits: ServeLimits | None = None, **limit_overrides: Any
) -> FastAPI:
    """The FastAPI app serving one model.

    model: a model directory (loaded once when the app starts) or a fitted Categorizer.
    limits / limit_overrides: a ServeLimits, and/or any of its fields by name:
        max_body_bytes (10 MiB), max_upload_bytes (200 MiB), max_products (1000),
        max_text_chars (20,000), max_image_bytes (5 MiB), max_image_pixels (16 million),
        max_request_pixels (250 million), max_top_k (100),
        batch_wait_ms (2), max_batch_products (512).

        >>> app = create_app("models/shirts", max_products=100)      # doctest: +SKIP
        >>> with TestClient(app) as client:                          # doctest: +SKIP
        ...     client.post("/v1/predict", json=[{"title": "oxford shirt"}]).json()
    """
    known = {f.name for f in fields(ServeLimits)}
    unknown = sorted(set(limit_overrides) - known)
    if unknown:
        raise ConfigError(f"unknown server limit(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if limits is not None and not isinstance(limits, ServeLimits):
        raise ConfigError(f"limits must be a ServeLimits (or pass its fields by name), got a {type(limits).__name__}")
    if not isinstance(model, Categorizer):
        # checked now, not when the app starts: Path(None) there was a bare TypeError
        model = user_path(model, "the model directory")
    limits = replace(limits or ServeLimits(), **limit_overrides)
    counter = {"internal_errors": 0}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        clf = model if isinstance(model, Categorizer) else Categorizer.load(model, quiet=True)
        batcher = MicroBatcher(clf, max_wait_s=limits.batch_wait_ms / 1000, max_products=limits.max_batch_products)
        await batcher.start()
        app.state.clf, app.state.batcher = clf, batcher
        app.state.reads_images = clf.reads_images()
        app.state.reads_only_images = clf.reads_only_images()
        app.state.photo_header = None
        if app.state.reads_images:
            from prodcat.images.decode import header_pixels  # Pillow loads only for models that read photos

            app.state.photo_header = partial(header_pixels, max_pixels=limits.max_image_pixels)
        # Whole files run beside the batcher, one at a time, so a large upload
        # does not hold up single-product requests.
        app.state.file_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prodcat-file")
        try:
            yield
        finally:
            await batcher.stop()
            app.state.file_executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="prodcat",
        version=__version__,
        summary="Put e-commerce products into categories.",
        description=(
            "Predicts the category of products with a model trained by `prodcat train`. "
            "Every client mistake is answered with a 4xx and `{\"error\": \"...\"}` naming the product and field."
        ),
        lifespan=lifespan,
    )
    app.state.limits = limits
    app.state.counter = counter

    # ---------------------------------------------------------- error handlers
    @app.exception_handler(RequestError)
    async def _request_error(request: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status_code)

    @app.exception_handler(ProdcatError)
    async def _prodcat_error(request: Request, exc: ProdcatError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            message = f"no such endpoint: {request.url.path} (see /docs)"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": _validation_message(exc)}, status_code=422)

    # ---------------------------------------------------------------- routes
    TopK = Query(3, ge=1, le=limits.max_top_k, description="How many of the most probable classes to return.")
    TargetPrecision = Query(
        None, gt=0, le=1,
        description="Flag predictions for review below the threshold that reached this precision on validation "
        "(default: the model's own target).",
    )

    @app.get("/health", response_model=Health, tags=["service"])
    async def health(request: Request) -> dict:
        """Whether the server is up with its model loaded."""
        return {"status": "ok", "model": request.app.state.clf.model}

    @app.get("/v1/model", response_model=ModelInfo, tags=["service"])
    async def model_info(request: Request) -> JSONResponse:
        """What the model is: name and params, the fields it reads, its classes, metrics and review threshold."""
        return JSONResponse(_finite(describe_model(request.app.state.clf)))

    @app.post(
        "/v1/predict",
        response_model=PredictResponse,
        responses=ERROR_RESPONSES,
        tags=["predict"],
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "array", "minItems": 1, "maxItems": limits.max_products,
            "items": {"type": "object", "additionalProperties": True},
            "description": "Products, each an object with the model's text fields (see GET /v1/model).",
        }}}}},
    )
    async def predict(request: Request, top_k: int = TopK, target_precision: float | None = TargetPrecision):
        """Categorize a JSON list of products.

        Each product holds the model's text fields by their column names (GET
        /v1/model lists them); a missing or null field reads as empty, but at
        least one must be there, unless the model reads photos and the product
        has one. Other keys are ignored, except `image`, a base64 photo (JPEG,
        PNG, ...) that image models and text + image ensembles read; a product
        without one falls back to its text, or is refused (422) by a model
        that reads nothing but photos. Concurrent requests share model
        calls, so many small requests cost little more than one large one.
        """
        clf = request.app.state.clf
        mapping = clf.fields_
        products = check_products(
            parse_json_body(await request.body()), mapping.text_cols, limits,
            photo_keys=image_keys(mapping.image_col, mapping.text_cols, mapping.id_cols),
            image_only=request.app.state.reads_images, photo_required=request.app.state.reads_only_images,
            photo_header=request.app.state.photo_header,
        )
        # Checked here so an unreachable target fails this request alone, not a shared batch.
        threshold = clf.review_threshold(target_precision)
        rows = await request.app.state.batcher.predict(products, top_k, target_precision)
        return JSONResponse({"model": clf.model, "review_threshold": threshold, "predictions": rows})

    @app.post(
        FILE_ROUTE,
        responses={
            "200": {"description": "The predictions, in the upload's format: id columns (or a 1-based `row`; an id "
                    "column named like a column below is sent as `id:NAME`), "
                    "prediction, confidence, needs_review, label_1, prob_1, ...",
                    "content": {media: {} for media in MEDIA_TYPES.values()}},
            "415": {"model": ErrorBody, "description": "The upload is not CSV, TSV, JSONL or Parquet."},
            **ERROR_RESPONSES,
        },
        response_class=FileResponse,
        tags=["predict"],
    )
    async def predict_file(
        request: Request,
        file: UploadFile = File(description="A catalog (.csv, .tsv, .jsonl, .parquet) with the model's text columns."),
        top_k: int = TopK,
        target_precision: float | None = TargetPrecision,
        encoding: str = Query("utf-8", max_length=40, description="Text encoding of a CSV, TSV or JSONL upload "
                              "(e.g. cp1252 for a CSV saved by Excel on Windows)."),
        text_cols: str | None = Query(None, max_length=1_000, description="The upload's text columns, "
                                      "comma-separated, standing in order for the model's own (default: the "
                                      "model's column names)."),
        header: bool | None = Query(None, description="Whether the upload's first row names its columns "
                                    "(default: as the model's training file; a model trained on a file without "
                                    "one reads uploads without one)."),
    ):
        """Categorize a whole catalog file; the predictions come back in the same format, in input order."""
        clf = request.app.state.clf
        sent = len((await request.form()).getlist("file"))
        if sent > 1:
            # FastAPI keeps the last one: the others would go unpredicted without a word.
            raise RequestError(422, f"form field 'file' came {sent} times: send one catalog per request")
        name = file.filename or "upload"
        suffix = _upload_suffix(name, file.content_type)
        clf.review_threshold(target_precision)
        layout = {}
        if text_cols is not None:
            layout["text_cols"] = [c.strip() for c in text_cols.split(",") if c.strip()]
            if not layout["text_cols"]:
                raise RequestError(422, f"text_cols holds no column name: {text_cols!r}")
        if header is not None:
            layout["header"] = header
        workdir = Path(tempfile.mkdtemp(prefix="prodcat-serve-"))
        source, out = workdir / f"upload{suffix}", workdir / f"predictions{suffix}"
        # A shallow copy shares the fitted model; only how the upload is read differs.
        reader = copy.copy(clf)
        reader.fields_ = replace(clf.fields_, file_format=UPLOAD_SUFFIXES[suffix])
        if clf.reads_images() and clf.fields_.image_col:
            # The upload's folder holds no photos: they are read from the server's own image folder.
            reader.fields_ = replace(reader.fields_, image_root=str(served_image_folder(clf.fields_)))
        reader.quiet = True
        loop = asyncio.get_running_loop()
        try:
            with source.open("wb") as handle:
                await loop.run_in_executor(None, shutil.copyfileobj, file.file, handle, 1 << 20)
            summary = await loop.run_in_executor(
                request.app.state.file_executor,
                # A client's file may name any path on this machine: photos are read only inside the image folder.
                lambda: reader.predict_file(source, out, top_k=top_k, target_precision=target_precision,
                                            confine_photos=True, encoding=encoding, **layout),
            )
        except ProdcatError as exc:
            shutil.rmtree(workdir, ignore_errors=True)
            raise RequestError(422, _as_the_api_says_it(str(exc).replace(str(source), name))) from None
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        stem = Path(name).stem or "upload"
        return FileResponse(
            out,
            media_type=MEDIA_TYPES[UPLOAD_SUFFIXES[suffix]],
            filename=f"{stem}.predictions{suffix}",
            headers={"X-Prodcat-Rows": str(summary["rows"]), "X-Prodcat-Needs-Review": str(summary["needs_review"])},
            background=BackgroundTask(shutil.rmtree, workdir, ignore_errors=True),
        )

    def openapi() -> dict[str, Any]:
        # The product schema names the loaded model's own fields, known only
        # once the lifespan has loaded it.
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, summary=app.summary,
                                 description=app.description, routes=app.routes)
            clf = getattr(app.state, "clf", None)
            if clf is not None:
                body = schema["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["application/json"]
                body["schema"]["items"] = product_schema(clf, limits)
                body["example"] = [{column: "..." for column in clf.fields_.text_cols}]
                app.openapi_schema = schema
            return schema
        return app.openapi_schema

    app.openapi = openapi
    app.add_middleware(_BodyLimit, limits=limits)
    app.add_middleware(_CatchAll, counter=counter)
    return app


def _as_the_api_says_it(message: str) -> str:
    """A reader's error in the API's words: query parameters (`encoding`, `header`, `text_cols`),
    not the CLI's options."""
    message = message.replace("needs --header", "needs ?header=true").replace("pass --text-cols", "pass ?text_cols=")
    return reword_encoding_hint(message, lambda name: "pass its real encoding as ?encoding=" if name is None
                                else f"add ?encoding={name} to the URL")


def product_schema(clf: Categorizer, limits: ServeLimits) -> dict[str, Any]:
    """JSON schema of one product for this model."""
    properties: dict[str, Any] = {
        column: {"type": ["string", "null"], "maxLength": limits.max_text_chars,
                 "description": f"Text field {column!r} (missing or null reads as empty)."}
        for column in clf.fields_.text_cols
    }
    if IMAGE_FIELD not in properties:
        used = ("read by this model, which reads nothing else: required" if clf.reads_only_images()
                else "read by this model; a product without one falls back to its text" if clf.reads_images()
                else "checked, and ignored by this text model")
        properties[IMAGE_FIELD] = {
            "type": ["string", "null"], "contentEncoding": "base64",
            "description": f"A product photo (JPEG, PNG, ...) as base64, at most {limits.max_image_bytes:,} "
            f"bytes decoded; {used}.",
        }
    return {
        "type": "object",
        "properties": properties,
        "additionalProperties": True,
        "description": "One product: at least one of the text fields (or, for a model that reads photos, "
        "an image); other keys are ignored.",
    }


def describe_model(clf: Categorizer) -> dict[str, Any]:
    """The part of a model's manifest a client needs (see ModelInfo)."""
    manifest = getattr(clf, "manifest_", None) or {}
    mapping = clf.fields_
    review = dict(getattr(clf, "review_", None) or {})
    review["threshold"] = clf.review_threshold()
    return {
        "model": {"name": clf.model,
                  "params": _client_params(manifest.get("model", {}).get("params", clf.params or {}))},
        "prodcat_version": __version__,
        "trained_with_prodcat": manifest.get("prodcat_version"),
        "created": manifest.get("created"),
        "text_fields": list(mapping.text_cols),
        "reads_images": clf.reads_images(),
        "id_fields": list(mapping.id_cols),
        "label_format": mapping.label_format,
        "n_classes": len(clf.classes_),
        "classes": clf.classes_,
        "metrics": manifest.get("metrics", getattr(clf, "metrics_", {})),
        "review": review,
        "exported": _export_summary((getattr(clf, "training_", None) or {}).get("export")),
    }


def _client_params(value: Any) -> Any:
    """A model's params as a client sees them: a `checkpoint` directory (bert's, image-pretrained's,
    at any depth: an ensemble's members, an export's source) by its last name only, since its full
    path is the training machine's file layout; the manifest keeps the whole path."""
    if isinstance(value, dict):
        return {key: _checkpoint_shown(item) if key == "checkpoint" and isinstance(item, str) else _client_params(item)
                for key, item in value.items()}
    if isinstance(value, list):
        return [_client_params(item) for item in value]
    return value


def _checkpoint_shown(checkpoint: str) -> str:
    # A hub id ("name" or "owner/name", as bert tells one from a path) names no file of anyone's.
    if (not checkpoint.startswith((".", "/", "~")) and "\\" not in checkpoint and ":" not in checkpoint
            and checkpoint.count("/") <= 1):
        return checkpoint
    return PureWindowsPath(checkpoint).name  # splits at "/" and "\\" alike


def _export_summary(export: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a client may want of an export's record: not the paths or library versions of the machine it ran on."""
    if not isinstance(export, dict):
        return None
    keys = ("format", "source_model", "quantize", "members", "check", "exported")
    return {key: export[key] for key in keys if key in export}


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: such metrics read as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        loc = [str(x) for x in error.get("loc", ())]
        where = {"query": "query parameter", "body": "form field", "path": "path parameter",
                 "header": "header"}.get(loc[0] if loc else "", "")
        name = ".".join(loc[1:]) if len(loc) > 1 else "request"
        message = error.get("msg", "invalid")
        if loc[:2] == ["body", "file"] and "Expected UploadFile" in message:
            # a part without a file name reaches the endpoint as text (curl -F file=catalog.csv, no @)
            message = "text, not a file: send the catalog as a file part with a file name (curl -F file=@catalog.csv)"
        parts.append(f"{where} {name!r}: {message}".strip())
    return "; ".join(parts) or "invalid request"


def _upload_suffix(name: str, content_type: str | None) -> str:
    suffix = Path(name).suffix.lower()
    if suffix in UPLOAD_SUFFIXES:
        return suffix
    by_type = UPLOAD_CONTENT_TYPES.get((content_type or "").split(";")[0].strip().lower())
    if by_type is not None and not suffix:
        return by_type
    raise RequestError(415, f"cannot read upload {name!r}: send a .csv, .tsv, .jsonl or .parquet file")


# ------------------------------------------------------------------ entry points
def app_from_env() -> FastAPI:
    """The app for a uvicorn worker process: the model directory comes from
    PRODCAT_MODEL_DIR (and limits from PRODCAT_SERVE_LIMITS), set by `serve`.

        $ PRODCAT_MODEL_DIR=models/shirts uvicorn prodcat.serve.server:app_from_env --factory
    """
    model_dir = os.environ.get(MODEL_DIR_ENV)
    if not model_dir:
        raise ConfigError(f"set {MODEL_DIR_ENV} to a model directory")
    limits = ServeLimits(**json.loads(os.environ[LIMITS_ENV])) if os.environ.get(LIMITS_ENV) else None
    return create_app(model_dir, limits=limits)


def serve(
    model_dir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    limits: ServeLimits | None = None,
    log_level: str = "info",
) -> None:
    """Serve a model directory over HTTP until interrupted (what `prodcat serve` runs).

    The model is loaded and checked before uvicorn starts, so a missing or
    broken directory fails with its one-line ModelDirError, not a traceback
    from a worker. With workers > 1 each process loads the model once.

        >>> serve("models/shirts", port=8000, workers=2)      # doctest: +SKIP
    """
    import uvicorn

    # "2" or "8000" failed on the comparisons with a TypeError
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"--workers must be 1 or more, got {workers!r}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535, got {port!r}")
    # expanded here, not only by load: the workers read the folder from the environment
    model_dir = user_path(model_dir, "the model directory")
    clf = Categorizer.load(model_dir, quiet=True)
    check_can_listen(host, port)
    if workers == 1:
        uvicorn.run(create_app(clf, limits=limits), host=host, port=port, log_level=log_level)
        return
    del clf  # each worker loads its own
    os.environ[MODEL_DIR_ENV] = str(Path(model_dir).resolve())
    if limits is not None:
        os.environ[LIMITS_ENV] = json.dumps(asdict(limits))
    uvicorn.run(f"{__name__}:app_from_env", factory=True, workers=workers, host=host, port=port, log_level=log_level)
