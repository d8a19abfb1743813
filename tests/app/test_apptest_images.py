"""Photos in the web app: the one-product form hands the uploaded photo to a
model that reads photos, and a catalog upload's photo paths are read on the
server, from the model's image folder as seen from where the app runs.

The model is a tiny image-cnn (conftest `image_model_dir`): it reads the
photo only, so a right category shows it got the photo, and products without
one all get its single fallback.
"""

from __future__ import annotations

import io
import json
import os
import re

import pandas as pd
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from prodcat import Categorizer
from prodcat.app.launch import APP_SCRIPT, MODEL_ENV
from prodcat.app.uploads import predict_upload, read_head, upload_image_folder
from tiny_catalogs import tiny_image_frame

TIMEOUT = 60


@pytest.fixture(scope="module")
def image_clf(image_model_dir) -> Categorizer:
    return Categorizer.load(image_model_dir, quiet=True)


@pytest.fixture(scope="module")
def new_shop(tmp_path_factory):
    """Products the model never saw, in new.csv, with their photos in images/ beside it."""
    folder = tmp_path_factory.mktemp("new_shop")
    frame = tiny_image_frame(folder / "images", n_per_class=5, seed=9)
    frame.loc[0, "image"] = ""  # a product without a photo
    frame.to_csv(folder / "new.csv", index=False)
    return folder, frame


def start(monkeypatch, model_dir) -> AppTest:
    monkeypatch.setenv(MODEL_ENV, str(model_dir))
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def shown(markdown: str) -> str:
    """What a reader sees of Markdown whose only markup is backslash escapes."""
    return re.sub(r"\\(.)", r"\1", markdown)


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def captions_of_images(at: AppTest) -> list[str]:
    return [img.caption for element in at.get("image") for img in element.proto.imgs if img.caption]


def submit_photo(at: AppTest, name: str, data: bytes, title: str = "") -> AppTest:
    if title:
        at.text_input(key="field_title").input(title)
    at.file_uploader(key="product_image").set_value((name, data, "image/png"))
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


# --------------------------------------------------------------- one product
def test_a_photo_alone_is_categorized_by_a_model_that_reads_photos(monkeypatch, image_model_dir, image_clf,
                                                                   new_shop):
    folder, frame = new_shop
    row = frame.iloc[1]  # its photo shows its category; the form has no text at all
    photo = (folder / "images" / row["image"]).read_bytes()
    at = start(monkeypatch, image_model_dir)
    assert "Reads: the product photo" in " ".join(texts(at.sidebar.markdown))

    submit_photo(at, row["image"], photo)

    assert not at.warning
    # The same prediction as the facade given the photo's bytes, and the right category.
    expected = image_clf.predict_table([{"title": "", "description": "", "image": photo}])
    assert f"### {expected['prediction'][0]}" in texts(at.markdown)
    assert expected["prediction"][0] == row["category"]
    bars = [bar.proto.text for bar in at.get("progress")]
    assert bars[0] == f"{expected['label_1'][0]} — {expected['prob_1'][0]:.1%}"
    # Without the photo the model gives its fallback: the photo made the difference.
    fallback = image_clf.predict_table([{"title": "", "description": ""}])
    assert f"{fallback['prob_1'][0]:.1%}" != f"{expected['prob_1'][0]:.1%}"
    assert captions_of_images(at) == [f"{row['image']} (read by the model)"]


def test_a_model_of_photos_alone_asks_for_a_photo_and_names_a_file_that_is_no_image(monkeypatch, image_model_dir):
    at = start(monkeypatch, image_model_dir)
    # image-cnn ignores the text: the page offers no fields it would not read
    assert not at.text_input and not at.text_area
    assert "Reads: the product photo" in " ".join(texts(at.sidebar.markdown))
    at.button[0].click().run()
    assert texts(at.warning) == ["Upload a photo: this model reads nothing else."]

    submit_photo(at, "notes.png", b"these are notes, not a PNG")
    assert texts(at.warning) == ["Upload a photo: this model reads nothing else."]
    assert any("notes.png is not an image this app can read (not an image;" in e for e in texts(at.error))
    assert not at.get("progress")

    # A few KB that claim 25 megapixels: refused from the header, not decoded on every rerun.
    bomb = io.BytesIO()
    Image.new("1", (5000, 5000)).save(bomb, format="PNG")
    submit_photo(at, "bomb.png", bomb.getvalue())
    assert any(shown(e).startswith("bomb.png is not an image this app can read (5000x5000 pixels is over the "
                                   "limit of 16,000,000;") for e in texts(at.error)), texts(at.error)
    assert not at.get("progress")


