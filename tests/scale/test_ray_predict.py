"""Batch prediction on Ray gives exactly the local engine's output.

A local Ray starts once for the module (2 CPUs, loopback only); every Ray
test compares the Parquet file written through Ray with the one
`Categorizer.predict_file` writes for the same products, column by column and
row by row. The checks that must fail before Ray starts run without it.
"""

import os
import socket
import threading
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from prodcat import Categorizer
from prodcat.cli import main
from prodcat.console import Reporter
from prodcat.errors import CatalogError, ColumnError, ConfigError, EmptyCatalogError, ModelDirError
from prodcat.scale import ray_predict
from prodcat.scale.ray_predict import (
    IMAGE_REF_COLUMN, PHOTO_STATS_COLUMN, CategorizerPredictor, input_files, plan_columns, predict_with_ray, start_ray,
    take_photo_stats,
)
from cli_runner import run
from tiny_catalogs import tiny_image_frame

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
def test_folder_of_csv_files_gives_the_local_engines_predictions(model_dir, products, ray_session, tmp_path, capsys):
    folder = tmp_path / "catalog"
    folder.mkdir()
    # part-10 must come last although it sorts first as text
    for name, rows in (("part-1.csv", slice(0, 1000)), ("part-2.csv", slice(1000, 2100)),
                       ("part-10.csv", slice(2100, None))):
        products.iloc[rows].to_csv(folder / name, index=False)
    (folder / "_SUCCESS").write_text("")
    # empty parts, as Spark and Hadoop jobs leave them: skipped, with a warning
    (folder / "part-3.csv").write_text(",".join(products.columns) + "\n")
    (folder / "part-4.csv").write_text("")
    products.to_csv(tmp_path / "whole.csv", index=False)

    summary = predict_with_ray(model_dir, folder, tmp_path / "ray.parquet", quiet=False, num_workers=2, batch_size=300)
    assert (f"warning: skipped 2 of 5 files that hold no rows (first: {folder / 'part-3.csv'} has a header but no "
            "rows)") in capsys.readouterr().err

    local = local_predictions(model_dir, tmp_path / "whole.csv", tmp_path / "local.parquet")
    ours = assert_same_file(tmp_path / "ray.parquet", tmp_path / "local.parquet")
    assert ours["sku"].tolist() == products["sku"].tolist()
    assert ours["sku"].iloc[0] == "0000000"
    assert summary["rows"] == len(products) == 3150 and summary["files"] == 3 and summary["workers"] == 2
    assert summary["needs_review"] == int(local["needs_review"].sum())
    assert 0 < summary["needs_review"] < len(products)  # both branches of the review flag are compared
    # a path model's predictions end with its confident paths, from Ray as locally
    assert list(ours.columns) == ["sku", "prediction", "confidence", "needs_review",
                                  "label_1", "prob_1", "label_2", "prob_2", "label_3", "prob_3",
                                  "confident_path", "confident_level"]
    assert (ours["confident_level"] > 0).any()


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
def test_products_with_nothing_to_read_get_the_local_engines_warning(model_dir, products, ray_session, tmp_path,
                                                                     capsys):
    # Ray marked them needs_review, as the local engine does, but said nothing.
    part = products.iloc[:700].copy()
    part.loc[[450, 451, 620], ["title", "description"]] = ""
    data = tmp_path / "blanks.csv"
    part.to_csv(data, index=False)
    Categorizer.load(model_dir).predict_file(data, tmp_path / "local.parquet")
    local = [line for line in capsys.readouterr().err.splitlines() if "predicted from nothing" in line]
    assert local == [f"warning: 3 product(s) of {data} have no text in title, description (first: row 451): "
                     "predicted from nothing, each marked needs_review"]
    predict_with_ray(model_dir, data, tmp_path / "ray.parquet", quiet=False, num_workers=2, batch_size=200)
    assert local[0] in capsys.readouterr().err.splitlines()
    assert_same_file(tmp_path / "ray.parquet", tmp_path / "local.parquet")


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


