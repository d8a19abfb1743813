"""`inspect_catalog` counts exactly, stays JSON-able, and renders in 80 columns."""

from __future__ import annotations

import io
import json

import pandas as pd
from rich.console import Console

from prodcat.catalog.fields import FieldMapping
from prodcat.catalog.inspect import inspect_catalog, render_inspection
from prodcat.catalog.products import Catalog, Products


def make_catalog(rows: list[tuple[str, str, object]], mapping: FieldMapping, labelled: bool = True) -> Catalog:
    """rows: (title, description, label tuple)."""
    frame = pd.DataFrame(
        {"title": [r[0] for r in rows], "description": [r[1] for r in rows], "category": ["" for _ in rows]}
    )
    texts = [mapping.join_text([r[0], r[1]]) for r in rows]
    products = Products(texts=texts, fields={"title": frame["title"].tolist(), "description": frame["description"].tolist()})
    labels = [tuple(r[2]) for r in rows] if labelled else None
    return Catalog(products=products, labels=labels, frame=frame, mapping=mapping, source="hand-made.csv")


SINGLE = FieldMapping(text_cols=("title", "description"), label_cols=("category",))
SINGLE_ROWS = [
    ("Red Shirt", "cotton", ("Shirts",)),
    ("Red Shirt", "cotton", ("Shirts",)),  # exact repeat of row 0
    ("red shirt!", "Cotton", ("Shirts",)),  # normalized repeat of row 0
    ("Blue Mug", "", ("Mugs",)),  # empty description
    ("Blue Mug", "", ("Shirts",)),  # exact repeat, different label: conflict
    ("Lamp", "", ("Lamps",)),
    ("", "", ("Lamps",)),  # empty text
    ("Desk Lamp", "bright", ("Lamps",)),
    ("Green Shirt", "linen", ("Shirts",)),
    ("Poster", "wall art", ("Posters",)),
]


def test_single_label_counts():
    report = inspect_catalog(make_catalog(SINGLE_ROWS, SINGLE), top=3)
    assert report["source"] == "hand-made.csv"
    assert report["rows"] == 10
    assert report["label_format"] == "single"
    assert report["classes"] == 4
    assert report["class_counts"] == {"Shirts": 5, "Lamps": 3, "Mugs": 1, "Posters": 1}
    assert list(report["class_counts"]) == ["Shirts", "Lamps", "Mugs", "Posters"]

    tail = report["long_tail"]
    assert tail["under_5"] == {"classes": 3, "products": 5}
    assert tail["under_10"] == {"classes": 4, "products": 10}
    assert tail["rarest"] == {"Mugs": 1, "Posters": 1, "Lamps": 3}
    assert tail["classes_for_50pct"] == 1  # Shirts alone: 5 of 10
    assert tail["classes_for_80pct"] == 2  # Shirts + Lamps: 8 of 10
    assert tail["imbalance_ratio"] == 5.0

    dup = report["duplicates"]
    assert dup["exact"] == 2  # rows 1 and 4
    assert dup["normalized"] == 3  # and row 2
    assert dup["groups"] == 6  # the empty text is no text, counted under empty_texts
    assert dup["top"][0] == {"text": "Red Shirt | cotton", "count": 3}
    assert dup["top"][1] == {"text": "Blue Mug", "count": 2}
    assert len(dup["top"]) == 2

    conflicts = report["conflicts"]
    assert conflicts["texts"] == 1
    assert conflicts["rows"] == 2
    assert conflicts["examples"] == [{"text": "Blue Mug", "labels": {"Mugs": 1, "Shirts": 1}}]

    assert report["empty_fields"] == {"title": 1, "description": 4}
    assert report["empty_texts"] == 1

    chars = report["text_length"]["chars"]
    assert chars["min"] == 0 and chars["max"] == len("red shirt! | Cotton")
    words = report["text_length"]["words"]
    assert words["min"] == 0 and words["max"] == 3  # "Red Shirt | cotton": the joiner is no word
    assert words["median"] == 3.0
    assert "levels" not in report and "labels_per_product" not in report


def test_path_levels():
    mapping = FieldMapping(text_cols=("title", "description"), label_cols=("category",), label_format="path")
    rows = [
        ("Tee one", "", ("Apparel", "Topwear", "Tshirts")),
        ("Tee two", "", ("Apparel", "Topwear", "Tshirts")),
        ("Shirt", "", ("Apparel", "Topwear", "Shirts")),
        ("Jeans", "", ("Apparel", "Bottomwear", "Jeans")),
        ("Watch", "", ("Accessories", "Watches")),  # a shorter path
        ("Watch two", "", ("Accessories", "Watches")),
    ]
    report = inspect_catalog(make_catalog(rows, mapping))
    assert report["classes"] == 4
    assert report["class_counts"]["Apparel > Topwear > Tshirts"] == 2
    assert report["path_depths"] == {"2": 2, "3": 4}
    levels = report["levels"]
    assert [lv["level"] for lv in levels] == [1, 2, 3]
    assert levels[0]["class_counts"] == {"Apparel": 4, "Accessories": 2}
    assert levels[1]["class_counts"] == {"Apparel > Topwear": 3, "Accessories > Watches": 2, "Apparel > Bottomwear": 1}
    assert levels[1]["classes"] == 3
    # A path shorter than the level counts as itself, as levels are scored.
    assert levels[2]["classes"] == 4
    assert levels[2]["class_counts"]["Accessories > Watches"] == 2
    assert levels[0]["long_tail"]["imbalance_ratio"] == 2.0
    assert levels[1]["long_tail"]["under_5"] == {"classes": 3, "products": 6}


