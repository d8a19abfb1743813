"""Predicting and scoring with models that read photos: a model that reads
nothing else refuses a catalog it cannot see, and every photo-reading model
says how many products had no usable photo."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cli_runner import run
from prodcat import Categorizer
from prodcat.errors import ColumnError, ConfigError
from prodcat.scale import ray_predict
from tiny_catalogs import tiny_image_frame

# A tiny image-cnn: what it predicts matters less here than what it is told.
IMAGE_CNN = {"image_size": 16, "width": 0.25, "epochs": 1, "batch_size": 8, "num_threads": 1}
FIELDS = dict(text_cols=["title", "description"], label_col="leaf", id_cols=["sku"], image_col="image",
              image_root="photos")


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """shop/catalog.csv with its photos in shop/photos, and a copy whose first
    product has no photo, second a missing file, third a file that is no image."""
    folder = tmp_path_factory.mktemp("photos") / "shop"
    frame = tiny_image_frame(folder / "photos", n_per_class=6)
    frame.to_csv(folder / "catalog.csv", index=False)
    damaged = frame.copy()
    damaged.loc[0, "image"] = ""
    damaged.loc[1, "image"] = "gone.png"
    damaged.loc[2, "image"] = "junk.png"
    (folder / "photos" / "junk.png").write_bytes(b"not a png")
    damaged.to_csv(folder / "damaged.csv", index=False)
    frame.drop(columns=["image"]).to_csv(folder / "no_image_column.csv", index=False)
    return folder, frame


@pytest.fixture(scope="module")
def image_only(shop):
    folder, _ = shop
    return Categorizer(model="image-cnn", params=IMAGE_CNN, quiet=True, **FIELDS).fit(
        folder / "catalog.csv").save(folder.parent / "image_cnn")


@pytest.fixture(scope="module")
def text_and_image(shop):
    folder, _ = shop
    params = {"members": ["tfidf-linear", "image-cnn"], "weights": [0.5, 0.5],
              "member_params": {"image-cnn": IMAGE_CNN}}
    return Categorizer(model="ensemble", params=params, quiet=True, **FIELDS).fit(
        folder / "catalog.csv").save(folder.parent / "ensemble")


def one_error_line(code: int, out: str, err: str) -> str:
    assert code == 2 and out == "", err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("prodcat: error: "), err
    return lines[0]


# --- a model that reads only photos -----------------------------------------
def test_an_image_folder_that_is_not_there_is_an_error(image_only, shop, tmp_path, capsys):
    folder, _ = shop
    out = tmp_path / "p.csv"
    line = one_error_line(*run(capsys, "predict", image_only, "--data", folder / "catalog.csv",
                               "--image-root", tmp_path / "nowhere", "--out", out))
    assert f"image folder {tmp_path / 'nowhere'} not found" in line and "'image-cnn' reads nothing but photos" in line
    assert not out.exists()


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_a_catalog_without_the_image_column_is_an_error(image_only, shop, tmp_path, capsys, command):
    folder, _ = shop
    out = ["--out", tmp_path / ("p.csv" if command == "predict" else "report")]
    line = one_error_line(*run(capsys, command, image_only, "--data", folder / "no_image_column.csv", *out))
    assert "no_image_column.csv has no image column 'image'" in line
    line = one_error_line(*run(capsys, command, image_only, "--data", folder / "catalog.csv",
                               "--image-col", "nope", *out))
    assert "catalog.csv has no image column 'nope'" in line and "falls back to the text" not in line
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "report").exists()


def test_the_python_api_refuses_products_without_photos_too(image_only, shop):
    folder, frame = shop
    clf = Categorizer.load(image_only, quiet=True)
    with pytest.raises(ColumnError, match="no image column 'image'"):
        clf.predict(folder / "no_image_column.csv")
    with pytest.raises(ColumnError, match="reads nothing but photos"):
        clf.predict(frame.drop(columns=["image"]))


def test_the_python_api_warns_when_the_photos_it_is_given_cannot_be_found(image_only, shop, monkeypatch, capsys):
    # a model loaded where its image folder is not (another machine, another directory):
    # predict gave every product the one fallback prediction without a word
    folder, frame = shop
    clf = Categorizer.load(image_only)
    monkeypatch.chdir(folder.parent)  # the model's image root, "photos", is under shop/
    for predict in (clf.predict, clf.predict_proba, clf.predict_table):
        predict(frame.head(3))
        err = " ".join(capsys.readouterr().err.split())
        assert "warning: photos of the DataFrame: 3 of 3 images could not be used: 3 missing (first: photos" in err
        assert "the 3 product(s) without a usable photo are all given the model's one fallback prediction" in err
    monkeypatch.chdir(folder)
    clf.predict(frame.head(3))
    assert capsys.readouterr().err == ""


def test_the_ray_engine_refuses_the_same_before_it_starts(image_only, shop, tmp_path, monkeypatch):
    folder, _ = shop

    def refuse(*args, **kwargs):
        raise AssertionError("Ray must not start for a user's mistake")

    monkeypatch.setattr(ray_predict, "start_ray", refuse)
    with pytest.raises(ColumnError, match="no image column 'image', and model 'image-cnn' reads nothing but photos"):
        ray_predict.predict_with_ray(image_only, folder / "no_image_column.csv", tmp_path / "p.parquet")
    with pytest.raises(ConfigError, match="not found, and model 'image-cnn' reads nothing but photos"):
        ray_predict.predict_with_ray(image_only, folder / "catalog.csv", tmp_path / "p.parquet",
                                     image_root=str(tmp_path / "nowhere"))


def test_predict_and_evaluate_count_the_products_without_a_usable_photo(image_only, shop, tmp_path, capsys):
    folder, frame = shop
    damaged = folder / "damaged.csv"
    code, _, err = run(capsys, "predict", image_only, "--data", damaged, "--out", tmp_path / "p.csv", "--chunk-size", "2")
    assert code == 0, err
    counted = ("2 of 23 images could not be used: 1 missing, 1 unreadable (first: "
               f"{folder / 'photos' / 'gone.png'}: no such file); 1 product has no image")
    assert f"warning: photos of {damaged}: {counted}; the 3 product(s) without a usable photo are all given " \
        "the model's one fallback prediction" in " ".join(err.split())
    summary = Categorizer.load(image_only, quiet=True).predict_file(damaged, tmp_path / "p.parquet")
    assert {k: summary["photos"][k] for k in ("read", "absent", "missing", "unreadable")} == {
        "read": len(frame) - 3, "absent": 1, "missing": 1, "unreadable": 1}

    code, _, err = run(capsys, "evaluate", image_only, "--data", damaged, "--out", tmp_path / "report", "--keep-seen")
    assert code == 0, err
    assert counted in " ".join(err.split())
    images = json.loads((tmp_path / "report" / "metrics.json").read_text())["images"]
    assert images == {"with_image": len(frame) - 1, "without_image": 1, "usable": len(frame) - 3, "missing": 1,
                      "unreadable": 1, "too_large": 0}
    assert (f"{len(frame) - 1} of {len(frame)} products have a photo reference; {len(frame) - 3} of them could be "
            "used by the model (1 missing, 1 unreadable).") in (tmp_path / "report" / "report.md").read_text()


def test_photos_that_all_read_are_said_so(image_only, shop, tmp_path, capsys):
    folder, frame = shop
    code, _, err = run(capsys, "predict", image_only, "--data", folder / "catalog.csv", "--out", tmp_path / "p.csv")
    assert code == 0, err
    assert f"all {len(frame)} images could be read" in err and "warning" not in err


# --- a model with a text part to fall back on -------------------------------
def test_an_ensemble_with_a_text_part_warns_and_predicts_from_the_text(text_and_image, shop, tmp_path, capsys):
    folder, frame = shop
    code, _, err = run(capsys, "predict", text_and_image, "--data", folder / "catalog.csv",
                       "--image-root", tmp_path / "nowhere", "--out", tmp_path / "p.csv")
    assert code == 0, err
    err = " ".join(err.split())
    assert f"image folder {tmp_path / 'nowhere'} not found" in err
    assert (f"{len(frame)} of {len(frame)} images could not be used: {len(frame)} missing" in err
            and f"the {len(frame)} product(s) without a usable photo are decided by the model's text part" in err)
    predictions = pd.read_csv(tmp_path / "p.csv")
    assert predictions["prediction"].nunique() > 1

    code, _, err = run(capsys, "predict", text_and_image, "--data", folder / "catalog.csv", "--image-col", "nope",
                       "--out", tmp_path / "p.csv")
    assert code == 0, err
    assert "has no image column 'nope'; the model's image part falls back to the text" in " ".join(err.split())


def test_evaluate_names_a_file_with_brackets_as_written(image_only, shop, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # the warning on one line
    folder, frame = shop
    bracketed = folder / "damaged[new].csv"
    damaged = frame.copy()
    damaged.loc[1, "image"] = "gone[sale].png"
    damaged.to_csv(bracketed, index=False)
    code, _, err = run(capsys, "evaluate", image_only, "--data", bracketed, "--out", tmp_path / "report", "--keep-seen")
    assert code == 0, err
    assert (f"warning: photos of {bracketed}: 1 of {len(frame)} images could not be used: 1 missing (first: "
            f"{folder / 'photos' / 'gone[sale].png'}: no such file); the 1 product(s) without a usable photo") in err
