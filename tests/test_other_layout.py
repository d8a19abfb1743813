"""Predicting and scoring a file whose columns are named otherwise than the training file's.

`--text-cols` there names the file's own columns for the model's fields, in
order; `--id-cols` the ids to copy. A model that reads its fields apart
(bert's text pairs) must find each field under the name it was trained with.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest

from cli_runner import run, run_ok
from prodcat import Categorizer
from prodcat.catalog.fields import FieldMapping
from prodcat.errors import ConfigError
from prodcat.scale.ray_predict import CategorizerPredictor
from tiny_catalogs import tiny_frame

FAST = ["--param", "word_ngrams=[1, 1]", "--param", "char_ngrams=[3, 3]"]
# the same products, exported by another system
OTHER_NAMES = {"title": "name", "description": "details", "sku": "code"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("layout")
    frame = tiny_frame(n_per_class=8)
    data = folder / "train.csv"
    frame.to_csv(data, index=False)
    model_dir = folder / "model"
    run_ok("train", "--data", data, "--text-cols", "title,description", "--label-col", "leaf", "--id-cols", "sku",
           *FAST, "--out", model_dir, "-q")
    other = folder / "export.csv"
    frame.rename(columns=OTHER_NAMES).to_csv(other, index=False)
    return frame, data, other, model_dir


def recording_fields(clf: Categorizer) -> list[list[str]]:
    """Patch the fitted model to record the field names of each batch of products it is given."""
    seen: list[list[str]] = []
    model = clf._fitted
    predict = model.predict_proba

    def recorded(products):
        seen.append(sorted(products.fields))
        return predict(products)

    model.predict_proba = recorded
    return seen


def test_predict_reads_another_layout_with_text_cols_and_id_cols(trained, tmp_path, capsys):
    frame, data, other, model_dir = trained
    run_ok("predict", model_dir, "--data", data, "--out", tmp_path / "own.csv", "-q")
    code, _, err = run(capsys, "predict", model_dir, "--data", other, "--text-cols", "name,details",
                       "--id-cols", "code", "--out", tmp_path / "other.csv")
    assert code == 0, err
    own = pd.read_csv(tmp_path / "own.csv", dtype=str)
    renamed = pd.read_csv(tmp_path / "other.csv", dtype=str)
    assert renamed["code"].tolist() == frame["sku"].tolist()
    assert renamed.drop(columns="code").equals(own.drop(columns="sku"))
    assert "warning" not in err.lower()


def test_the_model_finds_its_fields_under_its_own_names(trained, tmp_path):
    frame, _, other, model_dir = trained
    clf = Categorizer.load(model_dir, quiet=True)
    seen = recording_fields(clf)
    clf.predict_file(other, tmp_path / "p.csv", text_cols=["name", "details"], id_cols=["code"])
    metrics = clf.evaluate(other, text_cols=["name", "details"], label_col="leaf", keep_seen=True)
    assert seen and all(names == ["description", "title"] for names in seen)
    assert metrics["n"] == len(frame) and metrics["accuracy"] > 0.9


def test_fewer_text_cols_than_the_model_reads_leave_its_last_fields_empty(trained, tmp_path, capsys):
    frame, _, other, model_dir = trained
    code, _, err = run(capsys, "predict", model_dir, "--data", other, "--text-cols", "name", "--id-cols", "code",
                       "--out", tmp_path / "p.csv")
    assert code == 0, err
    assert "no text column of" in err and "export.csv given" in err and "for the model's field(s) description; read as empty" in err
    assert len(pd.read_csv(tmp_path / "p.csv")) == len(frame)


@pytest.mark.parametrize("text_cols, message", [
    ("name,details,code", r"3 text columns given for .*export.csv, but model 'tfidf-linear' reads 2 text "
                          r"field\(s\) \(title, description\): name one column of this file for each, in that order"),
    ("name,name", r"the text columns given for .*export.csv name 'name' twice"),
])
def test_text_cols_the_model_cannot_read_are_refused_in_one_line(trained, tmp_path, capsys, text_cols, message):
    _, _, other, model_dir = trained
    code, _, err = run(capsys, "predict", model_dir, "--data", other, "--text-cols", text_cols,
                       "--out", tmp_path / "p.csv")
    assert code != 0
    assert len(err.strip().splitlines()) == 1
    assert re.search(message, err), err
    assert not (tmp_path / "p.csv").exists()
    code, _, err = run(capsys, "evaluate", model_dir, "--data", other, "--text-cols", text_cols,
                       "--out", tmp_path / "report")
    assert code != 0 and len(err.strip().splitlines()) == 1


def test_text_cols_the_file_lacks_are_named_as_given_not_as_the_model_s(trained, tmp_path, capsys):
    # The error called the columns given with --text-cols "the model's text columns".
    _, _, other, model_dir = trained
    code, _, err = run(capsys, "predict", model_dir, "--data", other, "--text-cols", "zzz",
                       "--out", tmp_path / "p.csv")
    assert code != 0
    assert f"{other} has none of the text columns given for it ('zzz'); columns are: " in err
    assert "model's text columns" not in err
    code, _, err = run(capsys, "predict", model_dir, "--data", other, "--text-cols", "zzz", "--engine", "ray",
                       "--out", tmp_path / "p.csv")
    assert code != 0
    assert f"{other} has none of the text columns given for it ('zzz'); columns are: " in err


def test_ray_actor_reads_the_other_layout_as_the_local_engine_does(trained):
    frame, _, _, model_dir = trained
    # an id column that shares a name with one of the model's fields must stay an id
    batch = frame.rename(columns={"title": "name", "description": "details"}).rename(columns={"sku": "title"})
    layout = Categorizer.load(model_dir, quiet=True).fields_.with_options(
        text_cols=("name", "details"), id_cols=("title",))
    actor = CategorizerPredictor(model_dir, id_cols=["title"], fields=layout.to_dict())
    seen = recording_fields(actor.categorizer)
    table = actor(batch[["title", "name", "details"]])
    local = Categorizer.load(model_dir, quiet=True).predict_table(frame)
    assert seen == [["description", "title"]]
    assert table["title"].tolist() == frame["sku"].tolist()
    assert table["prediction"].tolist() == local["prediction"].tolist()
    assert table["prob_1"].tolist() == local["prob_1"].tolist()


def test_an_image_only_model_refuses_text_cols():
    clf = Categorizer(quiet=True)
    clf.fields_ = FieldMapping(text_cols=(), image_col="image")
    clf.model = "image-cnn"
    with pytest.raises(ConfigError, match="reads no text, only photos"):
        clf._file_text_fields(FieldMapping(text_cols=("name",)), "x.csv")


def test_ray_engine_refuses_text_cols_the_model_cannot_read_before_starting_ray(trained, tmp_path, capsys):
    _, _, other, model_dir = trained
    code, _, err = run(capsys, "predict", model_dir, "--data", other, "--engine", "ray", "--text-cols", "name,name",
                       "--out", tmp_path / "p.csv")
    assert code != 0 and err.strip() == f"prodcat: error: the text columns given for {other} name 'name' twice"


def test_a_file_without_a_header_is_read_with_no_header_and_numbered_columns(trained, tmp_path, capsys):
    frame, data, other, model_dir = trained
    run_ok("predict", model_dir, "--data", data, "--out", tmp_path / "own.csv", "-q")
    bare = tmp_path / "bare.csv"
    frame[["sku", "title", "description"]].to_csv(bare, index=False, header=False)
    code, _, err = run(capsys, "predict", model_dir, "--data", bare, "--out", tmp_path / "bare_pred.csv",
                       "--no-header", "--text-cols", "1,2", "--id-cols", "0")
    assert code == 0, err
    own = pd.read_csv(tmp_path / "own.csv", dtype=str)
    read = pd.read_csv(tmp_path / "bare_pred.csv", dtype=str)
    assert read["0"].tolist() == frame["sku"].tolist()
    assert read.drop(columns="0").equals(own.drop(columns="sku"))
    # without --text-cols, the numbered columns are named in the error, with what to pass
    code, _, err = run(capsys, "predict", model_dir, "--data", bare, "--out", tmp_path / "x.csv", "--no-header")
    assert code != 0 and err.count("\n") == 1
    assert "columns are: 0, 1, 2; without a header the columns are numbered: pass --text-cols" in err


def test_a_model_trained_without_a_header_reads_a_file_with_one_given_header(tmp_path, capsys):
    frame = tiny_frame(n_per_class=8)
    bare = tmp_path / "train.csv"
    frame[["leaf", "title"]].to_csv(bare, index=False, header=False)
    config = tmp_path / "fields.toml"
    config.write_text('header = false\ncolumn_names = ["label", "text"]\ntext = ["text"]\nlabel = "label"\n')
    model_dir = tmp_path / "model"
    run_ok("train", "--data", bare, "--config", config, *FAST, "--out", model_dir, "-q")
    run_ok("predict", model_dir, "--data", bare, "--out", tmp_path / "own.csv", "-q")
    with_header = tmp_path / "new.csv"
    frame[["title"]].rename(columns={"title": "name"}).to_csv(with_header, index=False)
    # read as the training file, its header row would be a product and its column 'name' no text column
    code, _, err = run(capsys, "predict", model_dir, "--data", with_header, "--out", tmp_path / "x.csv")
    assert code != 0 and "one whose first row names its columns needs --header" in err
    code, _, err = run(capsys, "predict", model_dir, "--data", with_header, "--header", "--text-cols", "name",
                       "--out", tmp_path / "new_pred.csv")
    assert code == 0, err
    own = pd.read_csv(tmp_path / "own.csv", dtype=str)
    read = pd.read_csv(tmp_path / "new_pred.csv", dtype=str)
    assert len(read) == len(frame) and read.equals(own)
    # evaluate takes it too: a file with a header and its own label column
    labelled = tmp_path / "labelled.csv"
    frame[["title", "leaf"]].to_csv(labelled, index=False)
    code, out, err = run(capsys, "evaluate", model_dir, "--data", labelled, "--header", "--text-cols", "title",
                         "--label-col", "leaf", "--keep-seen", "--out", tmp_path / "report")
    assert code == 0, err
    assert f"n={len(frame)}" in out
