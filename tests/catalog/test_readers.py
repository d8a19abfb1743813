"""Reading catalog files of every format into frames of strings."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prodcat.catalog.readers import (
    SUPPORTED_FORMATS,
    detect_format,
    iter_table,
    read_columns,
    read_table,
)
from prodcat.errors import CatalogError, ColumnError, ConfigError

# What every format must give back for `_table()`, whatever it was written as.
EXPECTED = pd.DataFrame(
    {
        "id": ["007", "15970", "3"],
        "title": ["Turtle Check, Men's Shirt", 'Nike 3.5" Short', "Café – ünïcode"],
        "qty": ["1", "22", "333"],
        "price": ["1.5", "", "2.0"],
        "in_stock": ["True", "False", "True"],
        "note": ["", "two\nlines", ""],
    }
).astype(str)


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["007", "15970", "3"],
            "title": ["Turtle Check, Men's Shirt", 'Nike 3.5" Short', "Café – ünïcode"],
            "qty": [1, 22, 333],
            "price": [1.5, np.nan, 2.0],
            "in_stock": [True, False, True],
            "note": [None, "two\nlines", None],
        }
    )


WRITERS = {
    "products.csv": lambda df, p: df.to_csv(p, index=False),
    "products.tsv": lambda df, p: df.to_csv(p, sep="\t", index=False),
    "products.jsonl": lambda df, p: df.to_json(p, orient="records", lines=True, force_ascii=False),
    "products.parquet": lambda df, p: df.to_parquet(p, index=False),
    "products.csv.gz": lambda df, p: df.to_csv(p, index=False, compression="gzip"),
}


def _write(tmp_path, name, text=None, data=None):
    path = tmp_path / name
    if text is not None:
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def _all_str(frame: pd.DataFrame) -> bool:
    return all(type(v) is str for col in frame.columns for v in frame[col].tolist())


# ---- formats ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_every_format_gives_the_same_string_frame(tmp_path, name):
    path = tmp_path / name
    WRITERS[name](_table(), path)

    frame = read_table(path)

    pd.testing.assert_frame_equal(frame, EXPECTED)
    assert _all_str(frame)
    assert isinstance(frame.index, pd.RangeIndex)
    assert read_columns(path) == list(EXPECTED.columns)


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_columns_come_back_in_the_order_asked(tmp_path, name):
    path = tmp_path / name
    WRITERS[name](_table(), path)

    frame = read_table(path, ["title", "id", "title"])

    assert list(frame.columns) == ["title", "id"]
    assert frame["id"].tolist() == ["007", "15970", "3"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.csv", "csv"), ("a.TXT", "csv"), ("a.tsv", "tsv"), ("a.tab", "tsv"),
        ("a.jsonl", "jsonl"), ("a.ndjson", "jsonl"), ("a.json", "jsonl"),
        ("a.parquet", "parquet"), ("a.pq", "parquet"),
        ("a.csv.gz", "csv"), ("a.tsv.bz2", "tsv"), ("a.jsonl.xz", "jsonl"), ("a.csv.zst", "csv"),
    ],
)
def test_format_from_suffix(name, expected):
    assert detect_format(name) == expected


def test_format_sniffed_when_the_suffix_is_unknown(tmp_path):
    _table().to_parquet(tmp_path / "p.dat")
    assert detect_format(tmp_path / "p.dat") == "parquet"
    assert detect_format(_write(tmp_path, "j.dat", '  {"a": 1}\n')) == "jsonl"
    assert detect_format(_write(tmp_path, "c.dat", "a,b\n1,2\n")) == "csv"
    with gzip.open(tmp_path / "j.gz", "wt") as handle:
        handle.write('{"a": 1}\n')
    assert detect_format(tmp_path / "j.gz") == "jsonl"


def test_declared_format_wins_and_is_checked(tmp_path):
    path = _write(tmp_path, "export.dat", "a\tb\n1\t2\n")
    assert detect_format(path, "TSV") == "tsv"
    assert read_table(path, file_format="tsv").to_dict("list") == {"a": ["1"], "b": ["2"]}
    with pytest.raises(ConfigError, match="xlsx"):
        detect_format(path, "xlsx")
    assert set(SUPPORTED_FORMATS) == {"csv", "tsv", "jsonl", "parquet"}


def test_lists_and_dicts_become_json_text(tmp_path):
    records = [
        {"id": 1, "labels": ["Home", "Décor"], "attrs": {"colour": "red"}, "flag": True},
        {"id": 2, "labels": [], "attrs": None},
    ]
    jsonl = _write(tmp_path, "p.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    parquet = tmp_path / "p.parquet"
    pd.DataFrame({"id": [1, 2], "labels": [["Home", "Décor"], []], "attrs": [{"colour": "red"}, None]}).to_parquet(parquet)

    for path in (jsonl, parquet):
        frame = read_table(path, ["id", "labels", "attrs"])
        assert frame.to_dict("list") == {
            "id": ["1", "2"],
            "labels": ['["Home", "Décor"]', "[]"],
            "attrs": ['{"colour": "red"}', ""],
        }
        assert json.loads(frame["labels"][0]) == ["Home", "Décor"]
    # A key missing from a record is an empty cell; bools read as pandas writes them to CSV.
    assert read_table(jsonl, ["flag"])["flag"].tolist() == ["True", ""]


def test_jsonl_key_first_seen_late_can_be_asked_for(tmp_path):
    lines = [json.dumps({"a": i}) for i in range(1200)] + [json.dumps({"a": 1200, "late": "x"})]
    path = _write(tmp_path, "late.jsonl", "\n".join(lines) + "\n")
    assert read_columns(path) == ["a"]
    assert read_table(path, ["late"])["late"].tolist()[-2:] == ["", "x"]


def test_json_array_file_is_read_too(tmp_path):
    path = _write(tmp_path, "p.json", json.dumps([{"id": "007", "title": "a"}, {"id": 8}]))
    assert read_table(path).to_dict("list") == {"id": ["007", "8"], "title": ["a", ""]}


# ---- CSV layouts -------------------------------------------------------------


KAGGLE = (
    'Household,"Paper plane design Framed Wall Hanging, Motivational; Office Decor"\n'
    "Books,Some book; with semi; colons in its text\n"
    'Clothing & Accessories,"Shirt, slim fit, ""cotton"""\n'
    "Electronics,USB cable\n"
)


