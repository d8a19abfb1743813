"""HTML markup in product texts: found, and read as the text it shows.

Shop exports hold descriptions as HTML (Shopify's "Body (HTML)",
WooCommerce's description, feeds escaped twice): `<li>`, `<br/>`, `&amp;`,
inline `<style>`. A bag-of-words model reads "li", "strong", "nbsp" as words,
the commonest of the catalog, and a pretrained model spends its tokens on
them. `markup_to_text` keeps what a browser would show.

Whether a model reads its texts without markup is decided once, when it is
trained (`FieldMapping.strip_markup`, `markup_findings`), and saved with it:
a model trained on raw texts keeps reading raw texts.

    >>> markup_to_text("<p>Cotton&nbsp;shirt</p><ul><li>Slim fit</li><li>Blue &amp; white</li></ul>")
    'Cotton shirt Slim fit Blue & white'
"""

from __future__ import annotations

import html
import re
from typing import Sequence

# The elements of HTML (and the obsolete ones shops still write): only these are tags, so a
# title's "<NEW>" or "<3" is text, and so is "<b" that a title ends on.
_ELEMENTS = (
    "a abbr acronym address area article aside audio b base basefont bdi bdo big blink blockquote body br button "
    "canvas caption center cite code col colgroup data datalist dd del details dfn dialog dir div dl dt em embed "
    "fieldset figcaption figure font footer form frame frameset h1 h2 h3 h4 h5 h6 head header hgroup hr html i "
    "iframe img input ins kbd label legend li link main map mark marquee menu meta meter nav nobr noscript object "
    "ol optgroup option output p param picture pre progress q rp rt ruby s samp script search section select "
    "small source span strike strong style sub summary sup svg table tbody td template textarea tfoot th thead "
    "time title tr track tt u ul var video wbr"
).split()
_ELEMENT_NAMES = frozenset(_ELEMENTS)
# A tag-shaped thing, its quoted attribute values free to hold ">"; a tag when it names an element
_ANY_TAG = re.compile(r"</?([A-Za-z][A-Za-z0-9]*)(?:\s(?:[^<>\"']|\"[^\"]*\"|'[^']*')*)?/?>")
# A comment, CDATA, or a named or numeric character reference (a lone "&" stays text)
_OTHER_MARKUP = re.compile(r"<!--|<!\[CDATA\[|&(?:[A-Za-z][A-Za-z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});")
# whose contents a browser does not show as text
_HIDDEN = frozenset({"script", "style", "head", "title", "template", "noscript"})
# tags inside a word ("H<sub>2</sub>O", "<b>Cotton</b>-rich"); every other tag is a word break
_INLINE = frozenset({"a", "abbr", "b", "bdi", "bdo", "cite", "code", "data", "dfn", "em", "font", "i", "kbd", "mark",
                     "q", "s", "samp", "small", "span", "strike", "strong", "sub", "sup", "time", "u", "var", "wbr"})
_SPACE = re.compile(r"\s+")
# XML feeds wrap descriptions in CDATA, most often HTML ones; html.parser drops a CDATA section
# whole, and the text with it. Its contents are read as HTML (one left open runs to the end of the text)
_CDATA = re.compile(r"<!\[CDATA\[(.*?)(?:\]\]>|$)", re.DOTALL)

#: a text column whose cells hold markup at least this often is read without it
MARKUP_SHARE = 0.01


# What a browser does not show: script and style bodies (and the other hidden elements'), comments,
# declarations and processing instructions; one left open runs to the end of the text.
_HIDDEN_PARTS = re.compile(
    r"<(" + "|".join(sorted(_HIDDEN)) + r")\b(?:[^<>\"']|\"[^\"]*\"|'[^']*')*>.*?(?:</\1\s*>|$)"
    r"|<!--.*?(?:-->|$)|<![A-Za-z][^>]*>|<\?[^>]*>",
    re.DOTALL | re.IGNORECASE,
)


def _tag_break(match: re.Match[str]) -> str:
    # "<li>Slim</li><li>fit</li>" is two words, "<br>" a line break; "<b>Cot</b>ton" one word
    name = match[1].lower()
    if name not in _ELEMENT_NAMES:
        return match[0]
    return "" if name in _INLINE else " "


def _holds_tag(text: str) -> bool:
    return any(match[1].lower() in _ELEMENT_NAMES for match in _ANY_TAG.finditer(text))


def holds_markup(text: str) -> bool:
    """Whether `text` holds an HTML tag, comment or character reference."""
    if "&" in text and _OTHER_MARKUP.search(text):
        return True
    return "<" in text and (_holds_tag(text) or _OTHER_MARKUP.search(text) is not None)


def markup_to_text(text: str) -> str:
    """The text `text` shows as HTML: tags and comments gone (a block tag
    such as <li> or <br> is a word break, an inline one such as <b> is not), script and style contents gone, character references read, runs
    of white space one space. A text without markup is returned as it is.

        >>> markup_to_text("Tom &amp; Jerry<br>DVD"), markup_to_text("5 < 7 & 8 > 6")
        ('Tom & Jerry DVD', '5 < 7 & 8 > 6')
    """
    if not holds_markup(text):
        return text
    # Regular expressions, not html.parser: three times faster (a shop's 636-character descriptions:
    # about 100 s per 400,000 with html.parser, 30 s), and a stray "<" before a letter does not
    # swallow the text up to the next tag ("size<m <br> cotton" lost "size<m")
    shown = _HIDDEN_PARTS.sub(" ", _CDATA.sub(r"\1", text))
    shown = html.unescape(_ANY_TAG.sub(_tag_break, shown))
    return _SPACE.sub(" ", shown).strip()


def markup_share(values: Sequence[str]) -> tuple[float, int]:
    """The share of the non-empty `values` that hold markup, and how many there are."""
    filled = [v for v in values if v]
    if not filled:
        return 0.0, 0
    found = sum(holds_markup(v) for v in filled)
    return found / len(filled), found


def markup_findings(fields: dict[str, list[str]]) -> dict[str, dict]:
    """Per text column whose cells hold markup at least `MARKUP_SHARE` of the
    time: {"share": ..., "cells": ..., "tags": whether any cell holds a tag,
    not only a character reference}."""
    found = {}
    for column, values in fields.items():
        share, cells = markup_share(values)
        if cells and share >= MARKUP_SHARE:
            found[column] = {"share": share, "cells": cells,
                             "tags": any(_holds_tag(v) or "<![CDATA[" in v for v in values if v and "<" in v)}
    return found


def decided_strip(strip: bool | tuple[str, ...] | None, found: dict[str, dict]):
    """A mapping's `strip_markup` as training settles it: as given, or when None (auto) the
    columns `markup_findings` found holding markup, or False when none did."""
    return strip if strip is not None else (tuple(found) or False)


def markup_message(column: str, finding: dict, where: str) -> str:
    """The one line `train` notes and `inspect` shows for a column of `markup_findings`."""
    kind = "HTML markup" if finding["tags"] else "HTML character references (such as &amp;)"
    return (f"column {column!r} of {where} holds {kind} in {finding['share']:.0%} of its texts "
            f"({finding['cells']:,}): models read them without it (--markup keep reads them as written)")