def test_multi_label_counts_per_label():
    mapping = FieldMapping(text_cols=("title", "description"), label_cols=("category",), label_format="multi")
    rows = [
        ("Linen shirt", "", ("linen", "men", "summer")),
        ("Linen Shirt", "", ("men", "summer")),  # same text, other label set: conflict
        ("Wool coat", "", ("men", "winter")),
        ("Silk scarf", "", ("women",)),
    ]
    report = inspect_catalog(make_catalog(rows, mapping))
    assert report["classes"] == 5
    assert report["class_counts"] == {"men": 3, "summer": 2, "linen": 1, "winter": 1, "women": 1}
    assert report["labels_per_product"] == {"mean": 2.0, "max": 3, "total": 8}
    assert report["duplicates"]["normalized"] == 1 and report["duplicates"]["exact"] == 0
    assert report["conflicts"]["texts"] == 1
    assert report["conflicts"]["examples"][0]["labels"] == {"linen|men|summer": 1, "men|summer": 1}
    assert report["long_tail"]["classes_for_50pct"] == 2  # 5 of 8 label uses
    out = io.StringIO()
    render_inspection(report, Console(file=out, width=100))
    tail = out.getvalue()[out.getvalue().index("Long tail"):]
    # a tag's count is the products carrying it; the column sums label uses, not products
    assert "fewer than 5 products" in tail and "fewer than 5 labels" not in tail
    assert [w for w in tail.splitlines()[1].split() if w.isalpha()] == ["Classes", "Labels"]


def test_unlabelled_catalog_skips_label_sections():
    report = inspect_catalog(make_catalog(SINGLE_ROWS, SINGLE, labelled=False))
    assert report["labelled"] is False
    for key in ("classes", "class_counts", "long_tail", "conflicts", "levels"):
        assert key not in report
    assert report["duplicates"]["normalized"] == 3
    out = io.StringIO()
    render_inspection(report, Console(file=out, width=80))
    assert "no labels" in out.getvalue()


def test_json_serialisable_and_round_trips():
    for mapping in (SINGLE, FieldMapping(text_cols=("title", "description"), label_cols=("category",), label_format="path")):
        rows = SINGLE_ROWS if mapping.label_format == "single" else [(t, d, ("A", lab[0])) for t, d, lab in SINGLE_ROWS]
        report = inspect_catalog(make_catalog(rows, mapping))
        assert json.loads(json.dumps(report)) == report


def test_empty_catalog():
    report = inspect_catalog(make_catalog([], SINGLE, labelled=False))
    assert report["rows"] == 0 and report["text_length"]["chars"]["max"] is None
    json.dumps(report)
    render_inspection(report, Console(file=io.StringIO(), width=80))


def test_render_shows_headline_numbers_in_80_columns():
    rows = SINGLE_ROWS + [(f"Extra item {i}", "", (f"Class {i}",)) for i in range(12)]
    mapping = FieldMapping(text_cols=("title", "description"), label_cols=("category",), label_format="path")
    rows = [(t, d, ("Top",) + tuple(lab)) for t, d, lab in rows]
    report = inspect_catalog(make_catalog(rows, mapping), top=5)
    out = io.StringIO()
    render_inspection(report, Console(file=out, width=80))
    text = out.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "hand-made.csv" in text
    assert "22" in text  # rows
    assert "Classes" in text and "16" in text  # 4 + 12 leaf classes
    assert "... 11 more" in text
    assert "Top > Shirts" in text
    assert "Blue Mug" in text  # a conflict example
    assert "Levels" in text and "Long tail" in text and "Text length" in text