@pytest.mark.slow
def test_each_file_of_a_folder_reads_the_text_columns_it_has(model_dir, products, ray_session, tmp_path, capsys):
    # The first file used to pick the text columns for all: part-2's
    # descriptions were dropped, its predictions not the local engine's.
    folder = tmp_path / "catalog"
    folder.mkdir()
    parts = {"part-1.csv": products.iloc[:300].drop(columns="description"),
             "part-2.csv": products.iloc[300:700],
             "part-3.csv": products.iloc[700:900].drop(columns="title")}
    for name, part in parts.items():
        part.to_csv(folder / name, index=False)

    predict_with_ray(model_dir, folder, tmp_path / "ray.parquet", quiet=False, num_workers=2, batch_size=250)
    assert ("warning: 2 of 3 files lack text columns, read as empty (first: "
            f"{folder / 'part-1.csv'} has no column description)") in capsys.readouterr().err.splitlines()

    local = pd.concat([local_predictions(model_dir, folder / name, tmp_path / f"{name}.parquet") for name in parts],
                      ignore_index=True)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "ray.parquet"), local, check_exact=False, rtol=0,
                                  atol=1e-6)


# ---------------------------------------------------------------- photos

# A tiny image-cnn: it reads the photo only, so its predictions show whether
# the workers found the photos (without them every product gets one fallback).
IMAGE_CNN = {"image_size": 16, "width": 0.25, "epochs": 4, "batch_size": 8, "lr": 1e-2, "dropout": 0.0,
             "num_threads": 1}


@pytest.fixture(scope="module")
def image_shop(tmp_path_factory) -> Path:
    """A training catalog whose photos lie in images/ beside it."""
    shop = tmp_path_factory.mktemp("ray_images") / "shop"
    tiny_image_frame(shop / "images").to_csv(shop / "shop.csv", index=False)
    return shop / "shop.csv"


def train_on_photos(catalog: Path, out: Path, model: str, params: dict) -> Path:
    Categorizer(model=model, text_cols=["title", "description"], label_col="category", label_format="path",
                id_cols=["sku"], image_col="image", image_root="images", params=params,
                quiet=True).fit(catalog).save(out)
    return out


@pytest.fixture(scope="module")
def image_model_dir(image_shop) -> Path:
    """An image-cnn of `image_shop` (saved image_root: "images", relative)."""
    return train_on_photos(image_shop, image_shop.parent.parent / "image_model", "image-cnn", IMAGE_CNN)