def test_a_text_model_shows_the_photo_and_does_not_read_it(monkeypatch, model_dir, new_shop):
    folder, frame = new_shop
    name = frame["image"].iloc[1]
    at = start(monkeypatch, model_dir)
    assert "Reads: title, description" in " ".join(texts(at.sidebar.markdown))
    assert "photo" not in " ".join(texts(at.sidebar.markdown))

    submit_photo(at, name, (folder / "images" / name).read_bytes(), title="oxford collar cotton shirt")

    assert "### Apparel > Shirts" in texts(at.markdown)
    assert captions_of_images(at) == [f"{name} (shown only: this model reads the text fields)"]


def test_a_text_model_needs_text_even_with_a_photo(monkeypatch, model_dir, new_shop):
    folder, frame = new_shop
    name = frame["image"].iloc[1]
    at = start(monkeypatch, model_dir)
    submit_photo(at, name, (folder / "images" / name).read_bytes())
    assert any(w.endswith("Type at least one of: title, description.") for w in texts(at.warning))
    assert not at.get("progress")


# ------------------------------------------------------------------ catalog
def test_an_uploads_photos_are_read_from_the_servers_image_folder(image_clf, new_shop, tmp_path, monkeypatch):
    folder, frame = new_shop
    monkeypatch.chdir(folder)  # the app runs beside images/, the model's image_root
    assert upload_image_folder(image_clf) == folder / "images"
    upload = frame[["sku", "title", "image"]].to_csv(index=False).encode()

    result = predict_upload(image_clf, "new.csv", upload, tmp_path / "work")

    # What `prodcat predict` gives for the same catalog beside its photos.
    image_clf.predict_file(folder / "new.csv", tmp_path / "local.csv")
    local = read_head(tmp_path / "local.csv", 1_000)
    predicted = read_head(result.out_path, 1_000)
    pd.testing.assert_frame_equal(predicted, local)
    assert (predicted["prediction"].iloc[1:] == frame["category"].iloc[1:].to_numpy()).mean() >= 0.8
    assert (result.photos.column, result.photos.folder) == ("image", folder / "images")
    assert (result.photos.found, result.photos.not_found, result.photos.without) == (19, 0, 1)
    assert result.image_column_missing is None


def test_an_uploads_photo_key_first_seen_after_a_thousand_records_is_counted(image_clf, new_shop, tmp_path,
                                                                            monkeypatch):
    # JSON Lines exporters leave out empty keys: the column check sampled 1,000 records and
    # said the upload had no image column, while prediction read the photos.
    folder, frame = new_shop
    monkeypatch.chdir(folder)
    rows = [{"sku": f"x{i}", "title": "plain product"} for i in range(1_000)]
    rows += frame[["sku", "title", "image"]].to_dict("records")
    upload = "\n".join(json.dumps(row) for row in rows).encode()
    result = predict_upload(image_clf, "new.jsonl", upload, tmp_path / "work")
    assert result.image_column_missing is None
    assert (result.photos.found, result.photos.without) == (19, 1_001)


def test_an_upload_whose_photos_are_not_on_the_server_says_so(monkeypatch, image_model_dir, image_clf, new_shop,
                                                                tmp_path):
    folder, frame = new_shop
    monkeypatch.chdir(tmp_path)  # no images/ here
    upload = frame[["sku", "title", "image"]].to_csv(index=False).encode()
    result = predict_upload(image_clf, "new.csv", upload, tmp_path / "work")
    assert (result.photos.found, result.photos.not_found, result.photos.without) == (0, 19, 1)
    # Every product got the model's fallback: one prediction for all.
    assert read_head(result.out_path, 1_000)["prob_1"].nunique() == 1

    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=TIMEOUT)
    monkeypatch.setenv(MODEL_ENV, str(image_model_dir))
    at.session_state["catalog_result"] = result
    at.run()
    assert not at.exception
    catalog_page = at.tabs[1]
    assert any(f"None of the 19 photos named in image was found under {tmp_path / 'images'}"
               in shown(w.replace("**", "")) for w in texts(catalog_page.warning))