def test_headerless_kaggle_layout(tmp_path):
    path = _write(tmp_path, "ecommerceDataset.csv", KAGGLE)

    frame = read_table(path, ["text", "label"], header=False, column_names=["label", "text"])

    assert frame["label"].tolist() == ["Household", "Books", "Clothing & Accessories", "Electronics"]
    assert frame["text"][0] == "Paper plane design Framed Wall Hanging, Motivational; Office Decor"
    assert frame["text"][2] == 'Shirt, slim fit, "cotton"'
    assert read_columns(path, header=False) == ["0", "1"]
    assert read_columns(path, header=False, column_names=["label"]) == ["label", "1"]
    assert read_columns(path, header=False, column_names=["label", "text", "extra"]) == ["label", "text"]


def test_headerless_column_error_says_there_is_no_header(tmp_path):
    path = _write(tmp_path, "k.csv", KAGGLE)
    with pytest.raises(ColumnError, match=r"'text' not found in .*k\.csv.*columns are: 0, 1 \(read without a header"):
        read_table(path, ["text"], header=False)
    # no command has a --column-names option: the way to name them is a config file's
    with pytest.raises(ColumnError, match=r"numbered: name them by number, or with column_names in a config file"):
        read_table(path, ["text"], header=False)


def test_column_names_rename_a_header(tmp_path):
    path = _write(tmp_path, "h.csv", "a,b,c\n1,2,3\n")
    assert read_columns(path, column_names=["x", "y"]) == ["x", "y", "c"]
    with pytest.raises(ConfigError, match="repeated"):
        read_columns(path, column_names=["x", "x"])