@pytest.fixture(scope="module")
def new_photos(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """A folder of two catalog files with their photos in its images/, which
    the model never saw; a few products have no photo or a missing one."""
    folder = tmp_path_factory.mktemp("ray_new") / "catalog"
    frame = tiny_image_frame(folder / "images", n_per_class=6, seed=5)
    frame["sku"] = [f"{i:04d}" for i in range(len(frame))]
    frame.loc[0, "image"] = ""  # no photo
    frame.loc[1, "image"] = "gone.png"  # a photo that is not there
    frame.iloc[:10].to_csv(folder / "part-1.csv", index=False)
    frame.iloc[10:].to_csv(folder / "part-2.csv", index=False)
    return folder, frame


@pytest.mark.slow
def test_an_image_model_reads_each_files_photos_on_the_workers(image_model_dir, new_photos, ray_session, tmp_path,
                                                               capsys):
    folder, frame = new_photos
    # The photo paths are relative to the files' folder, and the workers run
    # elsewhere: they only find the photos through the paths the driver resolved.
    summary = predict_with_ray(image_model_dir, folder, tmp_path / "ray.parquet", num_workers=2, batch_size=7)

    local = pd.concat([local_predictions(image_model_dir, folder / name, tmp_path / f"{name}.parquet")
                       for name in ("part-1.csv", "part-2.csv")], ignore_index=True)
    ours = pd.read_parquet(tmp_path / "ray.parquet")
    pd.testing.assert_frame_equal(ours, local, check_exact=False, rtol=0, atol=1e-6)
    assert summary["rows"] == len(frame) == 24 and summary["files"] == 2
    # The products without a usable photo are counted on the workers and
    # reported as the local engine reports them.
    gone = str(folder / "images" / "gone.png")
    assert summary["photos"] == {"read": 22, "absent": 1, "missing": 1, "unreadable": 0, "too_large": 0,
                                 "failures": [[gone, "no such file"]]}
    local_summary = Categorizer.load(image_model_dir, quiet=True).predict_file(folder / "part-1.csv",
                                                                               tmp_path / "one.parquet")
    assert local_summary["photos"]["failures"] == summary["photos"]["failures"]
    err = " ".join(capsys.readouterr().err.split())
    assert (f"warning: photos of {folder}: 1 of 23 images could not be used: 1 missing (first: {gone}: no such "
            "file); 1 product has no image; the 2 product(s) without a usable photo are all given the model's one "
            "fallback prediction") in err
    assert ours["sku"].tolist() == frame["sku"].tolist()
    # Real predictions from the photos, not the fallback every product would get without them.
    with_photo = ours.iloc[2:]
    assert (with_photo["prediction"] == frame["category"].iloc[2:].to_numpy()).mean() >= 0.8
    assert with_photo["prediction"].nunique() == 4
    # No photo and a missing file: both the model's fallback, the same row.
    assert ours.loc[0, "prob_1"] == ours.loc[1, "prob_1"] and ours.loc[0, "prediction"] == ours.loc[1, "prediction"]


@pytest.mark.slow
def test_an_exported_photo_model_predicts_on_ray_as_its_source(image_model_dir, new_photos, ray_session, tmp_path):
    # The workers run the ONNX graph on the photos they decode, and the products
    # without a usable photo get the fallback saved beside the graph.
    from prodcat.export import export_model

    folder, frame = new_photos
    exported = export_model(image_model_dir, tmp_path / "onnx", quiet=True)
    summary = predict_with_ray(exported, folder, tmp_path / "ray.parquet", quiet=True, num_workers=1, batch_size=7)
    source = pd.concat([local_predictions(image_model_dir, folder / name, tmp_path / f"{name}.parquet")
                        for name in ("part-1.csv", "part-2.csv")], ignore_index=True)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "ray.parquet"), source, check_exact=False, rtol=0,
                                  atol=1e-4)
    assert summary["photos"]["read"] == 22 and summary["photos"]["missing"] == 1


@pytest.mark.slow
def test_an_ensemble_with_an_image_member_gets_the_photos_on_ray(image_shop, new_photos, ray_session, tmp_path):
    params = {"members": ["tfidf-linear", "image-cnn"], "weights": [0.5, 0.5],
              "member_params": {"tfidf-linear": FAST, "image-cnn": IMAGE_CNN}}
    model = train_on_photos(image_shop, tmp_path / "ensemble", "ensemble", params)
    folder, frame = new_photos
    # Titles that say nothing, so the photos must decide; the photos stay in
    # their folder, named by image_root (a field option, as for predict_file).
    data = tmp_path / "vague.csv"
    frame.assign(title="item", description="").to_csv(data, index=False)
    photos = folder / "images"

    predict_with_ray(model, data, tmp_path / "ray.parquet", quiet=True, num_workers=1, image_root=photos)

    local = local_predictions(model, data, tmp_path / "local.parquet", image_root=photos)
    ours = assert_same_file(tmp_path / "ray.parquet", tmp_path / "local.parquet")
    assert (ours["prediction"].iloc[2:] == frame["category"].iloc[2:].to_numpy()).mean() >= 0.8
    # Without the photos the image member falls back and the vague text decides alone.
    text_alone = local_predictions(model, data, tmp_path / "text.parquet", image_col="no_such_column")
    assert text_alone["prediction"].nunique() == 1
    assert (local["prob_1"] - text_alone["prob_1"]).abs().max() > 0.1


@pytest.mark.slow
def test_cli_engine_ray_takes_image_col_and_image_root(image_model_dir, new_photos, ray_session, tmp_path, capsys):
    folder, frame = new_photos
    # The catalog moved away from its photos and names its column `photo`.
    data = tmp_path / "elsewhere" / "moved.csv"
    data.parent.mkdir()
    frame.rename(columns={"image": "photo"}).to_csv(data, index=False)
    out = tmp_path / "ray.parquet"
    try:
        main(["predict", str(image_model_dir), "--data", str(data), "--out", str(out), "--engine", "ray",
              "--image-col", "photo", "--image-root", str(folder / "images"), "--quiet"])
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "wrote 24 predictions" in printed.out

    local_predictions(image_model_dir, data, tmp_path / "local.parquet", image_col="photo",
                      image_root=folder / "images")
    ours = assert_same_file(out, tmp_path / "local.parquet")
    assert (ours["prediction"].iloc[2:] == frame["category"].iloc[2:].to_numpy()).mean() >= 0.8