def test_uploading_a_catalog_in_the_app_names_the_photo_folder_and_counts_photos(monkeypatch, image_model_dir,
                                                                                  new_shop):
    folder, frame = new_shop
    monkeypatch.chdir(folder)
    at = start(monkeypatch, image_model_dir)
    catalog_page = at.tabs[1]
    [note] = [shown(i) for i in texts(catalog_page.info) if i.startswith("Photos:")]
    assert f"start from {folder / 'images'} (the model's" in note and "on this server" in note

    upload = frame[["sku", "title", "image"]].to_csv(index=False).encode()
    at.file_uploader(key="catalog_upload").set_value(("new.csv", upload, "text/csv"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]

    assert any("20 products from new.csv categorized" in s for s in texts(at.tabs[1].success))
    assert f"Photos: 19 of 20 products have theirs under {folder / 'images'}; 1 name none." in [
        shown(c) for c in texts(at.tabs[1].caption)]
    [table] = at.tabs[1].dataframe
    assert table.value["sku"].tolist() == frame["sku"].tolist()


def test_an_upload_without_the_image_column_is_predicted_without_photos(image_clf, new_shop, tmp_path, monkeypatch):
    folder, frame = new_shop
    monkeypatch.chdir(folder)
    upload = frame[["sku", "title"]].to_csv(index=False).encode()
    result = predict_upload(image_clf, "no photos.csv", upload, tmp_path / "work")
    assert result.photos is None and result.image_column_missing == "image"
    assert result.rows == 20


def test_a_text_model_reads_no_photos_from_an_upload(clf_text, new_shop, tmp_path):
    folder, frame = new_shop
    assert upload_image_folder(clf_text) is None
    result = predict_upload(clf_text, "new.csv", frame[["sku", "title", "image"]].to_csv(index=False).encode(),
                            tmp_path / "work")
    assert result.photos is None and result.image_column_missing is None


@pytest.fixture(scope="module")
def clf_text(model_dir) -> Categorizer:
    return Categorizer.load(model_dir, quiet=True)


def test_an_uploads_photo_outside_the_servers_image_folder_is_not_read(image_clf, new_shop, tmp_path, monkeypatch):
    # A browser upload must not make the server read its other files: "../" and absolute paths are not found.
    folder, frame = new_shop
    monkeypatch.chdir(folder)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    first = frame["image"].iloc[1]
    (outside / first).write_bytes((folder / "images" / first).read_bytes())
    climbing = os.path.relpath(outside / first, folder / "images")
    assert climbing.startswith("../") and (folder / "images" / climbing).is_file()
    photos = ["", climbing, str(outside / first), f"./{first}"]
    upload = frame[["sku", "title"]].head(4).assign(image=photos).to_csv(index=False).encode()
    result = predict_upload(image_clf, "new.csv", upload, tmp_path / "work")
    assert (result.photos.found, result.photos.not_found, result.photos.without) == (1, 2, 1)
    predicted = read_head(result.out_path, 10)
    # The two refused rows get the fallback of the product without a photo; the last one is read.
    assert predicted["prob_1"].iloc[1] == predicted["prob_1"].iloc[2] == predicted["prob_1"].iloc[0]
    assert predicted["prediction"].iloc[3] == frame["category"].iloc[1]


def test_a_photo_only_upload_to_a_model_of_photos_alone_is_predicted_without_asking_for_text(
        monkeypatch, image_model_dir, image_clf, new_shop, tmp_path):
    # The page asked which columns held title and description, which this model never reads,
    # and would not predict until one was chosen.
    folder, frame = new_shop
    monkeypatch.chdir(folder)
    at = start(monkeypatch, image_model_dir)
    [intro] = [m for m in texts(at.tabs[1].markdown) if m.startswith("Upload a catalog")]
    assert "title" not in intro and "**image**" in intro
    at.file_uploader(key="catalog_upload").set_value(("photos.csv", frame[["sku", "image"]].to_csv(index=False).encode(),
                                                      "text/csv"))
    at.run()
    assert not at.exception and not at.tabs[1].error
    # the warnings left are about the one product without a photo
    assert not any("text columns" in shown(w) for w in texts(at.tabs[1].warning))
    assert not [s for s in at.tabs[1].selectbox if s.label.startswith("Column for")]
    assert any("20 products from photos.csv categorized" in s for s in texts(at.tabs[1].success))
    [table] = at.tabs[1].dataframe
    image_clf.predict_file(folder / "new.csv", tmp_path / "local.csv")
    assert table.value["prediction"].tolist() == read_head(tmp_path / "local.csv", 1_000)["prediction"].tolist()


def test_a_photo_only_upload_to_a_text_and_photo_ensemble_is_predicted_from_its_photos(monkeypatch, image_shop,
                                                                                      new_shop, tmp_path):
    # Like the CLI, such a model decides a product without text from its photo; the page
    # instead waited for a column to be chosen for title or description.
    from tiny_catalogs import IMAGE_CNN

    model_dir = tmp_path / "both"
    Categorizer(model="ensemble", text_cols=["title", "description"], label_col="category", label_format="path",
                id_cols=["sku"], image_col="image", image_root="images",
                params={"members": ["tfidf-linear", "image-cnn"], "member_params": {"image-cnn": IMAGE_CNN}},
                quiet=True).fit(image_shop / "shop.csv").save(model_dir)
    folder, frame = new_shop
    monkeypatch.chdir(folder)
    at = start(monkeypatch, model_dir)
    at.file_uploader(key="catalog_upload").set_value(("photos.csv", frame[["sku", "image"]].to_csv(index=False).encode(),
                                                      "text/csv"))
    at.run()
    assert not at.exception and not at.tabs[1].error
    assert any("20 products from photos.csv categorized" in s for s in texts(at.tabs[1].success))
    assert any("has no column title, description; those fields are read as empty" in shown(w)
               for w in texts(at.tabs[1].warning))
    [table] = at.tabs[1].dataframe
    (tmp_path / "photos.csv").write_text(frame[["sku", "image"]].to_csv(index=False))
    Categorizer.load(model_dir, quiet=True).predict_file(tmp_path / "photos.csv", tmp_path / "local.csv",
                                                         image_root=str(folder / "images"))
    assert table.value["prediction"].tolist() == read_head(tmp_path / "local.csv", 1_000)["prediction"].tolist()


def test_an_upload_naming_the_photo_column_otherwise_has_its_photos_read(monkeypatch, image_model_dir, new_shop):
    # "Image" for image: every product was categorized without its photo, and the page
    # offered no way to name the column, as it does for the text and id columns.
    folder, frame = new_shop
    monkeypatch.chdir(folder)
    at = start(monkeypatch, image_model_dir)
    upload = frame[["sku", "title", "image"]].rename(columns={"image": "Image"}).to_csv(index=False).encode()
    at.file_uploader(key="catalog_upload").set_value(("new.csv", upload, "text/csv"))
    at.run()
    assert not at.exception and not any("has no column" in w for w in texts(at.tabs[1].warning))
    [said] = texts(at.tabs[1].info)[1:]
    assert "**Image** for image" in said
    assert f"Photos: 19 of 20 products have theirs under {folder / 'images'}; 1 name none." in [
        shown(c) for c in texts(at.tabs[1].caption)]

    # a name far from the model's is chosen by hand
    upload = frame[["sku", "title", "image"]].rename(columns={"image": "picture"}).to_csv(index=False).encode()
    at.file_uploader(key="catalog_upload").set_value(("other.csv", upload, "text/csv"))
    at.run()
    assert any("has no column **image**" in w for w in texts(at.tabs[1].warning))
    [choice] = [s for s in at.tabs[1].selectbox if s.label == "Column for the photos (image)"]
    choice.select("picture").run()
    assert not at.exception and not any("has no column" in w for w in texts(at.tabs[1].warning))
    assert f"Photos: 19 of 20 products have theirs under {folder / 'images'}; 1 name none." in [
        shown(c) for c in texts(at.tabs[1].caption)]
