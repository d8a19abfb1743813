"""Id columns in predictions files: never two columns of one name, and a
missing id column said in one line, never a failure where ids are not needed."""

from __future__ import annotations

import pandas as pd
import pytest

from cli_runner import run, run_ok
from prodcat import Categorizer
from prodcat.categorizer import id_output_names
from prodcat.scale import ray_predict
from prodcat.scale.ray_predict import CategorizerPredictor, predict_with_ray
from tiny_catalogs import tiny_frame

FIELDS = ["--text-cols", "title,description", "--label-col", "leaf"]
# Small n-gram ranges: these tests are about columns, not accuracy.
FAST = ["--param", "word_ngrams=[1, 1]", "--param", "char_ngrams=[3, 3]"]
FORMATS = ("csv", "tsv", "jsonl", "parquet")


def read_predictions(path) -> pd.DataFrame:
    suffix = path.suffix
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix == ".jsonl":
        return pd.read_json(path, lines=True, dtype=False)
    return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False)


# --- an id column named like a column predict writes ------------------------
@pytest.fixture(scope="module")
def clashing(tmp_path_factory):
    """A catalog whose ids sit in columns `prediction` and `confidence`, and a model copying both."""
    folder = tmp_path_factory.mktemp("clash")
    frame = tiny_frame(n_per_class=6).rename(columns={"sku": "prediction"}).assign(confidence="hi")
    data = folder / "collide.csv"
    frame.to_csv(data, index=False)
    model_dir = folder / "model"
    run_ok("train", "--data", data, *FIELDS, *FAST, "--id-cols", "prediction,confidence", "--out", model_dir, "-q")
    return data, frame, model_dir


@pytest.mark.parametrize("suffix", FORMATS)
def test_clashing_id_columns_are_copied_as_id_colon_name_in_every_format(clashing, tmp_path, capsys, suffix):
    data, frame, model_dir = clashing
    out = tmp_path / f"p.{suffix}"
    code, _, err = run(capsys, "predict", model_dir, "--data", data, "--out", out,
                       "--review-out", tmp_path / f"review.{suffix}", "--target-precision", "1")
    assert code == 0, err
    assert "'prediction', 'confidence' copied as 'id:prediction', 'id:confidence'" in err
    predictions = read_predictions(out)
    assert list(predictions.columns) == [
        "id:prediction", "id:confidence", "prediction", "confidence", "needs_review",
        "label_1", "prob_1", "label_2", "prob_2", "label_3", "prob_3",
    ]
    assert predictions["id:prediction"].tolist() == frame["prediction"].tolist()
    assert set(predictions["id:confidence"]) == {"hi"}
    assert set(predictions["prediction"]) <= set(frame["leaf"])
    assert list(read_predictions(tmp_path / f"review.{suffix}").columns) == list(predictions.columns)


def test_the_ray_actor_renames_clashing_ids_as_the_local_engine_does(clashing):
    data, frame, model_dir = clashing
    batch = frame.head(3).astype(str)
    table = CategorizerPredictor(model_dir, id_cols=["prediction", "confidence"], top_k=2)(batch)
    assert list(table.columns[:3]) == ["id:prediction", "id:confidence", "prediction"]
    assert table["id:prediction"].tolist() == batch["prediction"].tolist()


def test_an_id_column_that_clashes_only_at_a_larger_top_k_is_renamed_only_then():
    written = ["prediction", "confidence", "needs_review", "label_1", "prob_1"]
    assert id_output_names(["label_2"], written) == {"label_2": "label_2"}
    assert id_output_names(["label_1"], written) == {"label_1": "id:label_1"}
    # a renamed column never lands on another id column, and each id is copied once
    assert id_output_names(["id:prediction", "prediction", "prediction"], written) == {
        "id:prediction": "id:prediction", "prediction": "id:id:prediction"}


class RayWouldStart(Exception):
    """Raised where the Ray job would start: its warnings have been said by then."""


def stop_before_ray(monkeypatch) -> None:
    def refuse():
        raise RayWouldStart()

    monkeypatch.setattr(ray_predict, "_import_ray", refuse)


def test_the_ray_engine_warns_of_renamed_ids_before_it_starts(clashing, tmp_path, monkeypatch, capsys):
    data, _, model_dir = clashing
    stop_before_ray(monkeypatch)
    with pytest.raises(RayWouldStart):
        predict_with_ray(model_dir, data, tmp_path / "p.parquet")
    assert "'prediction', 'confidence' copied as 'id:prediction', 'id:confidence'" in capsys.readouterr().err


# --- a catalog without the model's id column --------------------------------
@pytest.fixture(scope="module")
def sku_model(tmp_path_factory):
    """A model copying `sku`, and a labelled catalog without that column."""
    folder = tmp_path_factory.mktemp("nosku")
    frame = tiny_frame(n_per_class=6)
    model_dir = folder / "model"
    frame.to_csv(folder / "train.csv", index=False)
    run_ok("train", "--data", folder / "train.csv", *FIELDS, *FAST, "--id-cols", "sku", "--out", model_dir, "-q")
    nosku = folder / "nosku.csv"
    frame.drop(columns=["sku"]).to_csv(nosku, index=False)
    return model_dir, nosku, frame