def test_semicolon_and_pipe_separators(tmp_path):
    semi = _write(tmp_path, "semi.csv", "id;title;price\n007;Shirt, blue;1,50\n2;Cap;3\n")
    pipe = _write(tmp_path, "pipe.txt", "id|title\n007|Shirt, blue\n")
    assert read_table(semi).to_dict("list") == {"id": ["007", "2"], "title": ["Shirt, blue", "Cap"], "price": ["1,50", "3"]}
    assert read_table(pipe).to_dict("list") == {"id": ["007"], "title": ["Shirt, blue"]}


def test_bom_is_dropped(tmp_path):
    path = _write(tmp_path, "bom.csv", data="id,title\n007,Café\n".encode("utf-8-sig"))
    assert read_columns(path) == ["id", "title"]
    assert read_table(path, ["id"])["id"].tolist() == ["007"]


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
def test_other_encodings_with_the_option(tmp_path, encoding):
    path = _write(tmp_path, "latin.csv", data="id,title\n1,Café crème\n".encode(encoding))
    assert read_table(path, encoding=encoding)["title"].tolist() == ["Café crème"]


def test_short_rows_are_padded_and_trailing_separators_named(tmp_path):
    short = _write(tmp_path, "short.csv", "a,b,c\n1,2\n3,4,5\n")
    trailing = _write(tmp_path, "trailing.csv", "a,b\n1,2,\n3,4,\n")
    assert read_table(short).to_dict("list") == {"a": ["1", "3"], "b": ["2", "4"], "c": ["", "5"]}
    # pandas would otherwise take column a as the index or silently drop a field.
    assert read_table(trailing).to_dict("list") == {"a": ["1", "3"], "b": ["2", "4"], "2": ["", ""]}
    # ...but a lone first row with an unquoted comma is an error, not a new column.
    first_bad = _write(tmp_path, "first_bad.csv", "id,title\n1,Shirt, blue\n2,Cap\n3,Hat\n")
    with pytest.raises(CatalogError, match=r"first_bad\.csv: malformed CSV at line 2: expected 2 fields, saw 3"):
        read_table(first_bad)


# ---- streaming ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["products.csv", "products.jsonl", "products.parquet"])
def test_iter_table_chunks_keep_order_and_global_index(tmp_path, name):
    table = pd.DataFrame({"id": [f"{i:04d}" for i in range(10)], "title": [f"t{i}" for i in range(10)], "x": range(10)})
    path = tmp_path / name
    WRITERS[name](table, path)

    chunks = list(iter_table(path, ["title", "id"], chunk_size=4))

    assert [len(c) for c in chunks] == [4, 4, 2]
    assert all(isinstance(c.index, pd.RangeIndex) for c in chunks)
    assert [(c.index.start, c.index.stop) for c in chunks] == [(0, 4), (4, 8), (8, 10)]
    assert all(list(c.columns) == ["title", "id"] for c in chunks)
    whole = pd.concat(chunks)
    assert whole["id"].tolist() == table["id"].tolist()
    pd.testing.assert_frame_equal(whole, read_table(path, ["title", "id"]))


def test_iter_table_checks_columns_before_iterating(tmp_path):
    path = _write(tmp_path, "p.csv", "id,title\n1,a\n")
    with pytest.raises(ColumnError):
        iter_table(path, ["titel"])  # no next() needed
    with pytest.raises(ConfigError, match="chunk size"):
        iter_table(path, chunk_size=0)


# ---- bad files ---------------------------------------------------------------


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(CatalogError, match=r"catalog file not found: .*nope\.csv"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(CatalogError, match="is a directory, not a catalog file"):
        read_columns(tmp_path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("zero.csv", "", "zero.csv is empty"),
        ("blank.csv", "  \n\n \n", "blank.csv is empty"),
        ("header.csv", "id,title\n", "header.csv has a header but no rows"),
        ("blank.jsonl", "\n\n", "blank.jsonl is empty"),
        ("zero.parquet", "", "zero.parquet is empty"),
    ],
)
def test_empty_files(tmp_path, name, content, message):
    path = _write(tmp_path, name, content)
    with pytest.raises(CatalogError, match=message):
        read_table(path)


def test_parquet_with_no_rows(tmp_path):
    path = tmp_path / "none.parquet"
    _table().iloc[:0].to_parquet(path)
    assert read_columns(path)[:2] == ["id", "title"]
    with pytest.raises(CatalogError, match="none.parquet has a schema but no rows"):
        read_table(path)


