"""bench_predict_large's checks of an output file, and the big catalog it builds."""

import numpy as np
import pandas as pd
import pytest

from bench_predict_large import build_big_csv, check_output

IDS = np.array([1000003, 1000001, 1000002])


@pytest.fixture(params=["csv", "parquet"])
def write(request, tmp_path):
    def write(ids, predictions):
        path = tmp_path / f"out.{request.param}"
        frame = pd.DataFrame({"id": [str(i) for i in ids], "prediction": predictions, "confidence": 0.5})
        frame.to_csv(path, index=False) if request.param == "csv" else frame.to_parquet(path, index=False)
        return path
    return write


def test_an_output_with_every_id_in_input_order_passes(write):
    checked = check_output(write(IDS, ["a", "b", "c"]), IDS)
    assert checked["rows"] == 3 and checked["ids_in_input_order"] and checked["empty_predictions"] == 0


@pytest.mark.parametrize("ids, predictions, message", [
    (IDS[:2], ["a", "b"], "2 rows, expected 3"),
    (IDS[[0, 2, 1]], ["a", "b", "c"], "ids differ from the input's from row 2 (1000002 != 1000001)"),
    (IDS, ["a", "", "c"], "1 rows without a prediction"),
])
def test_a_wrong_output_fails_the_benchmark_naming_the_file(write, ids, predictions, message):
    path = write(ids, predictions)
    with pytest.raises(SystemExit) as failed:
        check_output(path, IDS)
    assert str(failed.value) == f"{path}: {message}"


def test_the_big_catalog_has_unique_ids_and_only_real_titles(tmp_path):
    styles = tmp_path / "styles.csv"
    pd.DataFrame({"id": ["1", "2", "3"], "productDisplayName": ["red shirt", "", "blue mug"],
                  "articleType": ["Shirts", "Shirts", "Mugs"]}).to_csv(styles, index=False)
    ids = build_big_csv(styles, 50, tmp_path / "BIG.csv", seed=3)
    big = pd.read_csv(tmp_path / "BIG.csv", dtype=str, keep_default_na=False)
    assert big["id"].tolist() == [str(i) for i in ids] and len(set(ids)) == 50
    assert set(big["productDisplayName"]) == {"red shirt", "blue mug"}
    assert (ids == build_big_csv(styles, 50, tmp_path / "again.csv", seed=3)).all()
