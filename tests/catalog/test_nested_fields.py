"""Fields inside nested JSON objects and Parquet structs, named by their dotted path ("info.title").

Product feeds exported as JSON (and Spark's Parquet) often nest the title
under an object; such a field used to be unreachable: only the whole object,
as JSON text, could be read.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cli_runner import run, run_ok
from prodcat.catalog.fields import FieldMapping
from prodcat.catalog.load import load_catalog
from prodcat.catalog.readers import iter_table, read_columns, read_table
from prodcat.errors import CatalogError, ColumnError

RECORDS = [
    {"id": 1, "info": {"title": "oxford shirt", "brand": {"name": "Acme"}}, "cat": ["Apparel", "Shirts"]},
    {"id": 2, "info": None, "cat": ["Home", "Kitchen"]},
    {"id": 3, "info": {"title": "chef knife"}, "cat": ["Home", "Kitchen"]},
]


def write_jsonl(path, records) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture(params=["jsonl", "parquet"])
def nested_file(request, tmp_path):
    path = tmp_path / f"feed.{request.param}"
    if request.param == "jsonl":
        write_jsonl(path, RECORDS)
    else:
        pq.write_table(pa.Table.from_pylist(RECORDS), path)
    return path


def test_nested_fields_are_named_by_their_dotted_path_after_the_columns(nested_file):
    assert read_columns(nested_file) == ["id", "info", "cat", "info.title", "info.brand", "info.brand.name"]


def test_a_nested_field_reads_as_a_column_and_empty_where_its_object_is_missing(nested_file):
    table = read_table(nested_file, ["id", "info.title", "info.brand.name"])
    assert table.to_dict("list") == {
        "id": ["1", "2", "3"],
        "info.title": ["oxford shirt", "", "chef knife"],
        "info.brand.name": ["Acme", "", ""],
    }
    # the whole file still reads as its top-level columns
    assert list(read_table(nested_file).columns) == ["id", "info", "cat"]


def test_a_misspelt_nested_field_is_named_with_its_likely_spelling(nested_file):
    with pytest.raises(ColumnError, match=r"column 'info.titel' not found in .*feed\.\w+; did you mean 'info.title'\?"):
        read_table(nested_file, ["info.titel"])


def test_a_top_level_key_spelt_with_a_dot_is_that_key(tmp_path):
    path = tmp_path / "dotted.jsonl"
    write_jsonl(path, [{"info.title": "flat", "info": {"title": "nested"}}])
    assert read_table(path, ["info.title"])["info.title"].tolist() == ["flat"]
    assert read_columns(path) == ["info.title", "info"]


def test_a_nested_field_first_seen_late_in_a_long_jsonl_file_is_found(tmp_path):
    path = tmp_path / "late.jsonl"
    write_jsonl(path, [{"id": i} for i in range(1500)] + [{"id": 1500, "info": {"title": "late"}}])
    chunks = list(iter_table(path, ["info.title"], chunk_size=1000))
    assert [c["info.title"].tolist()[-1] for c in chunks] == ["", "late"]


def test_train_and_predict_read_nested_fields_end_to_end(tmp_path, capsys):
    words = {("Apparel", "Shirts"): ["shirt", "oxford", "collar"], ("Home", "Kitchen"): ["knife", "pan", "kettle"]}
    records = [{"sku": {"code": f"{leaf}-{i}"}, "info": {"title": f"{words[(top, leaf)][i % 3]} model {i}"},
                "cat": [top, leaf]} for (top, leaf) in words for i in range(30)]
    data = tmp_path / "feed.jsonl"
    write_jsonl(data, records)
    run_ok("train", "--data", data, "--text-cols", "info.title", "--label-col", "cat", "--label-format", "path",
           "--id-cols", "sku.code", "--out", tmp_path / "model", "-q")
    parquet = tmp_path / "feed.parquet"
    pq.write_table(pa.Table.from_pylist(records), parquet)
    code, _, err = run(capsys, "predict", tmp_path / "model", "--data", parquet, "--out", tmp_path / "p.jsonl")
    assert code == 0, err
    predictions = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [p["sku.code"] for p in predictions] == [r["sku"]["code"] for r in records]
    assert sum(p["prediction"] == " > ".join(r["cat"]) for p, r in zip(predictions, records)) >= 55


def test_a_lone_surrogate_inside_a_nested_field_is_one_line_naming_the_line(tmp_path):
    path = tmp_path / "feed.jsonl"
    path.write_text('{"info": {"title": "fine"}}\n{"info": {"title": "bad \\ud800"}}\n')
    with pytest.raises(CatalogError, match=r"feed\.jsonl: line 2 holds a lone surrogate escape"):
        read_table(path, ["info.title"])


def test_a_list_of_paths_each_a_list_of_levels_is_the_first_paths_levels(tmp_path):
    # Amazon's product feeds write `categories` so; it was read as one class
    # named by the JSON text ('[["Clothing", "Men", "Shirts"]]'), one level deep.
    records = [{"title": t, "categories": [c]} for t, c in (
        ("oxford shirt", ["Clothing", "Men", "Shirts"]), ("chef knife", ["Home", "Kitchen"]))]
    jsonl, parquet = tmp_path / "feed.jsonl", tmp_path / "feed.parquet"
    write_jsonl(jsonl, records)
    pq.write_table(pa.Table.from_pylist(records), parquet)
    mapping = FieldMapping(text_cols=("title",), label_cols=("categories",), label_format="path")
    for path in (jsonl, parquet):
        assert load_catalog(path, mapping).labels == [("Clothing", "Men", "Shirts"), ("Home", "Kitchen")]


@pytest.mark.parametrize("suffix", ["jsonl", "parquet"])
def test_nested_fields_are_named_four_levels_deep_at_most(tmp_path, suffix):
    record = {"a": {"b": {"c": {"d": {"e": "deep"}}}}}
    path = tmp_path / f"deep.{suffix}"
    if suffix == "jsonl":
        write_jsonl(path, [record])
    else:
        pq.write_table(pa.Table.from_pylist([record]), path)
    assert read_columns(path) == ["a", "a.b", "a.b.c", "a.b.c.d"]
    assert read_table(path, ["a.b.c.d"])["a.b.c.d"].tolist() == ['{"e": "deep"}']


def test_a_label_column_of_objects_is_refused_naming_the_fields_inside(tmp_path, capsys):
    # An API's '"category": {"path": [...], "id": 7}' named by its object used to train each
    # whole object, as JSON text, as a class: predictions were JSON text.
    records = [{"id": i, "title": f"{word} {i}", "category": {"path": ["Home", word], "id": n}}
               for n, word in enumerate(["mug", "lamp", "rug"]) for i in range(4)]
    data = tmp_path / "api.jsonl"
    write_jsonl(data, records)
    for command in ("inspect", "train"):
        code, _, err = run(capsys, command, "--data", data, "--text-cols", "title", "--label-col", "category",
                           "--label-format", "path", *(["--out", tmp_path / "m"] if command == "train" else []))
        assert code == 2 and err.strip().splitlines() == [
            f"prodcat: error: {data}: label column 'category' holds JSON objects, not labels (row 1: "
            "'{\"path\": [\"Home\", \"mug\"], \"id\": 0}'); name the field that holds the label: "
            "in JSON Lines and Parquet by its dotted path (category.path, category.id)"
        ]
    assert not (tmp_path / "m").exists()
    run_ok("inspect", "--data", data, "--text-cols", "title", "--label-col", "category.path", "--label-format", "path")


def test_a_text_column_of_objects_is_warned_of_naming_the_fields_inside(tmp_path, capsys):
    # '"title": {"en": ..., "de": null}' named by its object trains on its JSON text, keys and nulls included.
    records = [{"id": i, "title": {"en": f"{word} {i}", "de": None}, "category": word}
               for word in ["mug", "lamp", "rug"] for i in range(6)]
    data = tmp_path / "api.jsonl"
    write_jsonl(data, records)
    line = (f"text column 'title' of {data} holds JSON objects: models read each as its JSON text, keys and "
            "nulls included; name the field that holds the text: in JSON Lines and Parquet by its dotted path "
            "(title.en, title.de)")
    code, out, err = run(capsys, "inspect", "--data", data, "--text-cols", "title", "--label-col", "category")
    assert code == 0, err
    assert line in " ".join(out.split())
    code, _, err = run(capsys, "train", "--data", data, "--text-cols", "title", "--label-col", "category",
                       "--out", tmp_path / "m")
    assert code == 0, err
    assert f"warning: {line}" in err.splitlines()
    code, _, err = run(capsys, "train", "--data", data, "--text-cols", "title.en", "--label-col", "category",
                       "--out", tmp_path / "m2")
    assert code == 0 and "JSON objects" not in err
