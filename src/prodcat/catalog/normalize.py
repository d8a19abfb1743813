"""The key that decides whether two products' texts are "the same".

Two listings of one product rarely match byte for byte: case, punctuation,
doubled spaces and full-width characters differ. `normalize_text` folds those
away, so duplicate counts (`prodcat inspect`) and the grouped split (no title
on both sides of a split) see them as one text. A product with no text at all
(a catalog of photos) is known by its photo instead (`product_keys`).

    >>> normalize_text("Puma Men's  T-Shirt!")
    'puma men s t shirt'
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import sys
import unicodedata
from typing import Sequence


@functools.cache
def _separator_pattern() -> re.Pattern[str]:
    # `\w` leaves out combining marks (category M), but in Indic and other
    # scripts a vowel sign is part of the word: splitting at it would turn
    # "काम" and "कम" into the same key. Marks are kept with the letters. All
    # marks lie below U+20000 or in the variation selectors at U+E0100.., so
    # scanning those ranges once (a few ms) finds every one.
    marks = [
        cp
        for block in (range(0x300, 0x20000), range(0xE0100, 0xE01F0))
        for cp in block
        if unicodedata.category(chr(cp))[0] == "M"
    ]
    ranges, start = [], marks[0]
    for prev, cp in zip(marks, marks[1:] + [sys.maxunicode + 2]):
        if cp != prev + 1:
            ranges.append(f"{re.escape(chr(start))}-{re.escape(chr(prev))}" if prev > start else re.escape(chr(start)))
            start = cp
    return re.compile(rf"(?:[^\w{''.join(ranges)}]|_)+")


def normalize_text(text: str) -> str:
    """NFKC, casefold, every run of non-alphanumeric characters to one space, strip.

    >>> normalize_text("ＵＳＢ—Cable (2m)")
    'usb cable 2m'
    """
    folded = unicodedata.normalize("NFKC", str(text)).casefold()
    return _separator_pattern().sub(" ", folded).strip()


#: starts the key of a product known by its photo; no normalized text holds "\0"
PHOTO_KEY = "\0photo:"


def product_keys(texts: Sequence[str], images: Sequence[str | bytes | None] | None = None) -> list[str]:
    """Per product, the key that says which products are "the same".

    The normalized text; for a product whose text is empty, its photo: the
    digest of the photo's bytes, so one photo listed under two names (or
    reached through two relative paths) is one product; a reference that
    cannot be read (a URL, a missing file) stands for itself. Without either,
    the empty text, as before photos were known.
    """
    keys = []
    for i, text in enumerate(texts):
        key = normalize_text(text)
        image = images[i] if images is not None else None
        if not key and image is not None:
            key = PHOTO_KEY + _photo_digest(image)
        keys.append(key)
    return keys


def _photo_digest(image: str | bytes) -> str:
    digest = hashlib.blake2b(digest_size=16)
    if isinstance(image, bytes):
        digest.update(image)
        return digest.hexdigest()
    if not os.path.isfile(image):
        # a folder, or a FIFO or device, whose read would never end
        return "ref:" + image
    try:
        with open(image, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return "ref:" + image
    return digest.hexdigest()