def test_the_image_column_is_planned_and_every_file_must_hold_it(image_model_dir, new_photos, tmp_path, no_ray):
    folder, frame = new_photos
    mapping = Categorizer.load(image_model_dir, quiet=True).fields_
    plan = plan_columns(input_files(folder), mapping, mapping.read_options())
    assert plan.id_cols == ["sku"] and plan.text_cols == ["title", "description"] and plan.image_col == "image"

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    frame.iloc[:5].to_csv(mixed / "1.csv", index=False)
    frame.iloc[5:].drop(columns="image").to_csv(mixed / "2.csv", index=False)
    with pytest.raises(ColumnError) as caught:
        predict_with_ray(image_model_dir, mixed, tmp_path / "pred.parquet", quiet=True)
    assert str(caught.value).startswith(f"{mixed / '2.csv'} has no column 'image', which 1.csv has")


def test_the_actors_count_each_batchs_photos_for_the_driver(image_model_dir, new_photos, tmp_path):
    folder, frame = new_photos
    # What the read tasks hand over: absolute references, "" for no photo.
    refs = ["", str(folder / "images" / "gone.png")] + [str(folder / "images" / name) for name in frame["image"][2:6]]
    batch = frame.iloc[:6].drop(columns="image").assign(**{IMAGE_REF_COLUMN: refs})
    fields = Categorizer.load(image_model_dir, quiet=True).fields_.to_dict() | {
        "image_col": IMAGE_REF_COLUMN, "image_root": None}
    plain = CategorizerPredictor(image_model_dir, id_cols=["sku"], fields=fields)(batch)
    counted = CategorizerPredictor(image_model_dir, id_cols=["sku"], fields=fields, count_photos=True)

    first, second = counted(batch.iloc[:4]), counted(batch.iloc[4:])
    assert list(first.columns) == list(plain.columns) + [PHOTO_STATS_COLUMN]
    assert first[PHOTO_STATS_COLUMN].iloc[1:].tolist() == ["", "", ""]  # one batch, one count
    # However Ray cuts or joins the blocks, the driver sums each batch once.
    joined = pd.concat([first, second], ignore_index=True)
    photos = take_photo_stats(joined.iloc[3:].copy(), take_photo_stats(joined.iloc[:3]))
    assert (photos.read, photos.absent, photos.missing) == (4, 1, 1)
    assert photos.failures == [(refs[1], "no such file")]
    rest = joined.iloc[3:].copy()
    take_photo_stats(rest)
    pd.testing.assert_frame_equal(rest.reset_index(drop=True), plain.iloc[3:].reset_index(drop=True))
    assert take_photo_stats(plain) is None and PHOTO_STATS_COLUMN not in plain.columns


