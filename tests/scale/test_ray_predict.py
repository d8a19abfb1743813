"""Batch prediction on Ray gives exactly the local engine's output.

A local Ray starts once for the module (2 CPUs, loopback only); every Ray
test compares the Parquet file written through Ray with the one
`Categorizer.predict_file` writes for the same products, column by column and
row by row. The checks that must fail before Ray starts run without it.
"""

import socket
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from prodcat import Categorizer
from prodcat.cli import main
from prodcat.errors import CatalogError, ColumnError, ConfigError, ModelDirError
from prodcat.scale import ray_predict
from prodcat.scale.ray_predict import input_files, predict_with_ray, start_ray

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo_catalog.csv"
# Smaller n-gram ranges than the defaults: predictions are only compared, not
# judged, and the test then spends its seconds on Ray rather than on n-grams.
FAST = {"word_ngrams": [1, 1], "char_ngrams": [3, 4]}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ray") / "model"
    Categorizer(text_cols=["title", "description"], label_col="category", label_format="path",
                id_cols=["sku"], params=FAST, quiet=True).fit(DEMO).save(out)
    return out


@pytest.fixture(scope="module")
def products() -> pd.DataFrame:
    """The 630 demo products five times over (3,150 rows), each copy changed a
    little so confidences vary, with ids that only survive as text."""
    demo = pd.read_csv(DEMO, dtype=str, keep_default_na=False)
    copies = []
    for copy in range(5):
        part = demo.copy()
        part["sku"] = [f"{copy:03d}{i:04d}" for i in range(len(part))]  # "0000000": an int would lose the zeros
        words = part["title"].str.split()
        if copy == 1:
            part["title"] = words.str[::-1].str.join(" ")
        elif copy == 2:
            part["description"] = ""
        elif copy == 3:
            part["title"] = words.str[:2].str.join(" ")
        elif copy == 4:
            part["title"] = part["title"].str.lower() + " gift set"
        copies.append(part)
    return pd.concat(copies, ignore_index=True)


@pytest.fixture(scope="module")
def ray_session():
    started = start_ray(num_cpus=2, quiet=True)
    yield
    if started:
        import ray

        ray.shutdown()


def local_predictions(model_dir: Path, data: Path, out: Path, **options) -> pd.DataFrame:
    Categorizer.load(model_dir, quiet=True).predict_file(data, out, **options)
    return pd.read_parquet(out)


def assert_same_file(ray_out: Path, local_out: Path) -> pd.DataFrame:
    """Same schema, same columns, same values in the same order."""
    assert pq.read_schema(ray_out).remove_metadata() == pq.read_schema(local_out).remove_metadata()
    ours, theirs = pd.read_parquet(ray_out), pd.read_parquet(local_out)
    pd.testing.assert_frame_equal(ours, theirs, check_exact=False, rtol=0, atol=1e-6)
    return ours


@pytest.mark.slow
def test_folder_of_csv_files_gives_the_local_engines_predictions(model_dir, products, ray_session, tmp_path):
    folder = tmp_path / "catalog"
    folder.mkdir()
    # part-10 must come last although it sorts first as text
    for name, rows in (("part-1.csv", slice(0, 1000)), ("part-2.csv", slice(1000, 2100)),
                       ("part-10.csv", slice(2100, None))):
        products.iloc[rows].to_csv(folder / name, index=False)
    (folder / "_SUCCESS").write_text("")
    products.to_csv(tmp_path / "whole.csv", index=False)

    summary = predict_with_ray(model_dir, folder, tmp_path / "ray.parquet", quiet=True, num_workers=2, batch_size=300)

    local = local_predictions(model_dir, tmp_path / "whole.csv", tmp_path / "local.parquet")
    ours = assert_same_file(tmp_path / "ray.parquet", tmp_path / "local.parquet")
    assert ours["sku"].tolist() == products["sku"].tolist()
    assert ours["sku"].iloc[0] == "0000000"
    assert summary["rows"] == len(products) == 3150 and summary["files"] == 3 and summary["workers"] == 2
    assert summary["needs_review"] == int(local["needs_review"].sum())
    assert 0 < summary["needs_review"] < len(products)  # both branches of the review flag are compared
    assert list(ours.columns) == ["sku", "prediction", "confidence", "needs_review",
                                  "label_1", "prob_1", "label_2", "prob_2", "label_3", "prob_3"]


@pytest.mark.slow
def test_cli_engine_ray_numbers_rows_when_the_file_has_no_ids(model_dir, products, ray_session, tmp_path, capsys):
    data = tmp_path / "no_ids.csv"
    products[["title", "description"]].to_csv(data, index=False)
    out = tmp_path / "ray.parquet"
    try:
        main(["predict", str(model_dir), "--data", str(data), "--out", str(out), "--engine", "ray", "--quiet"])
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert f"wrote 3,150 predictions to {out} with Ray" in printed.out

    local_predictions(model_dir, data, tmp_path / "local.parquet")
    ours = assert_same_file(out, tmp_path / "local.parquet")
    assert ours["row"].tolist() == list(range(1, 3151))