@pytest.mark.parametrize(
    ("data", "looks_like"),
    [
        (b"PK\x03\x04\x14\x00\x06\x00", "ZIP archive"),
        (gzip.compress(b"id,title\n1,a\n"), "gzip-compressed data"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "PNG image"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG image"),
        (b"%PDF-1.7\n", "PDF document"),
        (b"id,title\n1,a\x00b\n", "binary data"),
    ],
)
def test_binary_files_are_not_read_as_text(tmp_path, data, looks_like):
    path = _write(tmp_path, "catalog.csv", data=data)
    with pytest.raises(CatalogError, match=rf"catalog\.csv is not a text CSV file \(looks like .*{looks_like}"):
        read_table(path)


def test_parquet_named_csv_says_so(tmp_path):
    path = tmp_path / "products.csv"
    _table().to_parquet(path)
    with pytest.raises(CatalogError, match=r"products\.csv is not a text CSV file \(looks like Parquet data\); pass --format parquet"):
        read_columns(path)
    assert read_table(path, ["id"], file_format="parquet")["id"].tolist() == ["007", "15970", "3"]


def test_utf16_without_the_option(tmp_path):
    path = _write(tmp_path, "u16.csv", data="id,title\n1,a\n".encode("utf-16"))
    with pytest.raises(CatalogError, match="u16.csv is UTF-16 text"):
        read_table(path)
    assert read_table(path, encoding="utf-16").to_dict("list") == {"id": ["1"], "title": ["a"]}


def test_not_utf8_names_the_byte_and_line(tmp_path):
    path = _write(tmp_path, "latin.csv", data="id,title\n1,ok\n2,Café\n".encode("latin-1"))
    with pytest.raises(CatalogError) as caught:
        read_table(path)
    assert str(caught.value) == (
        f"{path} is not UTF-8 text: byte 0xE9 at line 3; re-save it as UTF-8 or pass --encoding cp1252"
    )


def test_the_encoding_a_not_utf8_error_suggests_reads_an_excel_export_right(tmp_path):
    # Excel on Windows writes cp1252: read as latin-1, its quote in "Men’s" would be the control character U+0092
    path = _write(tmp_path, "excel.csv", data="id,title\n1,Café\n2,Men’s “oxford” shirt – €20\n".encode("cp1252"))
    with pytest.raises(CatalogError) as caught:
        read_table(path)
    suggested = str(caught.value).rsplit("--encoding ", 1)[1]
    assert read_table(path, encoding=suggested)["title"].tolist() == ["Café", "Men’s “oxford” shirt – €20"]


@pytest.mark.parametrize("name", ["deep.csv", "deep.jsonl"])
def test_not_utf8_deep_in_a_large_file(tmp_path, name):
    # Past the part read up front, so the failure comes from the parser.
    rows = 12_000
    if name.endswith(".csv"):
        body = "id,title\n" + "".join(f"{i},product title number {i}\n" for i in range(rows))
        bad = "x,Caf\xe9\n"
    else:
        body = "".join(json.dumps({"id": i, "title": f"product title number {i}"}) + "\n" for i in range(rows))
        bad = '{"id": "x", "title": "Caf\xe9"}\n'
    line = body.count("\n") + 1
    path = _write(tmp_path, name, data=body.encode() + bad.encode("latin-1"))
    assert path.stat().st_size > 256 * 1024
    with pytest.raises(CatalogError, match=rf"{name} is not UTF-8 text: byte 0xE9 at line {line};"):
        for _chunk in iter_table(path, chunk_size=5000):
            pass


def test_row_with_too_many_fields_names_the_line(tmp_path):
    path = _write(tmp_path, "bad.csv", "id,title\n1,a\n2,b\n3,c,extra\n4,d\n")
    with pytest.raises(CatalogError) as caught:
        read_table(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: malformed CSV at line 4: expected 2 fields, saw 3")
    assert "\n" not in message


def test_unclosed_quote_names_the_line(tmp_path):
    path = _write(tmp_path, "quote.csv", 'id,title\n1,a\n2,"never closed\n3,c\n')
    with pytest.raises(CatalogError, match=r"quote\.csv: malformed CSV at line 3: a quoted field is never closed"):
        read_table(path)


def test_invalid_json_line(tmp_path):
    path = _write(tmp_path, "bad.jsonl", '{"id": 1}\n\n{"id": 2,}\n')
    with pytest.raises(CatalogError, match=r"bad\.jsonl: invalid JSON at line 3"):
        read_table(path)
    cut_short = _write(tmp_path, "cut.jsonl", '{"id": 1}\n{"id": 2, "title": "chef knife", \n')
    with pytest.raises(CatalogError, match=r"cut\.jsonl: invalid JSON at line 2: .* \(column 34\)"):
        read_table(cut_short)
    not_object = _write(tmp_path, "list.jsonl", '{"id": 1}\n[1, 2]\n')
    with pytest.raises(CatalogError, match=r"list\.jsonl: line 2 is not a JSON object"):
        read_table(not_object)


@pytest.mark.parametrize("data", [b"PAR1 not really parquet PAR1", b"id,title\n1,a\n"])
def test_unreadable_parquet(tmp_path, data):
    path = _write(tmp_path, "broken.parquet", data=data)
    with pytest.raises(CatalogError, match=r"broken\.parquet is not a readable Parquet file \(.+\)"):
        read_table(path)


def test_compressed_file_that_is_not(tmp_path):
    path = _write(tmp_path, "plain.csv.gz", "id,title\n1,a\n")
    with pytest.raises(CatalogError, match=r"plain\.csv\.gz is not valid gzip data"):
        read_table(path)


def test_missing_columns_suggest_close_names(tmp_path):
    path = _write(tmp_path, "p.csv", "id,title,category\n1,a,b\n")
    with pytest.raises(ColumnError) as caught:
        read_table(path, ["id", "titel"])
    assert str(caught.value) == (
        f"column 'titel' not found in {path}; did you mean 'title'? columns are: id, title, category"
    )
    with pytest.raises(ColumnError, match=r"columns 'titel', 'zzz' not found in .*p\.csv; did you mean 'title' for 'titel'\?"):
        read_table(path, ["titel", "zzz"])


def test_a_column_named_twice_in_the_header_is_refused_when_read(tmp_path):
    # pandas would name the second one title.1 and the first would be read without a word
    path = _write(tmp_path, "dup.csv", "title,description,title,category\nshirt,a,knife,Shirts\n")
    with pytest.raises(ColumnError, match=r"dup\.csv: column 'title' appears 2 times in the header; rename all but one"):
        read_table(path, ["title", "category"])
    # a repeated column nobody reads does not matter
    assert read_table(path, ["description", "category"]).to_dict("records") == [
        {"description": "a", "category": "Shirts"}]


def test_spaces_around_header_names_are_no_part_of_them(tmp_path):
    # a hand-written "sku, title" header: --text-cols title could never name " title"
    path = _write(tmp_path, "padded.csv", "sku, title , category\n007, Shirt ,Shirts\n")
    assert read_columns(path) == ["sku", "title", "category"]
    assert read_table(path, ["title", "category"]).to_dict("records") == [{"title": " Shirt ", "category": "Shirts"}]
    # unless that makes two columns one: then the name is refused as a repeated one
    path = _write(tmp_path, "twice.csv", "title, title,category\nshirt,knife,Shirts\n")
    with pytest.raises(ColumnError, match=r"twice\.csv: column 'title' appears 2 times in the header"):
        read_table(path, ["title", "category"])


def test_a_column_named_twice_in_a_parquet_schema_is_refused_when_read(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "dup.parquet"
    columns = [pa.array(["shirt"]), pa.array(["knife"]), pa.array(["Shirts"])]
    pq.write_table(pa.Table.from_arrays(columns, names=["title", "title", "category"]), path)
    with pytest.raises(ColumnError, match=r"dup\.parquet: column 'title' appears 2 times in the schema; rename all but one"):
        read_table(path, ["title", "category"])
    assert read_table(path, ["category"]).to_dict("records") == [{"category": "Shirts"}]


def test_missing_column_lists_at_most_30_columns(tmp_path):
    names = [f"col{i}" for i in range(45)]
    path = _write(tmp_path, "wide.csv", ",".join(names) + "\n" + ",".join("x" * 45) + "\n")
    with pytest.raises(ColumnError) as caught:
        read_table(path, ["nothing_like_it"])
    message = str(caught.value)
    assert "col29, ..." in message and "col30" not in message


def test_bad_options_are_config_errors(tmp_path):
    path = _write(tmp_path, "p.csv", "id\n1\n")
    with pytest.raises(ConfigError, match="unknown encoding"):
        read_table(path, encoding="no-such-codec")


# ---- the real catalogs -------------------------------------------------------


@pytest.mark.shared_data
def test_fashion_styles_reads_whole(shared_data):
    path = shared_data / "fashion" / "styles.csv"

    frame = read_table(path)

    # This copy has no rows with unquoted commas: every line has 10 fields.
    assert frame.shape == (37_822, 10)
    assert list(frame.columns[:5]) == ["id", "gender", "masterCategory", "subCategory", "articleType"]
    assert frame["id"].str.fullmatch(r"\d+").all()
    assert frame["id"][0] == "15970"
    assert frame["year"].str.fullmatch(r"\d{4}").all()
    assert (frame["season"] == "").sum() == 16  # empty cells, not "nan"
    assert "Nike Women's EM Tempo 3.5\" Pink Short" in set(frame["productDisplayName"])
    assert _all_str(frame.head(1000))


@pytest.mark.shared_data
def test_flipkart_products_columns(shared_data):
    path = shared_data / "flipkart" / "products.csv"

    assert read_columns(path)[:5] == ["uniq_id", "crawl_timestamp", "product_url", "product_name", "product_category_tree"]
    frame = read_table(path, ["product_name", "description", "product_category_tree", "retail_price"])
    assert len(frame) == 1050
    tree = json.loads(frame["product_category_tree"][0])
    assert tree[0].startswith("Home Furnishing >> Curtains & Accessories")
    assert frame["retail_price"][0] == "1899.0"  # as written, not parsed


@pytest.mark.parametrize("first", ["sep=;", "sep=,", "\ufeffsep=;", '"sep=;"'])
def test_excels_separator_line_above_the_header_is_named_in_one_line(tmp_path, first):
    # It was read as the header: "columns ... not found; columns are: sep=, Unnamed: 1, ...".
    path = tmp_path / "excel.csv"
    path.write_text(f"{first}\ntitle;category\nshirt;Apparel\n", encoding="utf-8")
    with pytest.raises(CatalogError, match=r"excel\.csv: its first line '.*sep=.*' is Excel's note of the separator, "
                                           r"not a header; delete that line"):
        read_columns(path)


@pytest.mark.timeout(30)
def test_a_header_of_a_hundred_thousand_names_is_checked_in_linear_time():
    # A 200 KB upload to the server holds that many; checked name against list, it took hours.
    from prodcat.catalog.readers import _check_unique, _unpadded

    names = [f"c{i}" for i in range(200_000)]
    assert _unpadded([f" {n}" for n in names]) == names
    assert _unpadded([" c0", "c0"]) == [" c0", "c0"]  # stripping would make two columns one
    _check_unique(Path("x.csv"), names)
    with pytest.raises(ConfigError, match="'c7'"):
        _check_unique(Path("x.csv"), names + ["c7"])


@pytest.mark.parametrize("name, columns, expected", [
    ("product_name", ["sku", "Product Name"], "Product Name"),
    ("title", ["Title", "subtitle"], "Title"),
    ("description", ["desciption", "sku"], "desciption"),
    ("title", ["titles"], "titles"),
    # another field that contains the name is no renaming of it
    ("title", ["subtitle"], None),
    ("category", ["subCategory", "masterCategory"], None),
    ("description", ["short_description"], None),
    # a short name is one letter from many others
    ("age", ["page"], None),
    # two columns match as well: neither is taken
    ("title", ["Title", "TITLE"], None),
])
def test_renamed_column_takes_only_a_name_written_a_little_otherwise(name, columns, expected):
    from prodcat.catalog.readers import renamed_column

    assert renamed_column(name, columns) == expected