def test_read_tasks_hand_over_the_local_engines_image_references_made_absolute(tmp_path, monkeypatch):
    from prodcat.catalog.fields import FieldMapping
    from prodcat.catalog.load import iter_catalog

    shop = tmp_path / "shop"
    (shop / "photos").mkdir(parents=True)
    pd.DataFrame({"id": ["7", "8", "9", "10"], "title": ["a", "b", "c", "d"],
                  "image_id": ["1163", "", "https://cdn.example/x.jpg", "/abs/z"]}).to_csv(shop / "c.csv", index=False)
    mapping = FieldMapping(text_cols=("title",), id_cols=("id",), image_col="image_id", image_root="photos",
                           image_template="{}.jpg")
    monkeypatch.chdir(tmp_path)  # the driver runs from elsewhere, and names the file by a relative path
    folder = ray_predict.image_folder(mapping, Path("shop/c.csv"))
    assert folder == str(shop / "photos")

    batch = pd.DataFrame({"path": [str(shop / "c.csv")], "image_dir": [folder]})
    [chunk] = ray_predict._read_files(batch, columns=["id", "title", "image_id"], keep=["id", "title"],
                                      read_options=mapping.read_options(), chunk_size=100, image_col="image_id",
                                      image_template=mapping.image_template)

    assert list(chunk.columns) == ["id", "title", IMAGE_REF_COLUMN]
    refs = chunk[IMAGE_REF_COLUMN].tolist()
    assert refs == [str(shop / "photos" / "1163.jpg"), "", "https://cdn.example/x.jpg", "/abs/z.jpg"]
    # The local engine's references name the same files, relative to this directory.
    [local] = iter_catalog(Path("shop/c.csv"), mapping)
    assert local.products.images == ["shop/photos/1163.jpg", None, "https://cdn.example/x.jpg", "/abs/z.jpg"]
    assert refs[0] == os.path.abspath(local.products.images[0])


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
    header_only = tmp_path / "header_only.csv"
    header_only.write_text("sku,title,description\n")
    all_empty = tmp_path / "all_empty"
    all_empty.mkdir()
    (all_empty / "part-1.csv").write_text("sku,title,description\n")
    (all_empty / "part-2.csv").write_text("")
    folder_out = tmp_path / "folder.parquet"
    folder_out.mkdir()
    repeated = tmp_path / "repeated"
    repeated.mkdir()
    pd.read_csv(good).to_csv(repeated / "1.csv", index=False)
    (repeated / "2.csv").write_text("sku,title,description,description\n2,blue shoe,a,b\n")

    cases = [
        (ModelDirError, dict(model_dir=not_a_model, data=good), str(not_a_model)),
        (CatalogError, dict(data=tmp_path / "missing.csv"), "catalog file not found"),
        (CatalogError, dict(data=empty_folder), "holds no catalog files"),
        # found before Ray starts, not 13 s into it
        (EmptyCatalogError, dict(data=header_only), f"{header_only} has a header but no rows"),
        (EmptyCatalogError, dict(data=all_empty), f"every catalog file in {all_empty} is empty or holds a header"),
        (ColumnError, dict(data=mixed), f"{mixed / '2.csv'} has none of the model's text columns ('title', "
                                        "'description'); columns are: name, sku"),
        # found by the read tasks once Ray had started
        (ColumnError, dict(data=repeated),
         f"{repeated / '2.csv'}: column 'description' appears 2 times in the header"),
        (ConfigError, dict(out=tmp_path / "pred.xlsx"), "use a .parquet"),
        (ConfigError, dict(out=mixed / "pred.parquet", data=mixed), "outside the input folder"),
        (ConfigError, dict(out=good), "refusing to overwrite the input catalog"),
        (ConfigError, dict(out=folder_out), f"cannot write predictions to {folder_out}: it is a directory"),
        # the review file is named as such, not as "predictions" (so a user knows which option is wrong)
        (ConfigError, dict(review_out=folder_out), f"cannot write the rows to review to {folder_out}: it is a directory"),
        (ConfigError, dict(review_out=tmp_path / "review.xlsx"), "cannot write the rows to review to"),
        (ConfigError, dict(top_k=0), "--top-k must be a whole number"),
        (ConfigError, dict(num_workers=0), "number of workers must be a whole number"),
        (ConfigError, dict(target_precision=1.5), "precision"),
        # each a TypeError from pathlib or from a comparison
        (ConfigError, dict(data=None), "the catalog (a file or a folder of files) must be a path"),
        (ConfigError, dict(out=None), "the predictions file must be a path (a str or pathlib.Path), got None"),
        (ConfigError, dict(model_dir=None), "the model directory must be a path"),
        (ConfigError, dict(target_precision="0.9"), "target precision must be above 0 and at most 1, got '0.9'"),
    ]
    for error, changes, expected in cases:
        arguments = {**dict(model_dir=model_dir, data=good, out=tmp_path / "pred.parquet", quiet=True), **changes}
        with pytest.raises(error) as caught:
            predict_with_ray(**arguments)
        assert expected in str(caught.value), (changes, str(caught.value))
        assert "\n" not in str(caught.value)
        assert type(caught.value) is error
    assert not (tmp_path / "pred.parquet").exists()



