"""Checks on what a client sends, each failure one line naming the product and field.

A request is checked whole before any product reaches the model, so a bad
product never costs model time, and never fails a batch it shares with other
requests.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, fields
from numbers import Integral, Real
from typing import Any, Callable

from prodcat.catalog.readers import dict_field
from prodcat.errors import ConfigError
from prodcat.images.decode import CLIENT_MAX_PIXELS, DEFAULT_MAX_PIXELS

IMAGE_FIELD = "image"
_DATA_URL = re.compile(r"^data:[\w/+.-]*;base64,")


@dataclass(frozen=True)
class ServeLimits:
    """What one request may hold; every limit answers with a 4xx naming it.

    max_body_bytes: a /v1/predict body (larger: 413).
    max_upload_bytes: a /v1/predict/file upload (larger: 413).
    max_products: products in one /v1/predict request (more: 413).
    max_text_chars: characters in one text field (more: 422).
    max_image_bytes: decoded size of one base64 image (larger: 413).
    max_image_pixels: pixels one photo may claim in its header (more: 413), for
        a model that reads photos; a PNG of a few KB can claim 40 megapixels, and
        decoding it costs this machine about a second.
    max_request_pixels: pixels the photos of one request may claim together
        (more: 413), so a request of many small photos claiming huge sizes cannot
        cost minutes of decoding; ordinary photos reach the body limit first.
    max_top_k: the largest top_k a client may ask for.
    batch_wait_ms: how long a request waits for others to share a model call.
    max_batch_products: products in one model call (a larger request is not split).
    """

    max_body_bytes: int = 10 * 1024 * 1024
    max_upload_bytes: int = 200 * 1024 * 1024
    max_products: int = 1000
    max_text_chars: int = 20_000
    max_image_bytes: int = 5 * 1024 * 1024
    max_image_pixels: int = CLIENT_MAX_PIXELS
    max_request_pixels: int = 250_000_000
    max_top_k: int = 100
    batch_wait_ms: float = 2.0
    max_batch_products: int = 512

    def __post_init__(self):
        # Checked when the app is made: max_products="10" answered every request with a 500,
        # and max_products=0 refused every product.
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "batch_wait_ms":
                if isinstance(value, bool) or not isinstance(value, Real) or not 0 <= value < float("inf"):
                    raise ConfigError(f"server limit batch_wait_ms must be a number of milliseconds, 0 or more; "
                                      f"got {value!r}")
            elif isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
                raise ConfigError(f"server limit {item.name} must be a whole number, 1 or more; got {value!r}")
        if self.max_image_pixels > DEFAULT_MAX_PIXELS:
            # the models decode no larger photo: one between the two would pass, then go unread without a word
            raise ConfigError(f"server limit max_image_pixels can be at most {DEFAULT_MAX_PIXELS:,}, the largest "
                              f"photo prodcat decodes; got {self.max_image_pixels:,}")


class RequestError(Exception):
    """A client mistake: an HTTP status and one line for `{"error": ...}`."""

    def __init__(self, status_code: int, message: str):
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def parse_json_body(body: bytes) -> Any:
    """The decoded JSON body, or a 400 saying where it is broken."""
    if not body.strip():
        raise RequestError(400, "empty body: send a JSON list of products")
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise RequestError(400, f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except UnicodeDecodeError:
        raise RequestError(400, "invalid JSON: the body is not UTF-8 text") from None
    except RecursionError:
        raise RequestError(400, "invalid JSON: nested too deeply") from None
    except ValueError as exc:
        # e.g. an integer literal longer than Python converts
        raise RequestError(400, f"invalid JSON: {exc}") from None


def image_keys(image_col: str | None, text_cols: tuple[str, ...], id_cols: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The product keys that may carry a base64 photo: `image`, and the model's
    own image column when that is not also a text or id column (the fashion
    preset's image column is the product id, which clients send as an id)."""
    keys = [IMAGE_FIELD]
    if image_col and image_col != IMAGE_FIELD and image_col not in text_cols and image_col not in id_cols:
        keys.append(image_col)
    return tuple(keys)