def test_empty_labels_are_reported_and_left_out_of_the_class_figures():
    rows = SINGLE_ROWS[:4] + [("Blue Mug", "", ()), ("Lamp", "", ())] + SINGLE_ROWS[6:]
    report = inspect_catalog(make_catalog(rows, SINGLE), top=3)
    assert report["rows"] == 10
    assert report["empty_labels"] == {"column": "category", "rows": 2, "first_rows": [5, 6], "without_text": 0}
    assert report["class_counts"] == {"Shirts": 4, "Lamps": 2, "Mugs": 1, "Posters": 1}
    # "Blue Mug" with no label is not a second label for "Blue Mug"
    assert report["conflicts"]["texts"] == 0
    console = Console(file=io.StringIO(), width=80)
    render_inspection(report, console)
    shown = console.file.getvalue()
    assert "category (label)" in shown and "Rows with an empty label: row 5, 6 " in shown
    assert "50.0%" in shown  # Shirts: 4 of the 8 labelled products


def test_multi_label_shares_count_every_label_when_class_counts_are_cut(monkeypatch):
    # class_counts keeps the most common classes only: summing it for the share's whole
    # gave "common" 60% of the label uses when it holds 50%.
    monkeypatch.setattr("prodcat.catalog.inspect.MAX_CLASS_COUNTS", 3)
    mapping = FieldMapping(text_cols=("title", "description"), label_cols=("category",), label_format="multi")
    rows = [(f"item {i}", "", ("common", f"rare{i}")) for i in range(6)]
    report = inspect_catalog(make_catalog(rows, mapping), top=1)
    assert len(report["class_counts"]) == 3 and report["classes"] == 7
    assert report["labels_per_product"]["total"] == 12
    console = Console(file=io.StringIO(), width=80)
    render_inspection(report, console)
    assert "50.0%" in console.file.getvalue()


def test_rows_with_nothing_to_read_are_empty_texts_not_duplicates_or_conflicts():
    # A Shopify export's variant rows have no title: "Duplicate rows 49.7%" and a
    # conflict on the empty text said nothing the empty-text count did not.
    rows = SINGLE_ROWS + [("", "", ("Mugs",)), ("", "", ("Posters",)), ("", "", ("Lamps",))]
    report = inspect_catalog(make_catalog(rows, SINGLE), top=3)
    assert report["empty_texts"] == 4
    assert report["duplicates"]["normalized"] == 3 and report["duplicates"]["groups"] == 6
    assert report["conflicts"]["texts"] == 1
    assert [example["labels"] for example in report["conflicts"]["examples"]] == [{"Mugs": 1, "Shirts": 1}]


def test_a_multi_label_column_of_paths_is_reported_with_the_format_to_pass():
    from prodcat.catalog.load import load_catalog

    mapping = FieldMapping(text_cols=("title",), label_cols=("category",), label_format="multi")
    frame = pd.DataFrame({"title": ["Linen shirt", "Wool coat", "Chef knife"],
                          "category": ["Apparel > Shirts", "Apparel > Coats", "Home > Kitchen"]})
    report = inspect_catalog(load_catalog(frame, mapping))
    assert report["one_tag_each"] == {"column": "category", "example": "Apparel > Shirts", "path_separator": " > "}
    out = io.StringIO()
    render_inspection(report, Console(file=out, width=400))
    assert ("One tag per product: <dataframe>: label column 'category' is read as multi-label, but no product "
            "holds more than one tag") in out.getvalue()
    tagged = frame.assign(category=["linen|men", "wool|men", "steel"])
    assert inspect_catalog(load_catalog(tagged, mapping))["one_tag_each"] is None


def test_labels_that_are_numeric_taxonomy_ids_are_a_finding_with_a_hint():
    # Google's google_product_category as ids ("1604") trained as flat nameless classes, and nothing said so
    from prodcat.catalog.load import load_catalog

    mapping = FieldMapping(text_cols=("title",), label_cols=("google_product_category",))
    frame = pd.DataFrame({"title": ["Linen shirt", "Wool coat", "Chef knife", "Desk lamp"],
                          "google_product_category": ["1604", "5598", "668", "Toys"]})
    report = inspect_catalog(load_catalog(frame, mapping))
    assert report["numeric_ids"] == {"column": "google_product_category", "rows": 3, "labelled": 4,
                                     "example": "1604", "paths": 0}
    out = io.StringIO()
    render_inspection(report, Console(file=out, width=400))
    assert ("Numeric ids: <dataframe>: label column 'google_product_category' holds numeric ids (3 of 4 labels; "
            "e.g. '1604'): each is learned as a class with no levels and no name; if they are Google product "
            "taxonomy ids, replace each by its path") in out.getvalue()
    # An id beside paths: one category written two ways
    paths = FieldMapping(text_cols=("title",), label_cols=("google_product_category",), label_format="path")
    mixed = frame.assign(google_product_category=["1604", "Apparel > Coats", "Home > Kitchen", "Home > Lighting"])
    assert inspect_catalog(load_catalog(mixed, paths))["numeric_ids"]["paths"] == 3
    # Named classes, a lone number among them (a year, a size): nothing to say
    named = frame.assign(google_product_category=["Shirts", "Coats", "Knives", "2024"])
    assert inspect_catalog(load_catalog(named, mapping))["numeric_ids"] is None
