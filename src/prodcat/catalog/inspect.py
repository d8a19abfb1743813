"""`prodcat inspect`: what a catalog holds, before any model is trained.

The report answers the questions that decide how well any model can do: how
many classes and how skewed (the long tail), how many products repeat (they
inflate scores unless the split is grouped), how many identical texts carry
different labels (no model can get both right), how many texts and labels
are empty (class figures cover the labelled products only), how
long the texts are, for path labels the same per level (and rows written with
another path separator than the column's, or a separator no row holds), and, when the mapping
has an image field, how many products have a photo that can actually be read.

    >>> report = inspect_catalog(catalog)              # doctest: +SKIP
    >>> json.dumps(report)                             # doctest: +SKIP
    >>> render_inspection(report, rich.console.Console())   # doctest: +SKIP

The report is plain JSON-able data, so it can be saved beside a model or
compared between two versions of a catalog; `render_inspection` only reads it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

from prodcat.catalog.load import empty_labels_with_nothing_to_read, json_object_text_columns, json_object_text_message
from prodcat.catalog.markup import decided_strip, markup_findings, markup_message
from prodcat.catalog.normalize import product_keys
from prodcat.catalog.products import Catalog
from prodcat.labels import (
    classes_spelled_apart_message, label_name, mixed_path_separators_message, numeric_ids_message,
    one_tag_each_message, paths_as_single_message, placeholder_labels_message, several_paths_in_cells_message,
)

#: class_counts lists at most this many classes (the most common); `classes` has the full count
MAX_CLASS_COUNTS = 1000
#: a class with fewer products than each of these is in the long tail
TAIL_LIMITS = (5, 10)
#: how many conflicting texts are shown as examples
MAX_CONFLICT_EXAMPLES = 5


def _most_common(counts: Counter[str], limit: int | None = None) -> dict[str, int]:
    # Ties broken by name, so a report does not depend on row order.
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return dict(ordered[:limit] if limit else ordered)


def _long_tail(counts: Counter[str], top: int) -> dict[str, Any]:
    values = np.array(sorted(counts.values(), reverse=True), dtype=np.int64)
    total = int(values.sum())
    cumulative = np.cumsum(values)

    def classes_to_cover(share: float) -> int:
        return int(np.searchsorted(cumulative, share * total - 1e-9) + 1) if total else 0

    rarest = sorted(counts.items(), key=lambda kv: (kv[1], kv[0]))[:top]
    tail = {}
    for limit in TAIL_LIMITS:
        small = values[values < limit]
        tail[f"under_{limit}"] = {"classes": int(small.size), "products": int(small.sum())}
    return {
        **tail,
        "rarest": dict(rarest),
        "classes_for_50pct": classes_to_cover(0.5),
        "classes_for_80pct": classes_to_cover(0.8),
        "imbalance_ratio": round(float(values[0] / values[-1]), 2) if values.size else None,
    }


def _stats(values: Sequence[int]) -> dict[str, float | int | None]:
    if not len(values):
        return {"min": None, "median": None, "mean": None, "p95": None, "max": None}
    arr = np.asarray(values, dtype=np.float64)
    return {
        "min": int(arr.min()),
        "median": float(np.median(arr)),
        "mean": round(float(arr.mean()), 2),
        "p95": float(np.percentile(arr, 95)),
        "max": int(arr.max()),
    }


def _duplicates(texts: list[str], keys: list[str], top: int) -> dict[str, Any]:
    """Repeats among products with something to read: rows with neither text nor
    photo are counted as empty texts, not as copies of each other (a Shopify
    export's variant rows would read as half the catalog duplicated)."""
    texts, keys = _with_content(texts, keys)
    key_counts = Counter(keys)
    first_text: dict[str, str] = {}
    for text, key in zip(texts, keys):
        first_text.setdefault(key, text)
    repeated = [(k, c) for k, c in key_counts.items() if c > 1]
    repeated.sort(key=lambda kc: (-kc[1], kc[0]))
    return {
        "exact": len(texts) - len(set(texts)),
        "normalized": len(keys) - len(key_counts),
        "groups": len(key_counts),
        # Shown as the first listing of each text, as a user would find it in the file.
        "top": [{"text": first_text[k], "count": c} for k, c in repeated[:top]],
    }


def _with_content(texts: list[str], keys: list[str], *others: list) -> tuple[list, ...]:
    """The entries of products whose key is not empty (they have a text or a photo)."""
    kept = [i for i, key in enumerate(keys) if key]
    return tuple([column[i] for i in kept] for column in (texts, keys, *others))


def _conflicts(texts: list[str], keys: list[str], names: list[str]) -> dict[str, Any]:
    texts, keys, names = _with_content(texts, keys, names)
    by_key: dict[str, Counter[str]] = defaultdict(Counter)
    first_text: dict[str, str] = {}
    for text, key, name in zip(texts, keys, names):
        by_key[key][name] += 1
        first_text.setdefault(key, text)
    conflicting = [(k, c) for k, c in by_key.items() if len(c) > 1]
    conflicting.sort(key=lambda kc: (-sum(kc[1].values()), kc[0]))
    return {
        "texts": len(conflicting),
        "rows": sum(sum(c.values()) for _, c in conflicting),
        "examples": [
            {"text": first_text[k], "labels": _most_common(c)} for k, c in conflicting[:MAX_CONFLICT_EXAMPLES]
        ],
    }


def _empty_fields(catalog: Catalog) -> dict[str, int]:
    empty = {}
    for col in catalog.mapping.text_cols:
        if col in catalog.frame.columns:
            values = catalog.frame[col].fillna("").astype(str).str.strip()
            empty[col] = int((values == "").sum())
    return empty


def _shown_ref(ref: str | bytes) -> str:
    return f"<{len(ref):,} bytes>" if isinstance(ref, bytes) else ref


def _images(catalog: Catalog) -> dict[str, Any]:
    """How many products have a photo reference, and how many of those photos read.

    Every referenced photo is decoded to its last byte (a truncated file
    counts as unreadable), so this is the slow part of inspecting a catalog
    with photos: a few seconds per thousand on one core.
    """
    from prodcat.images import check_images

    refs = catalog.products.images or []
    stats = check_images(refs)
    return {
        "column": catalog.mapping.image_col,
        "with_reference": len(refs) - stats.absent,
        **stats.to_dict(),
        "summary": stats.summary(),
    }


def inspect_catalog(catalog: Catalog, *, top: int = 10, check_images: bool = True) -> dict:
    """A JSON-able report on a catalog: classes, long tail, duplicates, conflicts, texts, images.

    top: how many entries the "top"/"rarest" lists keep.
    check_images: when the mapping has an image field, read every photo and
        count the readable ones (`images` in the report); False skips it.

    >>> report = inspect_catalog(catalog)          # doctest: +SKIP
    >>> report["duplicates"]["normalized"]          # doctest: +SKIP
    412
    """
    texts = [str(t) for t in catalog.products.texts]
    images = catalog.products.images
    markup = markup_findings(catalog.products.fields)
    # Products are the same as train groups them: by the texts a model reads, so two listings
    # that differ only in their HTML are one (train's default reads the columns found holding it
    # without it). A product without text is known by its photo, and shown by its reference.
    read = catalog.products.read_with(decided_strip(catalog.mapping.strip_markup, markup))
    keys = product_keys([str(t) for t in read.texts], images)
    shown = [f"(photo) {_shown_ref(images[i])}" if not t.strip() and images and images[i] is not None else t
             for i, t in enumerate(texts)]
    label_format = catalog.mapping.label_format
    report: dict[str, Any] = {
        "source": str(catalog.source),
        "rows": len(texts),
        "label_format": label_format,
        "labelled": catalog.labels is not None,
    }

    if catalog.labels is not None:
        # A catalog loaded with allow_empty_labels keeps () for an empty cell:
        # counted here, and left out of every class figure.
        empty = [i for i, lab in enumerate(catalog.labels) if not lab]
        report["empty_labels"] = {
            "column": ",".join(catalog.mapping.label_cols),
            "rows": len(empty),
            "first_rows": [i + 1 for i in empty[:top]],  # numbered from 1, as load errors number them
            "without_text": empty_labels_with_nothing_to_read(catalog.labels, catalog.products),
        }
        labelled = [i for i, lab in enumerate(catalog.labels) if lab]
        labels = [tuple(catalog.labels[i]) for i in labelled]
        if label_format == "multi":
            counts = Counter(item for lab in labels for item in lab)
            per_product = [len(lab) for lab in labels]
        else:
            counts = Counter(label_name(lab, label_format) for lab in labels)
        report["classes"] = len(counts)
        report["class_counts"] = _most_common(counts, MAX_CLASS_COUNTS)
        if label_format == "multi":
            report["labels_per_product"] = {
                "mean": round(float(np.mean(per_product)), 3) if per_product else None,
                "max": max(per_product, default=None),
                # the whole the classes' shares are of: class_counts may list only the most common
                "total": sum(per_product),
            }
            # paths, or tags parted by a separator detection does not try, each read as one tag
            report["one_tag_each"] = catalog.one_tag_each()
        report["long_tail"] = _long_tail(counts, top)
        # "Shirts" and "shirts" are two classes to a model, splitting one class's products
        report["spelled_apart"] = catalog.classes_spelled_apart(top)
        report["placeholder_labels"] = catalog.placeholder_labels(top)
        report["paths_as_single"] = catalog.paths_as_single()
        # a taxonomy's ids ("1604") are classes without levels or names
        report["numeric_ids"] = catalog.numeric_ids()

    report["duplicates"] = _duplicates(shown, keys, top)

    if catalog.labels is not None:
        # A multi-label product's label is its whole set: two listings conflict
        # when their sets differ.
        report["conflicts"] = _conflicts([shown[i] for i in labelled], [keys[i] for i in labelled],
                                         [label_name(lab, label_format) for lab in labels])

    # shop exports' descriptions in HTML: train reads them without it (see prodcat.catalog.markup)
    report["markup"] = markup
    # a nested object named by its parent ("title" for {"en": ...}): train warns of it too
    report["object_texts"] = json_object_text_columns(catalog.products)
    report["empty_fields"] = _empty_fields(catalog)
    report["empty_texts"] = sum(1 for t in texts if not t.strip())
    report["text_length"] = {
        "chars": _stats([len(t) for t in texts]),
        # A word has a letter or digit: the " | " joining fields is not one.
        "words": _stats([sum(1 for w in t.split() if any(ch.isalnum() for ch in w)) for t in texts]),
    }

    if catalog.labels is not None and label_format == "path":
        depths = Counter(len(lab) for lab in labels)
        report["path_depths"] = {str(d): depths[d] for d in sorted(depths)}
        levels = []
        for k in range(1, max(depths, default=0) + 1):
            # A path shorter than k counts as itself, as levels are scored
            # (LabelSpace.ancestor).
            level_counts = Counter(label_name(lab[:k], "path") for lab in labels)
            levels.append(
                {
                    "level": k,
                    "classes": len(level_counts),
                    "class_counts": _most_common(level_counts, MAX_CLASS_COUNTS),
                    "long_tail": _long_tail(level_counts, top),
                }
            )
        report["levels"] = levels
        # A label written with another separator is a class of its own: one the user did not mean
        # (every label is, when no cell holds the separator given).
        report["mixed_separators"] = catalog.mixed_path_separators(top)
        # several paths in one cell join into levels no one meant
        report["several_paths"] = catalog.several_paths_in_cells(top)

    if check_images and catalog.mapping.image_col and catalog.products.images is not None:
        report["images"] = _images(catalog)
    return report


# --- terminal view ----------------------------------------------------------


def _n(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() else f"{value:,.1f}"
    return f"{value:,}"


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _show_text(text: str) -> str:
    return text if text.strip() else "(empty)"


def _table(title: str, *columns: str, numeric_from: int = 1) -> Table:
    # A Text title is printed as written (the images title names the user's column); being Text,
    # it carries its own style (title_style is for str titles).
    table = Table(title=Text(title, style="bold"), title_justify="left", show_edge=False, pad_edge=False)
    for i, column in enumerate(columns):
        if i >= numeric_from:
            table.add_column(column, justify="right", no_wrap=True)
        else:
            # Long product texts and class paths are cut, not wrapped, so a
            # table stays one line per entry in 80 columns.
            table.add_column(column, overflow="ellipsis", no_wrap=True, max_width=56)
    return table


def _row(table: Table, *cells: str) -> None:
    # Cells are plain Text: a class, column or product text like "[sale] Shirts" is shown as written, never
    # read as rich markup (which would drop it, or raise on "[/b]") or as an emoji code.
    table.add_row(*(Text(cell) for cell in cells))


def _say(console: Console, line: str, **options: Any) -> None:
    """One line of plain text (it may hold class names, columns, paths), styled by nothing in it."""
    console.print(Text(line), **options)


def render_inspection(report: dict, console: Console) -> None:
    """Print a report from `inspect_catalog` as rich tables (fits 80 columns)."""
    rows = report["rows"]
    labelled = report.get("labelled", "classes" in report)
    dup = report["duplicates"]

    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    _row(head, "Source", report["source"])
    _row(head, "Rows", _n(rows))
    _row(head, "Label format", report["label_format"] if labelled else "(no labels)")
    if labelled:
        _row(head, "Classes", _n(report["classes"]))
    _row(head, "Distinct texts", f"{_n(dup['groups'])} ({_pct(dup['groups'], rows)})")
    _row(head, "Duplicate rows", f"{_n(dup['normalized'])} ({_pct(dup['normalized'], rows)}) after normalizing")
    if labelled:
        conf = report["conflicts"]
        _row(head, "Conflicts", f"{_n(conf['texts'])} texts with >1 label ({_n(conf['rows'])} rows)")
    _row(head, "Empty texts", _n(report["empty_texts"]))
    empty_labels = report.get("empty_labels") or {}
    if empty_labels.get("rows"):
        _row(head, "Empty labels", f"{_n(empty_labels['rows'])} rows, left out of the class figures")
    console.print(head)

    if labelled:
        counts = report["class_counts"]
        top = max(len(report["long_tail"]["rarest"]), 1)
        unit = "labels" if report["label_format"] == "multi" else "products"
        labelled_rows = rows - (report.get("empty_labels") or {}).get("rows", 0)
        total = report["labels_per_product"]["total"] if report["label_format"] == "multi" else labelled_rows
        table = _table("\nClasses", "Class", unit.capitalize(), "Share")
        for name, count in list(counts.items())[:top]:
            _row(table, name, _n(count), _pct(count, total))
        if report["classes"] > top:
            _row(table, f"... {report['classes'] - top:,} more", "", "")
        console.print(table)
        if "labels_per_product" in report:
            lpp = report["labels_per_product"]
            _say(console, f"Labels per product: mean {_n(lpp['mean'])}, max {_n(lpp['max'])}")

        tail = report["long_tail"]
        # a tag's count is the products carrying it; what the classes hold together is label uses
        table = _table("\nLong tail", "", "Classes", unit.capitalize())
        for limit in (5, 10):
            row = tail[f"under_{limit}"]
            _row(table, f"fewer than {limit} products", _n(row["classes"]), _n(row["products"]))
        _row(table, f"classes holding 50% of {unit}", _n(tail["classes_for_50pct"]), "")
        _row(table, f"classes holding 80% of {unit}", _n(tail["classes_for_80pct"]), "")
        _row(table, "imbalance (largest / smallest)", _n(tail["imbalance_ratio"]), "")
        console.print(table)
        if tail["rarest"]:
            rarest = ", ".join(f"{name} ({count})" for name, count in tail["rarest"].items())
            _say(console, f"Rarest: {rarest}", overflow="fold")

    if dup["top"]:
        table = _table("\nMost repeated texts", "Text", "Rows")
        for item in dup["top"]:
            _row(table, _show_text(item["text"]), _n(item["count"]))
        console.print(table)
        _say(console, f"Exact repeats: {_n(dup['exact'])}; after normalizing: {_n(dup['normalized'])}")

    if labelled and report["conflicts"]["examples"]:
        table = _table("\nSame text, different labels", "Text", "Labels")
        table.columns[1].justify = "left"
        table.columns[1].no_wrap = False
        for item in report["conflicts"]["examples"]:
            labels = ", ".join(f"{name} ({count})" for name, count in item["labels"].items())
            _row(table, _show_text(item["text"]), labels)
        console.print(table)

    if report["empty_fields"] or empty_labels:
        table = _table("\nEmpty fields", "Column", "Empty rows", "Share")
        for col, count in report["empty_fields"].items():
            _row(table, col, _n(count), _pct(count, rows))
        if report["empty_fields"]:
            _row(table, "(joined text)", _n(report["empty_texts"]), _pct(report["empty_texts"], rows))
        if empty_labels:
            _row(table, f"{empty_labels['column']} (label)", _n(empty_labels["rows"]), _pct(empty_labels["rows"], rows))
        console.print(table)
        if empty_labels.get("rows"):
            first = ", ".join(str(row) for row in empty_labels["first_rows"])
            more = " ..." if empty_labels["rows"] > len(empty_labels["first_rows"]) else ""
            bare = empty_labels.get("without_text") or 0
            if bare == empty_labels["rows"]:
                what = ("none has text or a photo either (a shop export's variant rows?): train, evaluate and "
                        "label-issues leave them out")
            elif bare:
                what = (f"train and evaluate refuse them unless --skip-unlabelled; {_n(bare)} of them have no text or "
                        "photo either (a shop export's variant rows?), which are left out")
            else:
                what = "train and evaluate refuse them unless --skip-unlabelled"
            _say(console, f"Rows with an empty label: row {first}{more} ({what})")

    lengths = report["text_length"]
    table = _table("\nText length", "", "Min", "Median", "Mean", "P95", "Max")
    for unit_name in ("chars", "words"):
        s = lengths[unit_name]
        _row(table, unit_name, *(_n(s[k]) for k in ("min", "median", "mean", "p95", "max")))
    console.print(table)

    if report.get("images"):
        _render_images(report["images"], rows, console)

    if report.get("levels"):
        table = _table("\nLevels", "Level", "Classes", "<5", "<10", "50% in", "80% in", "Imbalance")
        for level in report["levels"]:
            tail = level["long_tail"]
            _row(
                table,
                str(level["level"]),
                _n(level["classes"]),
                _n(tail["under_5"]["classes"]),
                _n(tail["under_10"]["classes"]),
                _n(tail["classes_for_50pct"]),
                _n(tail["classes_for_80pct"]),
                _n(tail["imbalance_ratio"]),
            )
        console.print(table)
        if report.get("path_depths") and len(report["path_depths"]) > 1:
            depths = ", ".join(f"{d} levels: {_n(c)}" for d, c in report["path_depths"].items())
            _say(console, f"Path depths: {depths}")
    apart = report.get("spelled_apart")
    if apart:
        _finding(console, "Classes spelled apart:",
                 classes_spelled_apart_message(apart, where=report["source"], column=apart["column"]))
    as_single = report.get("paths_as_single")
    if as_single:
        _finding(console, "Paths as single labels:",
                 paths_as_single_message(as_single, where=report["source"], column=as_single["column"]))
    placeholders = report.get("placeholder_labels")
    if placeholders:
        _finding(console, "No category:",
                 placeholder_labels_message(placeholders, where=report["source"], column=placeholders["column"]))
    ids = report.get("numeric_ids")
    if ids:
        _finding(console, "Numeric ids:", numeric_ids_message(ids, where=report["source"], column=ids["column"]))
    mixed = report.get("mixed_separators")
    if mixed:
        _finding(console, "Wrong separator:" if mixed.get("separator_unused") else "Mixed separators:",
                 mixed_path_separators_message(mixed, where=report["source"], column=mixed["column"]))
    single = report.get("one_tag_each")
    if single:
        _finding(console, "One tag per product:", one_tag_each_message(single, where=report["source"],
                                                                       column=single["column"]))
    several = report.get("several_paths")
    if several:
        _finding(console, "Several paths in a cell:",
                 several_paths_in_cells_message(several, where=report["source"], column=several["column"]))
    for column, finding in (report.get("markup") or {}).items():
        _finding(console, "HTML in texts:", markup_message(column, finding, report["source"]))
    for column, keys in (report.get("object_texts") or {}).items():
        _finding(console, "Objects in texts:", json_object_text_message(column, keys, report["source"]))


def _finding(console: Console, title: str, line: str) -> None:
    """A finding that train also tells of: its title in yellow, its line as written."""
    console.print(Text.assemble("\n", (title, "yellow"), " ", line), soft_wrap=True)


def _render_images(images: dict, rows: int, console: Console) -> None:
    table = _table(f"\nImages (column {images['column']})", "", "Products", "Share")
    readable, given = images["read"], images["with_reference"]
    _row(table, "with an image reference", _n(given), _pct(given, rows))
    _row(table, "readable", _n(readable), _pct(readable, rows))
    for key, what in (("missing", "missing (no such file, or a URL)"), ("unreadable", "unreadable"),
                      ("too_large", "too large")):
        if images.get(key):
            _row(table, what, _n(images[key]), _pct(images[key], rows))
    console.print(table)
    if images.get("failures"):
        _say(console, "First failures:")
    for ref, reason in images.get("failures", []):
        _say(console, f"  {_short_path(ref)}: {reason}", overflow="fold")


def _short_path(ref: str) -> str:
    """A path under the current directory shown relative to it (shorter); anything else as is."""
    if ref.startswith("<") or "://" in ref:  # "<12 bytes>", a URL
        return ref
    try:
        return str(Path(ref).resolve().relative_to(Path.cwd()))
    except (ValueError, OSError, RuntimeError):  # RuntimeError: a symlink loop, before Python 3.13
        return ref