def test_evaluate_needs_no_id_column(sku_model, tmp_path, capsys):
    model_dir, nosku, frame = sku_model
    code, out, err = run(capsys, "evaluate", model_dir, "--data", nosku, "--out", tmp_path / "report", "--keep-seen")
    assert code == 0, err
    assert f"n={len(frame)}" in out and "error" not in err
    clf = Categorizer.load(model_dir, quiet=True)
    assert clf.evaluate(frame.drop(columns=["sku"]), keep_seen=True)["n"] == len(frame)
    assert clf.predict(nosku) == clf.predict(frame)


def test_predict_says_in_one_line_that_it_numbers_the_rows_instead(sku_model, tmp_path, capsys, monkeypatch):
    model_dir, nosku, frame = sku_model
    out = tmp_path / "p.csv"
    code, _, err = run(capsys, "predict", model_dir, "--data", nosku, "--out", out)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: {nosku} has no id column 'sku'; its rows are numbered in a 'row' column instead"]
    assert read_predictions(out)["row"].tolist() == [str(i) for i in range(1, len(frame) + 1)]

    stop_before_ray(monkeypatch)
    with pytest.raises(RayWouldStart):
        predict_with_ray(model_dir, nosku, tmp_path / "p.parquet")
    assert warnings[0] in capsys.readouterr().err


def test_predict_names_the_id_columns_it_still_copies(tmp_path, capsys):
    frame = tiny_frame(n_per_class=6)
    frame.to_csv(tmp_path / "train.csv", index=False)
    model_dir = tmp_path / "model"
    run_ok("train", "--data", tmp_path / "train.csv", *FIELDS, *FAST, "--id-cols", "sku,category", "--out", model_dir,
           "-q")
    frame.drop(columns=["sku"]).to_csv(tmp_path / "new.csv", index=False)
    code, _, err = run(capsys, "predict", model_dir, "--data", tmp_path / "new.csv", "--out", tmp_path / "p.csv")
    assert code == 0, err
    assert "new.csv has no id column 'sku'; only 'category' is copied" in err
    assert read_predictions(tmp_path / "p.csv")["category"].tolist() == frame["category"].tolist()


def test_a_missing_id_column_names_the_one_probably_meant(sku_model, tmp_path, capsys, monkeypatch):
    # A file exporting the ids as "SKU" was numbered by row with no hint.
    model_dir, nosku, frame = sku_model
    upper = tmp_path / "upper.csv"
    frame.rename(columns={"sku": "SKU"}).to_csv(upper, index=False)
    code, _, err = run(capsys, "predict", model_dir, "--data", upper, "--out", tmp_path / "p.csv")
    assert code == 0, err
    expected = (f"warning: {upper} has no id column 'sku'; its rows are numbered in a 'row' column instead "
                "(did you mean 'SKU' for 'sku'? pass --id-cols)")
    assert expected in err.splitlines()
    stop_before_ray(monkeypatch)
    with pytest.raises(RayWouldStart):
        predict_with_ray(model_dir, upper, tmp_path / "p.parquet")
    assert expected in capsys.readouterr().err.splitlines()


# --- a predictions file for Excel -------------------------------------------
def test_predict_excel_writes_a_csv_that_european_excel_opens_with_accents_and_decimal_commas(sku_model, tmp_path,
                                                                                               capsys):
    # A UTF-8 CSV without a byte-order mark shows "KÃ¼che" in Excel, and German Excel puts a ","-parted
    # file whole into column A and reads 0.93 as text: there was no way to write one it opens
    model_dir, _, frame = sku_model
    data = tmp_path / "new.csv"
    frame.assign(sku=[f"Küche-{i}" for i in range(len(frame))]).to_csv(data, index=False)
    out, review = tmp_path / "p.csv", tmp_path / "review.csv"
    code, _, err = run(capsys, "predict", model_dir, "--data", data, "--out", out, "--review-out", review,
                       "--excel", ";", "--chunk-size", "5")
    assert code == 0, err
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfsku;prediction;confidence;") and raw.count(b"\xef\xbb\xbf") == 1
    table = pd.read_csv(out, sep=";", decimal=",", encoding="utf-8-sig")
    plain = Categorizer.load(model_dir, quiet=True).predict_table(frame, top_k=3)
    assert table["sku"].tolist() == [f"Küche-{i}" for i in range(len(frame))]
    assert table["prediction"].tolist() == plain["prediction"].tolist()
    assert table["confidence"].round(4).tolist() == plain["confidence"].round(4).tolist()
    assert review.read_bytes().startswith(b"\xef\xbb\xbfsku;prediction;")
    # The default stays a plain UTF-8 CSV, which every other reader takes as it is
    code, _, err = run(capsys, "predict", model_dir, "--data", data, "--out", out)
    assert code == 0 and out.read_bytes().startswith(b"sku,prediction,confidence,")
    for option, message in ((["--excel", "\t", "--out", out], "--excel takes the separator Excel expects: ',' or ';'"),
                            (["--excel", ";", "--out", tmp_path / "p.parquet"], "--excel writes .csv files for Excel"),
                            (["--excel", ";", "--out", out, "--engine", "ray"], "--excel needs the local engine")):
        code, _, err = run(capsys, "predict", model_dir, "--data", data, *option)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1
