"""The key that decides whether two products' texts are "the same".

Two listings of one product rarely match byte for byte: case, punctuation,
doubled spaces and full-width characters differ. `normalize_text` folds those
away, so duplicate counts (`prodcat inspect`) and the grouped split (no title
on both sides of a split) see them as one text.

    >>> normalize_text("Puma Men's  T-Shirt!")
    'puma men s t shirt'
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata


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