@pytest.mark.slow
def test_parquet_input_keeps_numbers_as_written(model_dir, products, ray_session, tmp_path):
    data = tmp_path / "typed.parquet"
    typed = products.head(1200).copy()
    typed["sku"] = range(15970, 15970 + len(typed))  # int64 in the file; "15970" in the output
    typed.to_parquet(data, index=False, row_group_size=250)

    summary = predict_with_ray(model_dir, data, tmp_path / "ray.parquet", top_k=5, target_precision=0.8,
                               review_out=tmp_path / "review.parquet", quiet=True, num_workers=1, batch_size=400)

    local_predictions(model_dir, data, tmp_path / "local.parquet", top_k=5, target_precision=0.8,
                      review_out=tmp_path / "local_review.parquet")
    ours = assert_same_file(tmp_path / "ray.parquet", tmp_path / "local.parquet")
    assert_same_file(tmp_path / "review.parquet", tmp_path / "local_review.parquet")
    assert ours["sku"].iloc[0] == "15970" and "prob_5" in ours.columns
    assert summary["needs_review"] == len(pd.read_parquet(tmp_path / "review.parquet"))


@pytest.mark.slow
def test_a_fault_deep_in_a_file_is_one_line_and_leaves_no_output(model_dir, products, ray_session, tmp_path):
    folder = tmp_path / "catalog"
    folder.mkdir()
    products.iloc[:500].to_csv(folder / "a.csv", index=False)
    # read_columns only looks at the head, so this surfaces while Ray reads
    text = products.iloc[500:1000].to_csv(index=False) + "X-1,one,two,three,four,five,six,seven\n"
    (folder / "b.csv").write_text(text, encoding="utf-8")
    out = tmp_path / "ray.parquet"

    with pytest.raises(CatalogError) as caught:
        predict_with_ray(model_dir, folder, out, quiet=True, num_workers=1, batch_size=200)

    message = str(caught.value)
    assert message.startswith(f"{folder / 'b.csv'}: malformed CSV at line 502: expected 6 fields, saw 8")
    assert "\n" not in message and type(caught.value) is CatalogError
    assert not out.exists() and not list(tmp_path.glob(".ray.parquet.*"))


# ---------------------------------------------------------------- no Ray


@pytest.fixture
def no_ray(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("Ray must not start for a user's mistake")

    monkeypatch.setattr(ray_predict, "start_ray", refuse)


def test_mistakes_are_one_line_errors_before_ray_starts(model_dir, tmp_path, no_ray):
    good = tmp_path / "good.csv"
    pd.DataFrame({"sku": ["1"], "title": ["red cotton shirt"], "description": [""]}).to_csv(good, index=False)
    empty_folder = tmp_path / "empty"
    empty_folder.mkdir()
    (empty_folder / "README.md").write_text("not a catalog")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    pd.read_csv(good).to_csv(mixed / "1.csv", index=False)
    pd.DataFrame({"sku": ["2"], "name": ["shoe"]}).to_csv(mixed / "2.csv", index=False)
    not_a_model = tmp_path / "not_a_model"
    not_a_model.mkdir()

    cases = [
        (ModelDirError, dict(model_dir=not_a_model, data=good), str(not_a_model)),
        (CatalogError, dict(data=tmp_path / "missing.csv"), "catalog file not found"),
        (CatalogError, dict(data=empty_folder), "holds no catalog files"),
        (ColumnError, dict(data=mixed), f"{mixed / '2.csv'} has no column 'title', 'description'"),
        (ConfigError, dict(out=tmp_path / "pred.xlsx"), "use a .parquet"),
        (ConfigError, dict(out=mixed / "pred.parquet", data=mixed), "outside the input folder"),
        (ConfigError, dict(out=good), "refusing to overwrite the input catalog"),
        (ConfigError, dict(top_k=0), "--top-k must be a whole number"),
        (ConfigError, dict(num_workers=0), "number of workers must be a whole number"),
        (ConfigError, dict(target_precision=1.5), "precision"),
    ]
    for error, changes, expected in cases:
        arguments = {**dict(model_dir=model_dir, data=good, out=tmp_path / "pred.parquet", quiet=True), **changes}
        with pytest.raises(error) as caught:
            predict_with_ray(**arguments)
        assert expected in str(caught.value), (changes, str(caught.value))
        assert "\n" not in str(caught.value)
        assert type(caught.value) is error
    assert not (tmp_path / "pred.parquet").exists()


def test_an_address_nothing_listens_on_fails_in_seconds():
    with socket.socket() as probe:  # a port that was free a moment ago, now closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=f"cannot reach the Ray cluster at 127.0.0.1:{port} "):
        start_ray(f"127.0.0.1:{port}", quiet=True)
    assert time.perf_counter() - started < 5


def test_a_folder_is_read_in_name_order_with_numbers_as_numbers(tmp_path):
    for name in ("part-10.csv", "part-2.csv.gz", "part-1.parquet", ".hidden.csv", "_SUCCESS", "notes.md", "b.tsv"):
        (tmp_path / name).write_text("x")
    (tmp_path / "sub.csv").mkdir()

    assert [p.name for p in input_files(tmp_path)] == ["b.tsv", "part-1.parquet", "part-2.csv.gz", "part-10.csv"]
    assert input_files(tmp_path / "part-10.csv") == [tmp_path / "part-10.csv"]
