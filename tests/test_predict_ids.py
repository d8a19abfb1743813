"""Id columns in predictions files: never two columns of one name, and a
missing id column said in one line, never a failure where ids are not needed."""

from __future__ import annotations

import pandas as pd
import pytest

from cli_runner import run, run_ok
from prodcat.categorizer import id_output_names
from prodcat.scale.ray_predict import CategorizerPredictor
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