def test_ids_a_later_file_holds_but_the_first_lacks_are_refused_not_dropped(model_dir, tmp_path, no_ray):
    # The first file lacks sku: rows were numbered instead, and the later
    # files' skus were dropped from the output with a warning about the first.
    folder = tmp_path / "catalog"
    folder.mkdir()
    pd.DataFrame({"title": ["red cotton shirt"], "description": [""]}).to_csv(folder / "part-1.csv", index=False)
    pd.DataFrame({"sku": ["007"], "title": ["blue shoe"], "description": [""]}).to_csv(folder / "part-2.csv",
                                                                                       index=False)
    with pytest.raises(ColumnError) as caught:
        predict_with_ray(model_dir, folder, tmp_path / "pred.parquet", quiet=True)
    assert str(caught.value) == (f"{folder / 'part-2.csv'} has column 'sku', which part-1.csv lacks; every file of "
                                 "a folder must hold the same id and image columns (--id-cols picks the ids)")


def test_an_address_nothing_listens_on_fails_in_seconds():
    with socket.socket() as probe:  # a port that was free a moment ago, now closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=f"cannot reach the Ray cluster at 127.0.0.1:{port} "):
        start_ray(f"127.0.0.1:{port}", quiet=True)
    assert time.perf_counter() - started < 5



