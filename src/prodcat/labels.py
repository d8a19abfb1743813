"""Label spaces: turn label cells into classes, and classes into model targets.

Every product's label is kept as a tuple of strings:
- single: ("Shirts",)
- multi:  ("cotton", "men", "summer")  (sorted, unique)
- path:   ("Apparel", "Topwear", "Shirts")  (top level first)

A path is learned as flat leaf classes (the whole path, joined by " > "); its
upper levels are recovered from the leaf, so every level can be scored.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from prodcat.errors import LabelError

PATH_JOINER = " > "
# Joins a product's tags wherever a multi-label is written as one string (prediction files,
# the server's `prediction`, label-issues), so no tag may hold it.
MULTI_JOINER = "|"
# Tried in this order when a path separator is not given: the longer, rarer
# separators first, so ">>" is not mistaken for two ">".
PATH_SEPARATORS = (" >> ", ">>", " > ", ">", " / ", "|", "/")
MULTI_SEPARATORS = ("|", ";", ",")

Label = tuple[str, ...]


_NOT_JSON = object()


def _parsed_json(cell: str) -> object:
    """The JSON value of a cell that opens a list, else _NOT_JSON."""
    if not cell.startswith("["):
        return _NOT_JSON
    try:
        return json.loads(cell)
    except json.JSONDecodeError:
        return _NOT_JSON


def _label_items(value: object) -> list[str] | None:
    """A JSON list of labels (strings or numbers) as text; None when it is not one."""
    if isinstance(value, list) and all(v is None or isinstance(v, (str, int, float)) for v in value):
        # A null item (a Parquet list's null, a pandas NaN written as JSON NaN) is no label.
        return [str(v) for v in value if v is not None and v == v]
    return None


def _json_list(cell: str) -> list[str] | None:
    return _label_items(_parsed_json(cell))


def _nested_json_lists(cell: str) -> list[list[str]] | None:
    """A JSON list of lists (Amazon's `categories`: [["Clothing", "Men", "Shirts"], ["Sale"]])
    as its lists of items; None when the cell is not one."""
    value = _parsed_json(cell)
    if not (isinstance(value, list) and value and all(isinstance(v, list) for v in value)):
        return None
    lists = [_label_items(v) for v in value]
    return None if any(items is None for items in lists) else lists


def _path_json_list(cell: str) -> list[str] | None:
    """`_json_list`, or for a JSON list of paths each written as a list of its
    levels the first path's levels; None when the cell is neither."""
    items = _json_list(cell)
    lists = _nested_json_lists(cell) if items is None else None
    return lists[0] if lists else items


def _multi_json_list(cell: str) -> list[str] | None:
    """`_json_list`, or for a JSON list of lists every item of every list; None when the cell is neither."""
    items = _json_list(cell)
    lists = _nested_json_lists(cell) if items is None else None
    return [item for inner in lists for item in inner] if lists else items


def detect_separator(cells: Sequence[str], label_format: str) -> str | None:
    """The separator found in the most cells, or None if no cell has one."""
    candidates = PATH_SEPARATORS if label_format == "path" else MULTI_SEPARATORS
    sample = [c for c in cells[:5000] if c]
    best, best_hits = None, 0
    for sep in candidates:
        hits = sum(sep in c for c in sample)
        if hits > best_hits:
            best, best_hits = sep, hits
    return best


def parse_labels(
    cells: Sequence[str],
    label_format: str,
    sep: str | None = None,
    level: int | None = None,
    *,
    where: str = "catalog",
    column: str = "label",
    first_row: int = 1,
    require: bool = True,
) -> list[Label]:
    """Parse raw label cells (already strings) into label tuples.

    A cell in the form '["A >> B >> C"]' (a JSON list) is unwrapped: for paths
    its first element is the path (a list of several elements none of which
    holds the separator, '["A", "B", "C"]', is the path's levels, and so is
    the first of a list of such lists, '[["A", "B", "C"], ["D"]]'), for
    multi-label its elements are the labels (of a list of lists, every list's).
    Empty cells are an error that names the rows, unless require=False: then
    they are kept as empty labels ().
    """
    if label_format == "single":
        labels = [(c.strip(),) if c.strip() else () for c in cells]
    else:
        sep = label_separator(cells, label_format) if sep is None else sep
        labels = [_parse_cell(c, label_format, sep, level) for c in cells]
    if not require:
        return labels
    return require_labels(labels, where=where, column=column, first_row=first_row)


def label_separator(cells: Sequence[str], label_format: str) -> str | None:
    """The separator `parse_labels` splits multi-label or path cells on when none is given."""
    if label_format == "path":
        unwrapped = [_unwrap_path(c) for c in cells]
    else:
        # A JSON list's commas part its items, not labels: it has no say in the separator.
        unwrapped = ["" if _multi_json_list(c.strip()) is not None else c for c in cells]
    return detect_separator(unwrapped, label_format)


def require_labels(labels: list[Label], *, where: str, column: str, first_row: int = 1) -> list[Label]:
    """The labels unchanged, or a LabelError naming the rows whose label is empty."""
    empty = [i for i, lab in enumerate(labels) if not lab]
    if empty:
        rows = ", ".join(str(first_row + i) for i in empty[:5])
        more = f" and {len(empty) - 5} more" if len(empty) > 5 else ""
        raise LabelError(f"{where}: label column {column!r} is empty in {len(empty)} row(s): row {rows}{more}")
    return labels


def check_path_levels(labels: list[Label], *, where: str, column: str, first_row: int = 1) -> list[Label]:
    """The path labels unchanged, or a LabelError naming the rows no path can hold.

    A level holding " > " (possible with another separator, a JSON list of
    levels or label columns) would be read as two levels wherever a class
    name is cut to a level, and so scored at the wrong levels. An empty level
    before a filled one (label columns "Apparel", "", "Shirts") would be a
    level named "".
    """
    joined = [i for i, lab in enumerate(labels) if any(PATH_JOINER in level for level in lab)]
    gaps = [i for i, lab in enumerate(labels) if any(not level for level in lab)]
    for rows, what, remedy in (
        (joined, f"a level holds {PATH_JOINER!r}, which joins a path's levels", f"write it without {PATH_JOINER!r}"),
        (gaps, "a level is empty while a level after it is not", "fill it, or empty the levels after it"),
    ):
        if rows:
            shown = ", ".join(str(first_row + i) for i in rows[:5])
            more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
            raise LabelError(f"{where}: label column {column!r}: {what}, in {len(rows)} row(s): row {shown}{more} "
                             f"(levels {list(labels[rows[0]])}); {remedy}")
    return labels


def check_multi_tags(labels: list[Label], *, where: str, column: str, first_row: int = 1) -> list[Label]:
    """The multi-labels unchanged, or a LabelError naming the rows with a tag holding "|".

    A JSON list or another separator lets a tag hold "|" ("T-shirts|Tops"),
    but every file prodcat writes joins a product's tags with it: the
    prediction "T-shirts|Tops|men" would read back as three tags, and a
    prediction could not be told from another.
    """
    rows = [i for i, lab in enumerate(labels) if any(MULTI_JOINER in tag for tag in lab)]
    if rows:
        shown = ", ".join(str(first_row + i) for i in rows[:5])
        more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
        raise LabelError(f"{where}: label column {column!r}: a tag holds {MULTI_JOINER!r}, which joins a product's "
                         f"tags in predictions, in {len(rows)} row(s): row {shown}{more} (tags {list(labels[rows[0]])}); "
                         f"write it without {MULTI_JOINER!r}, or pass --label-sep {MULTI_JOINER!r} where it parts tags")
    return labels


def _unwrap_path(cell: str) -> str:
    items = _path_json_list(cell.strip())
    return items[0] if items else cell


def _levels(path: str, sep: str | None) -> list[str]:
    """The levels of `path` split on `sep` (the whole path when None), stripped, empty ones left out."""
    return [p.strip() for p in (_split_path(path, sep) if sep else [path]) if p.strip()]


def _parse_cell(cell: str, label_format: str, sep: str | None, level: int | None) -> Label:
    cell = cell.strip()
    if not cell:
        return ()
    if label_format == "path":
        items = _path_json_list(cell)
        if items is not None and len(items) > 1 and (sep is None or sep not in items[0]):
            # ["Apparel", "Shirts"]: the path's levels, not a list of paths. Each item is a level in its
            # place, as label columns are: an empty one before a filled one stays, for `check_path_levels`
            # to refuse, rather than move "Curtains" of ["Home", "", "Curtains"] up to the second level.
            parts = [p.strip() for p in items][:level]
            while parts and not parts[-1]:
                parts.pop()
            return tuple(parts)
        parts = _levels(cell if items is None else (items[0] if items else ""), sep)
        return tuple(parts[:level] if level else parts)
    items = _multi_json_list(cell)
    if items is None:
        items = cell.split(sep) if sep else [cell]
    return tuple(sorted({i.strip() for i in items if i.strip()}))


def _split_path(path: str, sep: str) -> list[str]:
    """`path` split into its levels on `sep`.

    A separator written with spaces (" > ") is also found where it has lost
    one: beside another ("A > > C"), at the start or end of a stripped cell
    ("> C", "A > B >"). Split on " > " alone, those leave a level named
    "> C"; found, the empty level is dropped as the other empty ones are.
    """
    core = sep.strip()
    if not core or core == sep:
        return path.split(sep)
    return re.split(rf"(?:^|\s+){re.escape(core)}(?=\s|$)", path)


def _written_with(path: str, sep: str) -> tuple[str, list[str]] | None:
    """The separator other than `sep` a cell was written with, and the levels it makes; None if none is in it."""
    for other in PATH_SEPARATORS:
        if other != sep and other in path:
            # the first in PATH_SEPARATORS (the longest) is the one the cell was written with
            return other, _levels(path, other)
    return None


def mixed_path_separators(cells: Sequence[str], sep: str | None = None, *, top: int = 5) -> dict | None:
    """The rows of a path label column written with another separator than the one it is split on.

    A user's mistake that would pass silently: in a column of "Apparel > Shirts"
    paths, "Apparel / Shirts" becomes one one-level class of its own. The rule
    is conservative, so legit labels raise no alarm: a cell is counted only
    when it does not hold the column's separator (`sep`, or the one detected
    as `parse_labels` detects it) and another path separator splits it into
    levels whose first is the top level of one of the column's proper paths.
    A level name holding a "/" ("Apparel > T-Shirts/Tops", or a one-level
    "T-Shirts/Tops") is never counted.

    When no cell holds a given `sep` at all (a wrong --label-sep: every label
    would be one level), the column has no proper paths to compare with; then
    the cells written with one other separator are counted if they are most
    of the labelled cells and form a tree (two different paths share a top
    level), so a flat column, or one of names like "T-Shirts/Tops", is left alone.

    Returns None when no cell is counted, else {"separator", "others" (each
    other separator -> its rows), "rows", "first_rows" (numbered from 1, at
    most `top`), "example" (the first such cell), "separator_unused" (True
    when no cell holds the separator: the one in "others" is the column's)}.

        >>> mixed_path_separators(["Apparel > Shirts", "Apparel / Shirts", "Home > T-Shirts/Tops"])["first_rows"]
        [2]
        >>> mixed_path_separators(["Apparel / Shirts", "Apparel / Shoes", "Home / Bath"], ">")["others"]
        {' / ': 3}
    """
    paths = [_unwrap_path(c).strip() for c in cells]
    if sep is None:
        sep = detect_separator(paths, "path")
        if sep is None:
            return None
    if not any(sep in path for path in paths):
        return _unused_separator(paths, sep, top)
    tops = set()
    for path in paths:
        if sep in path:
            parts = _levels(path, sep)
            if len(parts) > 1:
                tops.add(parts[0])
    if not tops:
        return None
    flagged: list[tuple[int, str]] = []
    for row, path in enumerate(paths):
        if sep in path:
            continue
        written = _written_with(path, sep)
        if written is not None and len(written[1]) > 1 and written[1][0] in tops:
            flagged.append((row, written[0]))
    return _finding(paths, sep, flagged, top, unused=False)


def _unused_separator(paths: list[str], sep: str, top: int) -> dict | None:
    """`mixed_path_separators` for a column in which no cell holds `sep`."""
    by_separator: dict[str, list[tuple[int, list[str]]]] = {}
    for row, path in enumerate(paths):
        written = _written_with(path, sep)
        if written is not None and len(written[1]) > 1:
            by_separator.setdefault(written[0], []).append((row, written[1]))
    if not by_separator:
        return None  # a flat column: one level is what it holds
    other, rows = max(by_separator.items(), key=lambda kv: len(kv[1]))
    labelled = sum(1 for path in paths if path)
    distinct = {tuple(parts) for _, parts in rows}
    if 2 * len(rows) <= labelled or len({parts[0] for parts in distinct}) == len(distinct):
        return None
    return _finding(paths, sep, [(row, other) for row, _ in rows], top, unused=True)


def _finding(paths: list[str], sep: str, flagged: list[tuple[int, str]], top: int, *, unused: bool) -> dict | None:
    if not flagged:
        return None
    others = Counter(other for _, other in flagged)
    return {
        "separator": sep,
        "others": dict(others.most_common()),
        "rows": len(flagged),
        "first_rows": [row + 1 for row, _ in flagged[:top]],
        "example": paths[flagged[0][0]],
        "separator_unused": unused,
    }


def several_paths_in_cells(cells: Sequence[str], sep: str | None = None, *, top: int = 5) -> dict | None:
    """The rows of a path label column whose cell holds several paths in a list.

    A shop export may list a product's categories in one cell ("Clothing >
    Tshirts, Clothing > Sale", WooCommerce): read as one path it has a level
    "Tshirts, Clothing", a class no one meant. Counted: a cell with a level,
    after the first, that a list separator ("," ";" "|", but not the column's
    own) parts so that a later part is the top level of one of the column's
    paths. A level name holding a comma ("Shirts, Tops") is not counted.

    Returns None when no cell is counted, else {"separator", "rows",
    "first_rows" (numbered from 1, at most `top`), "example" (the first such cell)}.

        >>> several_paths_in_cells(["Clothing > Tshirts, Clothing > Sale", "Clothing > Shirts, Tops"])["first_rows"]
        [1]
    """
    paths = [_unwrap_path(c).strip() for c in cells]
    if sep is None:
        sep = detect_separator(paths, "path")
        if sep is None:
            return None
    joiners = "".join(c for c in ",;|" if c not in sep)
    if not joiners:
        return None
    def pieces(level: str) -> list[str]:
        return [piece.strip() for piece in re.split(f"[{re.escape(joiners)}]", level)]

    levels = [_levels(path, sep) if sep in path else [] for path in paths]
    tops = {parts[0] for parts in levels if len(parts) > 1}
    tops |= {path for path in paths if path and sep not in path and len(pieces(path)) == 1}
    # A path that follows a list separator after several different levels ("Tshirts, Promo > Sale",
    # "Posters, Promo > Sale") starts a path of its own, even where no cell starts with it; a level
    # whose name holds a comma ("Shirts, Tops") is preceded by the same word wherever it is found.
    # Only a piece with levels after it: product names as last levels ("Mug (Pack of 2, Blue)",
    # flipkart) hold commas after all kinds of words.
    preceded_by: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for parts in levels:
        for depth, level in enumerate(parts[:-1]):
            split = pieces(level)
            for before, piece in zip(split, split[1:]):
                preceded_by[(piece, *parts[depth + 1:])].add(before)
    tops |= {tail[0] for tail, before in preceded_by.items() if len(before) > 1}
    rows = [row for row, parts in enumerate(levels, 1)
            if any(piece in tops for level in parts for piece in pieces(level)[1:])]
    if not rows:
        return None
    return {"separator": sep, "rows": len(rows), "first_rows": rows[:top], "example": paths[rows[0] - 1]}


def several_paths_in_cells_message(found: dict, *, where: str, column: str) -> str:
    """One line on `several_paths_in_cells`' finding, for a warning."""
    rows = ", ".join(str(r) for r in found["first_rows"])
    more = found["rows"] - len(found["first_rows"])
    return (
        f"{where}: label column {column!r} has {found['rows']} row(s) holding several paths in one cell (row "
        f"{rows}{f' and {more} more' if more > 0 else ''}; e.g. {found['example']!r}): a path label is one path, "
        "so their levels join into classes of their own; keep one path per cell, or pass --label-format multi"
    )


def one_tag_each(labels: Sequence[Label], cells: Sequence[str]) -> dict | None:
    """For a multi-label column: None, unless no product holds more than one tag.

    Then the cells were most likely not split as meant: a separator detection
    does not try ("cotton/men"), or paths ("Apparel > Shirts") read as
    multi-label; each cell is learned as one class, combinations included.
    Returns {"example" (a cell that holds more than a word, else the first
    labelled one), "path_separator" (">>" or ">", with or without spaces, when most cells hold it; else None)}.

        >>> one_tag_each([("cotton/men",), ("red",)], ["cotton/men", "red"])["example"]
        'cotton/men'
    """
    if any(len(label) > 1 for label in labels):
        return None
    labelled = [cell.strip() for cell, label in zip(cells, labels) if label]
    if not labelled:
        return None
    example = next((cell for cell in labelled if not cell.replace(" ", "").isalnum()), labelled[0])
    path_sep = detect_separator(labelled, "path")
    # "/" parts tags as often as levels ("cotton/men"): only ">" says path
    if path_sep is None or ">" not in path_sep or 2 * sum(path_sep in cell for cell in labelled) <= len(labelled):
        path_sep = None
    return {"example": example, "path_separator": path_sep}


def one_tag_each_message(found: dict, *, where: str, column: str) -> str:
    """One line on `one_tag_each`' finding, for a warning."""
    if found["path_separator"] is not None:
        hint = f"most cells are paths written with {found['path_separator']!r}: pass --label-format path"
    else:
        hint = ("pass the separator its cells hold with --label-sep, or --label-format single for one class "
                "per product")
    return (f"{where}: label column {column!r} is read as multi-label, but no product holds more than one tag "
            f"(e.g. {found['example']!r}), so each cell is learned as one class; {hint}")


def mixed_path_separators_message(found: dict, *, where: str, column: str) -> str:
    """One line on `mixed_path_separators`' finding, for a warning."""
    rows = ", ".join(str(r) for r in found["first_rows"])
    more = found["rows"] - len(found["first_rows"])
    which = f"row {rows}{f' and {more} more' if more > 0 else ''}; e.g. {found['example']!r}"
    others = " or ".join(repr(o) for o in found["others"])
    if found.get("separator_unused"):
        return (
            f"{where}: label column {column!r} is split on {found['separator']!r}, which no cell holds, but "
            f"{found['rows']} row(s) use {others} ({which}): every label is read as a one-level path; "
            f"pass --label-sep {others}"
        )
    return (
        f"{where}: label column {column!r} is split on {found['separator']!r}, but {found['rows']} row(s) use "
        f"{others} instead ({which}): each such label is learned as a class of its own; write them with "
        f"{found['separator']!r}"
    )


def path_labels_from_columns(columns: Sequence[Sequence[str]], level: int | None = None) -> list[Label]:
    """Build paths from several columns (top level first); empty trailing levels are dropped."""
    labels = []
    for parts in zip(*columns):
        # Cut before the empty levels go: an empty top level cut to one level is an empty label, not a class "".
        parts = [p.strip() for p in parts][:level]
        while parts and not parts[-1]:
            parts.pop()
        labels.append(tuple(parts))
    return labels


def _spelling(level: str) -> str:
    # NFKC: "Küche" typed on one machine and decomposed (u + combining diaeresis) on
    # another look alike everywhere, yet are two classes; so are full-width letters.
    # Invisible format characters (a zero-width space or a BOM copied from a web page)
    # neither show nor strip.
    visible = "".join(ch for ch in unicodedata.normalize("NFKC", level) if unicodedata.category(ch) != "Cf")
    return " ".join(visible.split()).casefold()


def classes_spelled_apart(labels: Sequence[Label], label_format: str, *, top: int = 5) -> dict | None:
    """Classes that differ only in letter case, spacing or Unicode form: one class the user meant, learned as several.

    "Shirts", "shirts" and "Shirts " read the same to a person, but each is
    a class of its own to a model, which splits their products between them.
    A path compares level by level, named down to the level spelled apart
    ("Apparel" / "apparel", with the products below each), a multi-label
    column tag by tag.

    Returns None when there are none, else {"groups" (how many), "rows"
    (labels spelled as a group's less common spellings), "first" (at most
    `top` groups, most products first: each a list of [class, products],
    most common spelling first)}.

        >>> classes_spelled_apart([("Shirts",)] * 3 + [("shirts",), ("Men  Shirts",), ("Mugs",)], "single")["first"]
        [[['Shirts', 3], ['shirts', 1]]]
    """
    counts: Counter = Counter()
    for label in labels:
        if label_format == "multi":
            counts.update((tag,) for tag in label)
        elif label_format == "path":
            # every level's path: "apparel > Shoes" splits the level "Apparel" though no leaf is spelled apart
            counts.update(tuple(label[:k]) for k in range(1, len(label) + 1))
        elif label:
            counts[tuple(label)] += 1
    spellings: dict[tuple, list[tuple[Label, int]]] = {}
    for label, n in counts.items():
        # a path's parent spelled exactly: spelled apart higher up, it is reported at that level only
        spellings.setdefault((label[:-1], _spelling(label[-1])), []).append((label, n))
    groups = [sorted(g, key=lambda item: (-item[1], item[0])) for g in spellings.values() if len(g) > 1]
    if not groups:
        return None
    groups.sort(key=lambda g: (-sum(n for _, n in g), g[0][0]))
    return {
        "groups": len(groups),
        "rows": sum(n for g in groups for _, n in g[1:]),
        "first": [[[label_name(label, label_format), n] for label, n in g] for g in groups[:top]],
    }


def classes_spelled_apart_message(found: dict, *, where: str, column: str) -> str:
    """One line on `classes_spelled_apart`' finding, for a warning."""
    shown = "; ".join(" / ".join(f"{name!r} ({n})" for name, n in group) for group in found["first"])
    more = found["groups"] - len(found["first"])
    return (
        f"{where}: label column {column!r} has {found['groups']} class(es) written in more than one way, "
        f"differing only in case, spacing or Unicode form: {shown}{f'; and {more} more' if more > 0 else ''}: "
        "each spelling is learned as a class of its own; write each class one way"
    )


# What shop exports and spreadsheets write where a product has no category (WooCommerce files
# every such product under "Uncategorized"), compared case-folded.
NO_CATEGORY = frozenset({
    "uncategorized", "uncategorised", "unclassified", "unknown", "undefined", "no category",
    "none", "null", "nan", "n/a", "na", "#n/a", "-", "--", "?",
})


def placeholder_labels(labels: Sequence[Label], top: int = 5) -> dict[str, int] | None:
    """The labels (a path's levels, a product's tags) that mean no category, most products
    first, at most `top`, with how many products hold each; None when there are none.

        >>> placeholder_labels([("Uncategorized",), ("Home", "Mugs"), ("Home", "N/A")])
        {'Uncategorized': 1, 'N/A': 1}
    """
    counts = Counter(part for label in labels for part in dict.fromkeys(label)
                     if part.strip().casefold() in NO_CATEGORY)
    return dict(counts.most_common(top)) or None


def paths_as_single(cells: Sequence[str]) -> dict | None:
    """For a single-label column: {"kind": "json" or "path", "example"} when most filled cells
    are JSON lists, or paths written with ">" or ">>"; else None. Read as single labels, each
    cell whole is one class: a list's JSON text, a path without its levels.

        >>> paths_as_single(["Home > Mugs", "Home > Lamps", "Toys"])
        {'kind': 'path', 'example': 'Home > Mugs'}
    """
    filled = [cell.strip() for cell in cells if cell.strip()]
    if not filled:
        return None
    lists = [cell for cell in filled if _multi_json_list(cell) is not None]
    if 2 * len(lists) > len(filled):
        return {"kind": "json", "example": lists[0]}
    sep = detect_separator(filled, "path")
    # "/" and "|" part other things as often as levels ("T-Shirts/Tops"): only ">" says path
    paths = [cell for cell in filled if sep is not None and ">" in sep and sep in cell]
    if 2 * len(paths) > len(filled):
        return {"kind": "path", "example": paths[0]}
    return None


_NUMERIC_ID = re.compile(r"\d+(?:\.0)?")  # "1604", or "1604.0" from a column of floats with gaps


def numeric_ids(labels: Sequence[Label], label_format: str) -> dict | None:
    """For a single-label or path column: {"rows", "labelled", "example", "paths"} when most labels
    are one level of digits (Google's `google_product_category` written as ids, "1604"), or some are
    among labels that are paths ("paths": how many have several levels); else None.

    Each id is a class with no levels and no name to read: a taxonomy's hierarchy is lost, and an id
    beside its own path ("1604" and "Apparel & Accessories > Clothing") is two classes.

        >>> numeric_ids([("1604",), ("212",), ("Toys",)], "single")["rows"]
        2
    """
    if label_format == "multi":
        return None
    labelled = [label for label in labels if label]
    ids = [label[0] for label in labelled if len(label) == 1 and _NUMERIC_ID.fullmatch(label[0])]
    paths = sum(len(label) > 1 for label in labelled)
    if not ids or (2 * len(ids) <= len(labelled) and not paths):
        return None
    return {"rows": len(ids), "labelled": len(labelled), "example": ids[0], "paths": paths}


def numeric_ids_message(found: dict, *, where: str, column: str) -> str:
    """One line on `numeric_ids`' finding."""
    head = (f"{where}: label column {column!r} holds numeric ids ({found['rows']} of {found['labelled']} labels; "
            f"e.g. {found['example']!r})")
    if found["paths"]:
        what = (f" beside {found['paths']} paths: a category written as its id and as its path is two classes, "
                "and an id has no levels")
    else:
        what = ": each is learned as a class with no levels and no name"
    return (f"{head}{what}; if they are Google product taxonomy ids, replace each by its path (Google's "
            "taxonomy-with-ids file lists '1604 - Apparel & Accessories > Clothing') and pass --label-format path "
            "for scores per level and confident paths")


def paths_as_single_message(found: dict, *, where: str, column: str) -> str:
    """One line on `paths_as_single`' finding, for a warning."""
    if found["kind"] == "json":
        return (f"{where}: label column {column!r} holds JSON lists (e.g. {found['example']!r}) read as single "
                "labels: each list's JSON text is one class; pass --label-format path (a path or its levels) or multi "
                "(a list of tags)")
    return (f"{where}: label column {column!r} holds paths (e.g. {found['example']!r}) read as single labels: each "
            "whole path is one class; pass --label-format path for scores per level and confident paths")


def placeholder_labels_message(found: dict, *, where: str, column: str) -> str:
    """One line on `placeholder_labels`' finding (with "labels"), for a warning."""
    shown = ", ".join(f"{name!r} ({n})" for name, n in found["labels"].items())
    return (f"{where}: label column {column!r} holds labels that mean no category: {shown}: each is learned as a "
            "class and predicted for products like theirs; fill in their categories, or leave those rows out")


def label_name(label: Label, label_format: str) -> str:
    """How a label reads in reports and prediction files."""
    return PATH_JOINER.join(label) if label_format == "path" else MULTI_JOINER.join(label)


@dataclass
class LabelSpace:
    """The classes a model predicts, and how to encode and decode them.

    `classes` are strings: a single label, one of the multi labels, or a whole
    path joined by " > ".
    """

    label_format: str
    classes: list[str]

    @classmethod
    def from_labels(cls, labels: Sequence[Label], label_format: str, *, where: str = "catalog") -> LabelSpace:
        if label_format == "multi":
            counts = Counter(item for lab in labels for item in lab)
        else:
            counts = Counter(label_name(lab, label_format) for lab in labels)
        if len(counts) < 2:
            only = next(iter(counts), "")
            raise LabelError(f"{where}: only one class ({only!r}); a categorizer needs at least two")
        return cls(label_format, sorted(counts))

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def is_multi(self) -> bool:
        return self.label_format == "multi"

    def index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.classes)}

    def names(self, labels: Sequence[Label]) -> list[str]:
        """Class names for single/path labels (unknown paths keep their own name)."""
        return [label_name(lab, self.label_format) for lab in labels]

    def encode(self, labels: Sequence[Label]) -> np.ndarray:
        """single/path: int64 class ids, -1 for a class the space does not know.
        multi: a (n, n_classes) uint8 indicator matrix; unknown labels are left out."""
        index = self.index()
        if self.is_multi:
            y = np.zeros((len(labels), self.n_classes), dtype=np.uint8)
            for row, lab in enumerate(labels):
                for item in lab:
                    col = index.get(item)
                    if col is not None:
                        y[row, col] = 1
            return y
        return np.array([index.get(n, -1) for n in self.names(labels)], dtype=np.int64)

    def knows(self, labels: Sequence[Label]) -> np.ndarray:
        """(n,) bool: whether each label's class (every tag, for multi-label) is one of these classes.

            >>> LabelSpace("multi", ["red", "shirt"]).knows([("red", "shirt"), ("red", "mug")]).tolist()
            [True, False]
        """
        known = set(self.classes)
        if self.is_multi:
            return np.array([all(tag in known for tag in label) for label in labels], dtype=bool)
        return np.array([name in known for name in self.names(labels)], dtype=bool)

    def decide(self, proba: np.ndarray, thresholds: np.ndarray | None = None) -> np.ndarray:
        """Turn probabilities into decisions.

        single/path: the most probable class id per row.
        multi: an indicator matrix of the classes at or above their threshold
        (0.5 without thresholds); a row with none gets its most probable class,
        since every product belongs somewhere.
        """
        if not self.is_multi:
            return proba.argmax(axis=1)
        limits = 0.5 if thresholds is None else thresholds[None, :]
        chosen = (proba >= limits).astype(np.uint8)
        empty = chosen.sum(axis=1) == 0
        chosen[empty, proba[empty].argmax(axis=1)] = 1
        return chosen

    def decisions_to_names(self, decided: np.ndarray) -> list[str]:
        """Decisions from `decide` as display strings (multi labels joined by '|')."""
        if self.is_multi:
            return [MULTI_JOINER.join(self.classes[j] for j in np.flatnonzero(row)) for row in decided]
        return [self.classes[i] for i in decided]

    # --- hierarchy -------------------------------------------------------
    @property
    def depth(self) -> int:
        if self.label_format != "path":
            return 1
        return int(self.class_depths().max())

    def class_depths(self) -> np.ndarray:
        """Per class, how many levels its path has (1 for labels that are no path)."""
        if self.label_format != "path":
            return np.ones(self.n_classes, dtype=np.int64)
        return np.array([len(name.split(PATH_JOINER)) for name in self.classes], dtype=np.int64)

    @staticmethod
    def ancestor(name: str, level: int) -> str:
        """The first `level` levels of a path name (the whole path if shorter)."""
        return PATH_JOINER.join(name.split(PATH_JOINER)[:level])

    def coarsen(self, level: int) -> tuple[LabelSpace, np.ndarray]:
        """The path space cut to its first `level` levels, and for each class
        of this space the index of its ancestor among the coarse classes."""
        ancestors = [self.ancestor(name, level) for name in self.classes]
        coarse = LabelSpace(self.label_format, sorted(set(ancestors)))
        index = coarse.index()
        return coarse, np.array([index[a] for a in ancestors], dtype=np.int64)

    def ancestor_confidence(self, proba: np.ndarray, decided: np.ndarray, level: int) -> tuple[np.ndarray, np.ndarray]:
        """For path labels: per product, the probability that its true path starts with
        its decided class's first `level` levels (the summed probability of every class
        below that ancestor), and that ancestor's index in `coarsen(level)`.

            >>> space = LabelSpace("path", ["A > x", "A > y", "B > z"])
            >>> conf, _ = space.ancestor_confidence(np.array([[0.4, 0.35, 0.25]]), np.array([0]), 1)
            >>> round(float(conf[0]), 2)
            0.75
        """
        from scipy import sparse

        _, to_coarse = self.coarsen(level)
        below = sparse.csr_matrix((np.ones(self.n_classes, np.float32), (np.arange(self.n_classes), to_coarse)),
                                  shape=(self.n_classes, int(to_coarse.max()) + 1))
        coarse_proba = np.asarray(proba @ below)
        ancestors = to_coarse[decided]
        return coarse_proba[np.arange(len(decided)), ancestors].astype(np.float32), ancestors

    # --- persistence ------------------------------------------------------
    def to_dict(self) -> dict:
        return {"label_format": self.label_format, "classes": list(self.classes)}

    @classmethod
    def from_dict(cls, data: dict) -> LabelSpace:
        return cls(data["label_format"], list(data["classes"]))