def check_products(
    payload: Any,
    text_cols: tuple[str, ...],
    limits: ServeLimits,
    *,
    photo_keys: tuple[str, ...] = (IMAGE_FIELD,),
    image_only: bool = False,
    photo_required: bool = False,
    photo_header: Callable[[bytes], tuple[int, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The products as {text column: string} dicts, ready for `predict_table`,
    with the decoded photo under `image` (bytes) when one was sent.

    Each product must be an object holding at least one of the model's text
    columns as a string; a null or absent field reads as empty. image_only:
    the model reads photos, so a product with a photo and no text is fine.
    photo_required: the model reads nothing but photos, so a product without
    one would only get its fallback prediction: refused instead.
    photo_header: for a model that reads photos, the pixels a photo's bytes
    claim and why they cannot be used (`prodcat.images.decode.header_pixels`
    with the server's max_image_pixels). A photo over that limit, or one
    taking the request's photos over max_request_pixels, is refused before
    anything is decoded; with photo_required, so is a photo that cannot be
    used for another reason (it would only get the fallback prediction).
    Other keys (ids, prices) are ignored, except those in `photo_keys`
    (see `image_keys`), which must be base64 when present; the first one
    present is the product's photo.
    """
    if not isinstance(payload, list):
        raise RequestError(422, f"the body must be a JSON list of products, got {_json_type(payload)}")
    if not payload:
        raise RequestError(422, "the list of products is empty")
    if len(payload) > limits.max_products:
        raise RequestError(
            413, f"{len(payload)} products in one request; the limit is {limits.max_products} (split the list)"
        )
    expected = ", ".join(repr(c) for c in text_cols)
    products = []
    request_pixels = 0
    for index, item in enumerate(payload):
        where = f"products[{index}]"
        if not isinstance(item, dict):
            raise RequestError(
                422, f"{where} is {_json_type(item)}; each product must be an object with fields {expected}"
            )
        product = {}
        for column in text_cols:
            value = dict_field(item, column)
            if value is None:
                continue
            if not isinstance(value, str):
                raise RequestError(422, f"{where}.{column} must be a string or null, got {_json_type(value)}")
            if len(value) > limits.max_text_chars:
                raise RequestError(
                    422, f"{where}.{column} has {len(value):,} characters; the limit is {limits.max_text_chars:,}"
                )
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                # JSON's "\ud800" escape decodes to half a character, which bert's tokenizer refuses with a
                # TypeError: a 500 for every request sharing the model call with this one
                raise RequestError(422, f"{where}.{column} holds an unpaired surrogate ({value[exc.start]!r} at "
                                        f"character {exc.start}), which is no text") from None
            product[column] = value
        photo = photo_key = None
        for key in photo_keys:
            if key in item and key not in text_cols:
                decoded = check_image(item[key], where, limits, key)
                if photo is None and decoded is not None:
                    photo, photo_key = decoded, key
        if photo is None and photo_required:
            raise RequestError(422, f"{where} has no {IMAGE_FIELD!r}, and the model reads only photos")
        if photo is not None and photo_header is not None:
            pixels, problem = photo_header(photo)
            if problem is not None and problem.kind == "too_large":
                raise RequestError(413, f"{where}.{photo_key} is too large a photo ({problem.reason}); "
                                        "send a smaller one")
            if problem is not None and photo_required:
                raise RequestError(422, f"{where}.{photo_key} cannot be used as a photo ({problem.reason}), "
                                        "and the model reads only photos")
            request_pixels += pixels
            if request_pixels > limits.max_request_pixels:
                raise RequestError(413, f"{where}.{photo_key} brings the request's photos to {request_pixels:,} "
                                        f"pixels; the limit is {limits.max_request_pixels:,} per request "
                                        "(split the list)")
        if not product and not (image_only and photo is not None):
            if not text_cols:
                raise RequestError(422, f"{where} has no {IMAGE_FIELD!r}, and the model reads only photos")
            fields = expected + (f" or an {IMAGE_FIELD!r}" if image_only else "")
            raise RequestError(422, f"{where} has none of the model's text fields ({fields})")
        checked: dict[str, Any] = {column: product.get(column, "") for column in text_cols}
        if photo is not None:
            checked[IMAGE_FIELD] = photo
        products.append(checked)
    return products


def check_image(value: Any, where: str, limits: ServeLimits, key: str = IMAGE_FIELD) -> bytes | None:
    """The decoded image bytes (None for null), or a 4xx naming the product and its `key`."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise RequestError(422, f"{where}.{key} must be a base64 string or null, got {_json_type(value)}")
    # Mail-style base64 wraps lines; the line breaks carry nothing.
    encoded = "".join(_DATA_URL.sub("", value, count=1).split())
    # Checked before decoding, so an oversized image costs no decoding memory.
    if len(encoded) * 3 // 4 > limits.max_image_bytes + 2:
        raise RequestError(
            413, f"{where}.{key} decodes to more than the limit of {limits.max_image_bytes:,} bytes"
        )
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(422, f"{where}.{key} is not valid base64") from None
    if not data:
        raise RequestError(422, f"{where}.{key} is empty")
    if len(data) > limits.max_image_bytes:
        raise RequestError(
            413, f"{where}.{key} is {len(data):,} bytes; the limit is {limits.max_image_bytes:,}"
        )
    return data