@contextmanager
def one_answer_server(answer: bytes):
    """A server on a loopback port that reads what a client sends and answers `answer` once."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        with suppress(OSError):
            connection, _ = listener.accept()
            with connection:
                connection.recv(1024)
                connection.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join(timeout=5)


def test_an_address_where_another_server_listens_fails_in_seconds():
    # The dashboard's port instead of the GCS's: Ray would retry for minutes, warning all along.
    with one_answer_server(b"HTTP/1.1 400 Bad Request\r\n\r\n") as port:
        started = time.perf_counter()
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port} answers, but not as Ray"):
            start_ray(f"127.0.0.1:{port}", quiet=True)
    assert time.perf_counter() - started < 5


def test_an_address_that_answers_http2_as_ray_does_is_left_to_ray():
    from prodcat.scale.ray_predict import _check_reachable

    with one_answer_server(bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])) as port:  # an empty SETTINGS frame, as gRPC answers
        _check_reachable(f"ray://127.0.0.1:{port}")

def test_a_folder_is_read_in_name_order_with_numbers_as_numbers(tmp_path):
    for name in ("part-10.csv", "part-2.csv.gz", "part-1.parquet", ".hidden.csv", "_SUCCESS", "notes.md", "b.tsv"):
        (tmp_path / name).write_text("x")
    (tmp_path / "sub.csv").mkdir()

    assert [p.name for p in input_files(tmp_path)] == ["b.tsv", "part-1.parquet", "part-2.csv.gz", "part-10.csv"]
    assert input_files(tmp_path / "part-10.csv") == [tmp_path / "part-10.csv"]




def test_names_equal_as_numbers_keep_one_order_however_the_folder_lists_them(tmp_path, monkeypatch):
    # part-01 and part-1 compare equal as numbers: their order was the file
    # system's listing order, which may differ between two runs.
    for name in ("part-1.csv", "part-01.csv", "part-001.csv"):
        (tmp_path / name).write_text("x")
    listed = sorted(tmp_path.iterdir())
    orders = set()
    for listing in (listed, listed[::-1]):
        monkeypatch.setattr(Path, "iterdir", lambda self, listing=listing: iter(listing))
        orders.add(tuple(p.name for p in input_files(tmp_path)))
    assert orders == {("part-001.csv", "part-01.csv", "part-1.csv")}


def test_a_folder_reads_json_lines_parts_and_names_what_it_skips(tmp_path, capsys):
    # Spark's write.json names its JSON Lines parts .json, which the local
    # engine reads; a subfolder (a partition, a later export) and a file of
    # another suffix were skipped without a word, their products lost.
    for name in ("part-00000-c000.json", "part-00001-c000.json.gz", "notes.txt", "_SUCCESS", ".part-0.crc"):
        (tmp_path / name).write_text("x")
    (tmp_path / "2024-06").mkdir()

    files = input_files(tmp_path, say=Reporter(quiet=False))
    assert [p.name for p in files] == ["part-00000-c000.json", "part-00001-c000.json.gz"]
    assert capsys.readouterr().err.splitlines() == [
        f"warning: skipped 2 entries of {tmp_path} that are not catalog files: 2024-06/, notes.txt (subfolders "
        "are not read)"]

    partitioned = tmp_path / "2024-06"
    (partitioned / "day=01").mkdir()
    with pytest.raises(CatalogError, match="subfolders such as day=01/ are not read: predict each on its own"):
        input_files(partitioned)


def test_a_model_of_photos_alone_plans_its_image_column_instead_of_text(tmp_path):
    from prodcat.catalog.fields import FieldMapping

    data = tmp_path / "photos.csv"
    pd.DataFrame({"sku": ["a"], "image": ["a.png"]}).to_csv(data, index=False)
    mapping = FieldMapping(id_cols=("sku",), image_col="image")
    plan = plan_columns([data], mapping, mapping.read_options())
    assert plan.text_cols == [] and plan.image_col == "image"
    with pytest.raises(ColumnError, match="has no image column 'photo', and the model reads only photos"):
        plan_columns([data], FieldMapping(image_col="photo"), mapping.read_options())


def test_cli_chunk_size_sets_the_ray_batch_size(model_dir, tmp_path, monkeypatch, capsys):
    # A worker holds a batch's features at a time: --chunk-size is the CLI's only
    # handle on that memory, and the Ray engine used to drop it for 10,000 rows.
    asked = {}

    def record(model, data, out, **options):
        asked.update(options)
        return {"rows": 0, "rows_per_second": 0, "needs_review": 0}

    monkeypatch.setattr(ray_predict, "predict_with_ray", record)
    code, _, err = run(capsys, "predict", model_dir, "--data", DEMO, "--out", tmp_path / "p.parquet",
                       "--engine", "ray", "--chunk-size", "500")
    assert code == 0, err
    assert asked["batch_size"] == 500

    asked.clear()
    code, _, err = run(capsys, "predict", model_dir, "--data", DEMO, "--out", tmp_path / "p.parquet", "--engine", "ray")
    assert code == 0, err
    assert "batch_size" not in asked  # the engine's own default


def test_one_file_comes_in_blocks_of_about_a_batch_so_every_worker_gets_a_share(model_dir, products, ray_session,
                                                                                tmp_path):
    # Ray Data joined everything a read task yielded into blocks of up to
    # 128 MiB, and a block goes to one actor whole: a file of 200,000 products
    # was a single block, predicted by one worker while the others idled, and
    # written only once all of it was done.
    import ray

    data = tmp_path / "one.csv"
    products.to_csv(data, index=False)
    mapping = Categorizer.load(model_dir, quiet=True).fields_
    plan = plan_columns([data], mapping, mapping.read_options())
    saved = ray_predict._configure_ray_data(ray, True, batch_size=300)
    try:
        blocks = ray_predict._read_dataset(ray, [data], plan, mapping, None, batch_size=300).materialize()
    finally:
        ray_predict._restore_ray_data(ray, saved)
    sizes = [meta.num_rows for meta in blocks.iter_internal_ref_bundles() for meta in meta.metadata]
    assert sum(sizes) == len(products)
    assert len(sizes) >= len(products) // 1000, sizes  # 3,150 rows in batches of 300: not one block
    assert max(sizes) <= 1200, sizes


def test_a_quoted_pattern_points_to_the_folder(tmp_path):
    # `--data 'parts/*.csv'` reached the engine unexpanded and was only "not found"
    parts = tmp_path / "parts"
    parts.mkdir()
    (parts / "part-1.csv").write_text("sku,title\n1,red shirt\n")
    with pytest.raises(CatalogError) as caught:
        input_files(parts / "*.csv")
    assert str(caught.value) == (f"catalog file not found: {parts / '*.csv'} (patterns are not expanded: give the "
                                 f"folder, {parts}, and its catalog files are read in name order)")
