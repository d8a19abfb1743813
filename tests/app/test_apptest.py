"""The web app without a browser: Streamlit's AppTest on a tiny model, and the
upload and report functions the app calls.

AppTest cannot upload files, so the catalog path is tested twice: the
function an upload goes through (`predict_upload`) on real bytes, and the page
showing that function's result placed in the session state.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from prodcat import Categorizer
from prodcat.app.launch import APP_SCRIPT, MODEL_ENV
from prodcat.app.model_report import curve_charts, read_report, training_curves
from prodcat.app import uploads
from prodcat.app.uploads import ENCODINGS, check_labels_upload, predict_upload, read_head, upload_format
from prodcat.catalog.fields import FieldMapping
from prodcat.errors import CatalogError, ColumnError, ConfigError
from tiny_catalogs import FORMATS, tiny_frame

TIMEOUT = 30


@pytest.fixture(scope="module")
def clf(model_dir) -> Categorizer:
    return Categorizer.load(model_dir, quiet=True)


@pytest.fixture
def new_products() -> pd.DataFrame:
    """Unlabelled products the model never saw, with ids that look like numbers."""
    frame = tiny_frame(n_per_class=5, seed=7)
    frame["sku"] = [f"{i:04d}" for i in range(len(frame))]
    return frame


def run_app(monkeypatch, model_dir: Path | str | None, **state) -> AppTest:
    if model_dir is None:
        monkeypatch.delenv(MODEL_ENV, raising=False)
    else:
        monkeypatch.setenv(MODEL_ENV, str(model_dir))
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=TIMEOUT)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def shown(markdown: str) -> str:
    """What a reader sees of Markdown whose only markup is backslash escapes."""
    return re.sub(r"\\(.)", r"\1", markdown)


# ------------------------------------------------------------ the app shell
def test_a_model_retrained_into_the_same_folder_is_the_one_that_predicts(monkeypatch, model_copy):
    # Cached by its folder alone, the first model kept predicting after a retrain,
    # while the Model page already showed the new one's report.
    at = run_app(monkeypatch, model_copy)
    assert "(path labels)" in at.sidebar.markdown[0].value
    Categorizer(text_cols=["title"], label_col="leaf", quiet=True).fit(tiny_frame()).save(model_copy)
    at = run_app(monkeypatch, model_copy)
    assert "(single labels)" in at.sidebar.markdown[0].value


def test_app_without_a_model_says_how_to_start_it(monkeypatch):
    at = run_app(monkeypatch, None)
    assert any("prodcat app MODEL_DIR" in e for e in texts(at.error))
    assert not at.tabs


def test_app_on_a_folder_that_is_not_a_model_shows_one_error_line(monkeypatch, tmp_path):
    at = run_app(monkeypatch, tmp_path)
    [error] = texts(at.error)
    assert str(tmp_path) in shown(error) and "\n" not in error
    assert not at.tabs


def test_app_shows_three_pages_and_the_model_in_the_sidebar(monkeypatch, model_dir):
    at = run_app(monkeypatch, model_dir)
    assert [tab.label for tab in at.tabs] == ["Categorize a product", "Categorize a catalog", "Check labels", "Model"]
    sidebar = " ".join(texts(at.sidebar.markdown))
    assert "tfidf-linear" in sidebar and "4 categories" in sidebar and "title, description" in sidebar
    # One input per text field of the model, labelled by its column name.
    assert [w.label for w in at.text_input] == ["title"]
    assert [w.label for w in at.text_area] == ["description"]


# --------------------------------------------------------------- one product
def test_a_typed_product_opens_no_photo_outside_the_image_folder(monkeypatch, model_dir):
    # A text field the model's image column also reads (a column that is both) was taken as a
    # photo path from the visitor, unconfined, as the server took it.
    asked = []
    predict_table = Categorizer.predict_table
    monkeypatch.setattr(Categorizer, "predict_table",
                        lambda self, *args, **kwargs: asked.append(kwargs) or predict_table(self, *args, **kwargs))
    at = run_app(monkeypatch, model_dir)
    at.text_input(key="field_title").input("../../etc/passwd")
    at.button[0].click().run()
    assert not at.exception
    assert asked and all(kwargs.get("confine_photos") is True for kwargs in asked)


def test_typing_a_product_shows_its_category_bars_and_review_flag(monkeypatch, model_dir, clf):
    at = run_app(monkeypatch, model_dir)
    at.text_input(key="field_title").input("oxford collar cotton shirt")
    at.button[0].click().run()
    assert not at.exception
    assert "### Apparel > Shirts" in texts(at.markdown)
    bars = [bar.proto.text for bar in at.get("progress")]
    assert len(bars) == 3 and bars[0].startswith("Apparel > Shirts — ")
    # The flag agrees with the facade for the same product.
    expected = clf.predict_table([{"title": "oxford collar cotton shirt", "description": ""}])
    flag = texts(at.warning) if expected["needs_review"][0] else texts(at.success)
    assert any(("Needs review" if expected["needs_review"][0] else "Confident") in line for line in flag)


def test_labels_and_column_names_show_as_written_not_as_markdown(monkeypatch, tmp_path):
    # $...$ is LaTeX, *...* emphasis, :red[...] colour, "1." a list in Streamlit's Markdown
    frame = tiny_frame().rename(columns={"title": "title_*new*"})
    frame["leaf"] = frame["leaf"].map({"Shirts": "$5 *sale* shirts", "Shoes": ":red[shoes]", "Kitchen": "1. kitchen"}
                                      ).fillna(frame["leaf"])
    model_dir = tmp_path / "odd"
    Categorizer(text_cols=["title_*new*"], label_col="leaf", quiet=True).fit(frame).save(model_dir)
    at = run_app(monkeypatch, model_dir)
    assert r"Reads: title\_\*new\*" in " ".join(texts(at.sidebar.markdown))
    at.text_input(key="field_title_*new*").input("oxford collar cotton shirt")
    at.button[0].click().run()
    assert r"### \$5 \*sale\* shirts" in texts(at.markdown)
    bars = [bar.proto.text for bar in at.get("progress")]
    assert len(bars) == 3
    at.sidebar.number_input(key="top_k").set_value(4).run()  # every class, whichever the model ranks next
    bars = [bar.proto.text for bar in at.get("progress")]
    assert {bar.split(" — ")[0] for bar in bars} == {r"\$5 \*sale\* shirts", r"\:red\[shoes\]", r"1\. kitchen", "Bedding"}


def test_top_k_setting_changes_the_number_of_bars(monkeypatch, model_dir):
    at = run_app(monkeypatch, model_dir)
    at.text_area(key="field_description").input("a warm linen duvet and quilt")
    at.button[0].click().run()
    assert len(at.get("progress")) == 3
    at.sidebar.number_input(key="top_k").set_value(2).run()
    assert "### Home > Bedding" in texts(at.markdown)
    assert len(at.get("progress")) == 2


def test_a_multi_label_model_shows_every_label_it_decides(monkeypatch, tmp_path):
    model_dir = tmp_path / "multi"
    Categorizer(**FORMATS["multi"], quiet=True).fit(tiny_frame()).save(model_dir)
    at = run_app(monkeypatch, model_dir)
    at.text_input(key="field_title").input("oxford collar cotton shirt red")
    at.button[0].click().run()
    [headline] = [m for m in texts(at.markdown) if m.startswith("### ")]
    assert sorted(headline[4:].split(" · ")) == ["apparel", "red", "shirts"]
    tiles = {m.label for m in at.metric}
    assert {"Micro-F1", "Samples F1", "Hamming loss"} <= tiles
    # Each label is given at its own threshold, so the bars say it: a label ranked
    # lower may be given while one above it is not.
    clf = Categorizer.load(model_dir, quiet=True)
    thresholds = dict(zip(clf.classes_, clf.thresholds_))
    bars = [bar.proto.text for bar in at.get("progress")]
    assert len(bars) == 3
    for bar in bars:
        label = bar.split(" — ")[0]
        assert bar.endswith(f"(given at {thresholds[label]:.1%} or more)"), bar
    assert any("multi-label model's mistakes are per label" in i for i in texts(at.info))


def test_a_multi_label_models_macro_f1_curve_says_it_decides_at_one_half(monkeypatch, tmp_path):
    # The report decides at tuned per-label cuts and the curve at 0.5: side by side they disagreed unexplained.
    model_dir = tmp_path / "multi"
    Categorizer(**FORMATS["multi"], quiet=True).fit(tiny_frame()).save(model_dir)
    write_scalars(model_dir / "tensorboard", "val/macro_f1", [(10, 0.4), (20, 0.6)])
    write_scalars(model_dir / "tensorboard", "val/loss", [(10, 0.9), (20, 0.7)])
    at = run_app(monkeypatch, model_dir)
    assert [c for c in texts(at.caption) if "probability 0.5" in c] == [
        "Each label decided at probability 0.5, as early stopping judges epochs; the scores above decide at "
        "per-label cuts tuned on validation, so they differ."]


def test_an_empty_product_asks_for_text(monkeypatch, model_dir):
    at = run_app(monkeypatch, model_dir)
    at.button[0].click().run()
    assert any("Type at least one of: title, description" in w for w in texts(at.warning))
    assert not at.get("progress")


# ------------------------------------------------------------------ catalog
def test_predict_upload_streams_a_csv_to_predictions_with_ids_and_a_capped_preview(clf, new_products, tmp_path):
    data = new_products[["sku", "title", "description"]].to_csv(index=False).encode()
    result = predict_upload(clf, "new products.csv", data, tmp_path / "work", preview_rows=7, chunk_size=6)

    assert result.rows == len(new_products) == 20
    full = read_head(result.out_path, 1_000)
    assert full["sku"].tolist() == new_products["sku"].tolist()  # input order, "0007" stays text
    expected = clf.predict_table(new_products)
    assert full["prediction"].tolist() == expected["prediction"].tolist()
    assert full["prediction"].tolist() == new_products["category"].tolist()
    assert len(result.preview) == 7 and result.preview["sku"].tolist() == full["sku"].tolist()[:7]
    assert result.preview["needs_review"].dtype == bool and result.preview["prob_1"].between(0, 1).all()
    assert result.needs_review == int(expected["needs_review"].sum())
    assert len(read_head(result.review_path, 1_000)) == result.needs_review
    assert result.download_name() == "new products.predictions.csv"
    assert result.download_name(review_only=True) == "new products.needs_review.csv"


def test_predict_upload_reads_parquet_and_writes_parquet(clf, new_products, tmp_path):
    source = tmp_path / "catalog.parquet"
    new_products[["sku", "title"]].to_parquet(source, index=False)  # no description: read as empty
    with open(source, "rb") as handle:
        result = predict_upload(clf, "catalog.parquet", handle, tmp_path / "work", out_format="parquet")
    assert result.out_path.suffix == ".parquet" and result.rows == 20
    written = pd.read_parquet(result.out_path)
    assert written["sku"].tolist() == new_products["sku"].tolist()
    assert written["prediction"].tolist() == new_products["category"].tolist()
    assert result.preview.equals(written)


@pytest.mark.parametrize(
    ("name", "data", "error", "words"),
    [
        ("products.xlsx", b"PK\x03\x04", CatalogError, "products.xlsx is not a catalog file"),
        ("latin.csv", "title,description\ncafé crème,mug\n".encode("latin-1"), CatalogError,
         "latin.csv is not UTF-8 text"),
        ("columns.csv", b"name,price\nshirt,3\n", ColumnError,
         "columns.csv has none of the model's text columns ('title', 'description')"),
        ("spreadsheet.csv", b"PK\x03\x04 a zip in disguise", CatalogError, "spreadsheet.csv is not a text CSV file"),
    ],
)
def test_bad_uploads_are_one_line_naming_the_uploaded_file(clf, tmp_path, name, data, error, words):
    work = tmp_path / "work"
    with pytest.raises(error) as caught:
        predict_upload(clf, name, data, work)
    message = str(caught.value)
    assert message.startswith(words), message
    assert str(work) not in message and "\n" not in message


def test_a_windows_1252_upload_is_read_with_the_encoding_the_page_offers(clf, tmp_path):
    data = "sku,title\n1,Café crème mug – 30 cl\n".encode("cp1252")
    with pytest.raises(CatalogError) as caught:
        predict_upload(clf, "excel.csv", data, tmp_path / "work")
    # The app has no --encoding option: the hint names the choice on the page.
    assert "choose Windows-1252 (Excel on Windows) as its encoding above" in str(caught.value)
    assert "--encoding" not in str(caught.value)
    assert "cp1252" in ENCODINGS
    result = predict_upload(clf, "excel.csv", data, tmp_path / "work", encoding="cp1252")
    assert result.rows == 1
    assert clf.predict(["Café crème mug – 30 cl"])[0] == result.preview["prediction"].iloc[0]


def test_a_utf8_upload_read_as_the_utf16_the_page_offers_is_one_line(clf, tmp_path):
    # Python's utf-16 decoder raises a bare UnicodeError (no byte-order mark), not a UnicodeDecodeError.
    assert "utf-16" in ENCODINGS
    with pytest.raises(CatalogError) as caught:
        predict_upload(clf, "shop.csv", b"sku,title\n1,oxford shirt\n", tmp_path / "work", encoding="utf-16")
    assert str(caught.value) == "shop.csv is not valid utf-16 text; choose its real encoding above"


def test_upload_format_accepts_compressed_catalogs_only():
    assert upload_format("Products.CSV") == "csv"
    assert upload_format("products.csv.gz") == "csv"
    assert upload_format("products.parquet") == "parquet"
    with pytest.raises(CatalogError, match="notes.txt.gz is not a catalog file"):
        upload_format("notes.txt.gz")


def test_catalog_page_shows_predictions_filters_review_and_offers_downloads(monkeypatch, model_dir, clf, tmp_path):
    frame = tiny_frame(n_per_class=5, seed=11)[["sku", "title", "description"]]
    # An empty text is the least confident kind of product: some rows need review.
    frame.loc[:3, "title"] = "blue 1"
    frame.loc[:3, "description"] = ""
    result = predict_upload(clf, "mixed.csv", frame.to_csv(index=False).encode(), tmp_path)
    assert 0 < result.needs_review < result.rows

    at = run_app(monkeypatch, model_dir, catalog_result=result)
    assert any(f"{result.rows} products from mixed.csv categorized" in s for s in texts(at.tabs[1].success))
    catalog_page = at.tabs[1]
    [table] = catalog_page.dataframe
    assert table.value["sku"].tolist() == frame["sku"].tolist()
    assert {"prediction", "confidence", "needs_review", "label_1", "prob_1"} <= set(table.value.columns)
    labels = [b.label for b in catalog_page.get("download_button")]
    assert labels == [f"Download all {result.rows} predictions (CSV)",
                      f"Download the {result.needs_review} needing review (CSV)"]

    at.checkbox(key="only_review").check().run()
    [table] = at.tabs[1].dataframe
    assert len(table.value) == result.needs_review and table.value["needs_review"].all()


def test_the_catalog_page_reads_an_upload_in_the_encoding_chosen(monkeypatch, model_dir):
    data = "sku,title\n1,Café crème mug – 30 cl\n2,Oxford shirt\n".encode("cp1252")
    at = run_app(monkeypatch, model_dir)
    at.file_uploader(key="catalog_upload").set_value(("excel.csv", data, "text/csv"))
    at.run()
    [error] = texts(at.tabs[1].error)
    assert "choose Windows-1252 (Excel on Windows) as its encoding above" in error
    at.selectbox(key="encoding").select("cp1252").run()
    assert not at.exception and not at.tabs[1].error
    assert any("2 products from excel.csv categorized" in s for s in texts(at.tabs[1].success))


# ------------------------------------------------------------------- labels
def mislabeled_catalog() -> tuple[bytes, list[str]]:
    """The tiny catalog with three products filed under another leaf, as CSV bytes, and their skus."""
    frame = tiny_frame(n_per_class=30, seed=5)
    wrong = {"Apparel > Shirts": "Home > Kitchen", "Home > Kitchen": "Apparel > Shoes",
             "Apparel > Shoes": "Home > Bedding", "Home > Bedding": "Apparel > Shirts"}
    rows = [3, 40, 77]
    frame.loc[rows, "category"] = [wrong[c] for c in frame.loc[rows, "category"]]
    return frame.to_csv(index=False).encode(), frame.loc[rows, "sku"].tolist()


def test_check_labels_upload_flags_products_filed_under_another_class(clf, tmp_path):
    data, mislabeled = mislabeled_catalog()
    result = check_labels_upload(clf, "shop export.csv", data, tmp_path / "work", preview_rows=2)
    assert result.rows == 120 and result.folds == 5 and result.not_judged == 0
    everything = pd.read_csv(result.out_path, dtype=str)
    assert 1 <= result.issues == len(everything) and set(everything["sku"]) <= set(mislabeled)
    assert len(result.flagged) == min(2, result.issues)
    assert result.download_name() == "shop export.label_issues.csv"


def test_check_labels_upload_names_the_uploaded_file_and_refuses_a_photo_model(clf, image_model_dir, tmp_path):
    unlabelled = tiny_frame(n_per_class=5).drop(columns=["category"]).to_csv(index=False).encode()
    with pytest.raises(ColumnError) as caught:
        check_labels_upload(clf, "no labels.csv", unlabelled, tmp_path / "work")
    assert "no labels.csv" in str(caught.value) and str(tmp_path) not in str(caught.value)
    with pytest.raises(ConfigError, match="this model reads photos"):
        check_labels_upload(Categorizer.load(image_model_dir, quiet=True), "shop.csv", unlabelled, tmp_path / "w")


def test_the_labels_page_checks_an_upload_and_offers_the_flagged_products(monkeypatch, model_dir):
    data, mislabeled = mislabeled_catalog()
    at = run_app(monkeypatch, model_dir)
    at.file_uploader(key="labels_upload").set_value(("shop.csv", data, "text/csv"))
    at.run()
    assert not at.tabs[2].success  # the judges train on a click
    at.button(key="check_labels").click().run()
    assert not at.exception and not at.tabs[2].error
    [success] = texts(at.tabs[2].success)
    assert re.search(r"\*\*\d of 120 products\*\* from shop\.csv are probably mislabeled \(5 models", success), success
    [table] = at.tabs[2].dataframe
    assert set(table.value["sku"]) <= set(mislabeled)
    assert table.value["label_quality"].is_monotonic_increasing
    assert [b.label for b in at.tabs[2].get("download_button")] == [
        f"Download the {len(table.value)} flagged products (CSV)"]



def test_the_labels_page_checks_a_partly_categorized_upload_and_names_the_rows_left_out(monkeypatch, model_dir):
    # A shop export holds products not yet categorized: the whole upload was refused for them.
    frame = pd.read_csv(io.BytesIO(mislabeled_catalog()[0]), dtype=str, keep_default_na=False)
    frame.loc[[5, 50], "category"] = ""
    at = run_app(monkeypatch, model_dir)
    at.file_uploader(key="labels_upload").set_value(("shop.csv", frame.to_csv(index=False).encode(), "text/csv"))
    at.run()
    at.button(key="check_labels").click().run()
    page = at.tabs[2]
    assert not at.exception and not page.error
    [success] = texts(page.success)
    assert "of 118 products** from shop.csv are probably mislabeled" in success, success
    assert [shown(w) for w in texts(page.warning)] == [
        "shop.csv: 2 row(s) with an empty label are left out: products not yet categorized (row 6, 51)"]

# -------------------------------------------------------------------- model
def test_model_page_shows_metrics_per_class_f1_and_figures(monkeypatch, model_dir):
    metrics = json.loads((model_dir / "report" / "metrics.json").read_text())
    at = run_app(monkeypatch, model_dir)
    tiles = {m.label: m.value for m in at.metric}
    assert tiles["Test products"] == str(metrics["n"])
    assert tiles["Accuracy"] == f"{metrics['accuracy']:.3f}" and tiles["Macro-F1"] == f"{metrics['macro_f1']:.3f}"
    frames = [d.value for d in at.dataframe]
    splits = next(f for f in frames if "split" in f.columns)
    assert splits["split"].tolist() == ["train", "validation", "test"]
    per_class = next(f for f in frames if "class" in f.columns)
    assert sorted(per_class["class"]) == sorted(metrics["per_class"])
    assert per_class["f1"].is_monotonic_increasing
    assert len(at.get("image")) == 3  # per-class F1, levels, precision/coverage (no confusions to draw)
    assert any("No confusion pairs" in i for i in texts(at.info))
    assert any("No training curves" in i for i in texts(at.info))


@pytest.fixture
def model_copy(model_dir, tmp_path) -> Path:
    # The report and tensorboard/ are not part of the model's checksums, so a
    # copy can be given other ones and still load.
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    return copy


def test_model_page_lists_confusion_pairs_from_the_report(monkeypatch, model_copy):
    metrics_file = model_copy / "report" / "metrics.json"
    metrics = json.loads(metrics_file.read_text())
    metrics["confusions"] = [{"true": "Home > Kitchen", "predicted": "Home > Bedding", "count": 2, "rate": 0.25}]
    metrics_file.write_text(json.dumps(metrics))
    at = run_app(monkeypatch, model_copy)
    pairs = next(d.value for d in at.dataframe if "predicted" in d.value.columns)
    assert pairs.to_dict("records") == metrics["confusions"]


def test_model_page_shows_an_ensembles_parts_and_how_it_compares_with_the_best(monkeypatch, model_copy):
    # report.md had "By part" and the comparison with the best member; the app's report page had neither.
    metrics_file = model_copy / "report" / "metrics.json"
    metrics = json.loads(metrics_file.read_text())
    metrics["components"] = {"tfidf-linear": {"accuracy": 0.9, "macro_f1": 0.85, "weighted_f1": 0.88, "n": 40},
                             "image-cnn": {"accuracy": 0.7, "macro_f1": 0.6, "weighted_f1": 0.65, "n": 40},
                             "combined": {"accuracy": 0.95, "macro_f1": 0.93, "weighted_f1": 0.94, "n": 40}}
    metrics["versus_best_part"] = {"best_part": "tfidf-linear", "n": 40, "changed": 4, "fixed": 3, "broken": 1,
                                   "headroom": 5, "macro_f1_gain": 0.08, "gain_interval": [0.01, 0.15],
                                   "resamples": 1000}
    metrics_file.write_text(json.dumps(metrics))
    at = run_app(monkeypatch, model_copy)
    parts = next(d.value for d in at.dataframe if "part" in d.value.columns)
    assert parts["part"].tolist() == ["tfidf-linear", "image-cnn", "combined"]
    assert parts["macro_f1"].tolist() == [0.85, 0.6, 0.93]
    assert any("Against its best part alone (tfidf-linear)" in c and "better than its best part" in c
               for c in texts(at.caption))


def test_model_page_says_so_when_the_report_is_absent(monkeypatch, model_copy):
    shutil.rmtree(model_copy / "report")
    report = read_report(model_copy)
    assert report.metrics is None and report.figures == {}
    assert "metrics.json is absent" in report.problem
    at = run_app(monkeypatch, model_copy)
    assert any("metrics.json is absent" in i for i in texts(at.info))
    assert not at.metric
    # The split metrics in the manifest are still there to show.
    assert any("split" in d.value.columns for d in at.dataframe)


def write_scalars(run_dir: Path, tag: str, points: list[tuple[int, float]]) -> None:
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(run_dir))
    for step, value in points:
        summary = Summary(value=[Summary.Value(tag=tag, simple_value=value)])
        writer.add_event(Event(wall_time=time.time(), step=step, summary=summary))
    writer.close()


def test_training_curves_come_from_tensorboard_event_files(monkeypatch, model_copy):
    logdir = model_copy / "tensorboard"
    write_scalars(logdir, "train/loss", [(10, 2.0), (20, 1.0), (20, 0.8), (30, 0.5)])
    write_scalars(logdir, "val/loss", [(20, 1.2), (30, 0.9)])
    write_scalars(logdir, "train/accuracy", [(10, 0.5), (30, 0.75)])
    write_scalars(logdir / "resumed", "train/loss", [(40, 0.4)])

    curves = training_curves(model_copy)
    assert sorted(curves) == ["train/accuracy", "train/loss", "val/loss"]
    loss = curves["train/loss"]
    assert list(loss.columns) == ["run", "resumed"]
    # A step logged twice keeps its last value.
    assert loss["run"].dropna().to_dict() == {10: 2.0, 20: pytest.approx(0.8), 30: 0.5}
    assert loss["resumed"].dropna().to_dict() == {40: pytest.approx(0.4)}

    charts = curve_charts(curves)
    assert list(charts) == ["accuracy", "loss"]
    assert sorted(set(charts["loss"]["series"])) == ["train (resumed)", "train (run)", "val"]
    val = charts["loss"][charts["loss"]["series"] == "val"]
    assert val["step"].tolist() == [20, 30] and val["value"].tolist() == pytest.approx([1.2, 0.9])

    at = run_app(monkeypatch, model_copy)
    assert len(at.get("vega_lite_chart")) == 2
    assert {"**accuracy**", "**loss**"} <= set(texts(at.markdown))
    assert not any("No training curves" in i for i in texts(at.info))


def test_the_model_page_follows_no_symbolic_link_out_of_the_model_directory(model_copy, tmp_path):
    # The report and tensorboard/ are not checksummed: a hand-edited model directory could
    # link them to any file of the machine running the app, which the page would show.
    outside = tmp_path / "outside"
    shutil.copytree(model_copy / "report", outside / "report")
    write_scalars(outside / "logs", "train/loss", [(1, 1.0)])
    (model_copy / "report" / "confusion_matrix.png").unlink()
    (model_copy / "report" / "confusion_matrix.png").symlink_to(outside / "report" / "confusion_matrix.png")
    (model_copy / "report" / "metrics.json").unlink()
    (model_copy / "report" / "metrics.json").symlink_to(outside / "report" / "metrics.json")
    report = read_report(model_copy)
    assert report.metrics is None and "metrics.json is (or lies in) a symbolic link" in report.problem
    assert "confusion_matrix" not in report.figures
    shutil.rmtree(model_copy / "report")
    (model_copy / "report").symlink_to(outside / "report")
    assert read_report(model_copy).figures == {} and read_report(model_copy).metrics is None

    (model_copy / "tensorboard").symlink_to(outside / "logs")
    assert training_curves(model_copy) == {}
    (model_copy / "tensorboard").unlink()
    write_scalars(model_copy / "tensorboard" / "own", "train/loss", [(1, 2.0)])
    (model_copy / "tensorboard" / "linked").symlink_to(outside / "logs")
    linked_file = next((outside / "logs").glob("events.out.tfevents.*"))
    (model_copy / "tensorboard" / "own" / "events.out.tfevents.0.linked").symlink_to(linked_file)
    (model_copy / "tensorboard" / "other").mkdir()
    (model_copy / "tensorboard" / "other" / linked_file.name).symlink_to(linked_file)
    write_scalars(model_copy / "tensorboard" / "kept", "train/loss", [(1, 3.0)])
    assert list(training_curves(model_copy)["train/loss"].columns) == ["kept"]


def test_an_upload_with_a_name_too_long_for_the_file_system_is_predicted(clf, new_products, tmp_path):
    # Saved under its own 300-character name, it ended in "File name too long".
    data = new_products[["sku", "title", "description"]].to_csv(index=False).encode()
    result = predict_upload(clf, "x" * 300 + ".csv", data, tmp_path / "work")
    assert result.rows == len(new_products)
    assert read_head(result.out_path, 1_000)["sku"].tolist() == new_products["sku"].tolist()


# ------------------------------------------------- an upload naming its columns otherwise
def renamed_upload(new_products: pd.DataFrame, columns: dict[str, str]) -> bytes:
    return new_products[["sku", "title", "description"]].rename(columns=columns).to_csv(index=False).encode()


def column_choice(at: AppTest, field: str):
    [choice] = [s for s in at.tabs[1].selectbox if s.label == f"Column for {field}"]
    return choice


def test_predict_upload_reads_the_columns_chosen_for_the_model_fields(clf, new_products, tmp_path):
    data = renamed_upload(new_products, {"title": "name", "description": "details"})
    assert uploads.upload_columns(clf, "export.csv", data, tmp_path / "work") == ["sku", "name", "details"]
    result = predict_upload(clf, "export.csv", data, tmp_path / "work", text_cols=["name", "details"])
    full = read_head(result.out_path, 1_000)
    assert full["prediction"].tolist() == clf.predict_table(new_products)["prediction"].tolist()


def test_the_catalog_page_asks_which_columns_hold_the_model_fields(monkeypatch, model_dir, new_products, clf):
    # Such an upload was refused: "has none of the model's text columns".
    at = run_app(monkeypatch, model_dir)
    at.file_uploader(key="catalog_upload").set_value(
        ("export.csv", renamed_upload(new_products, {"title": "name", "description": "details"}), "text/csv"))
    at.run()
    [warning] = texts(at.tabs[1].warning)
    assert "has none of the model's text columns" in shown(warning)
    assert not at.tabs[1].success and not at.tabs[1].error
    column_choice(at, "title").select("name").run()
    column_choice(at, "description").select("details").run()
    assert not at.exception and not at.tabs[1].error
    assert not at.tabs[1].warning  # the warning to choose went with the choice
    assert any(f"{len(new_products)} products from export.csv categorized" in s for s in texts(at.tabs[1].success))
    [table] = at.tabs[1].dataframe
    assert table.value["prediction"].tolist() == clf.predict_table(new_products)["prediction"].tolist()


def test_a_choice_that_skips_a_field_before_a_chosen_one_is_refused(monkeypatch, model_dir, new_products):
    at = run_app(monkeypatch, model_dir)
    at.file_uploader(key="catalog_upload").set_value(
        ("export.csv", renamed_upload(new_products, {"title": "name", "description": "details"}), "text/csv"))
    at.run()
    column_choice(at, "description").select("details").run()
    assert texts(at.tabs[1].error) == ["choose a column for title as well, or none for the fields after it"]
    assert not at.tabs[1].success


def test_an_upload_with_some_of_the_model_columns_is_predicted_at_once(monkeypatch, model_dir, new_products):
    at = run_app(monkeypatch, model_dir)
    data = new_products[["sku", "title"]].to_csv(index=False).encode()
    at.file_uploader(key="catalog_upload").set_value(("titles.csv", data, "text/csv"))
    at.run()
    assert any(f"{len(new_products)} products from titles.csv categorized" in s for s in texts(at.tabs[1].success))
    assert column_choice(at, "title").value == "title" and column_choice(at, "description").value == "(none)"


def test_a_header_less_model_reads_an_upload_with_a_header_when_the_page_says_so(monkeypatch, tmp_path):
    # the model reads uploads without a header, as its training file: the header row was a product,
    # and a file with a header had no way in
    frame = tiny_frame(n_per_class=6)
    bare = tmp_path / "train.csv"
    frame[["leaf", "title"]].to_csv(bare, index=False, header=False)
    model_dir = tmp_path / "model"
    Categorizer(fields=FieldMapping(text_cols=("text",), label_cols=("label",), header=False,
                                    column_names=("label", "text")), quiet=True).fit(bare).save(model_dir)
    at = run_app(monkeypatch, model_dir)
    assert at.checkbox(key="header").value is False
    upload = frame[["title"]].rename(columns={"title": "text"}).to_csv(index=False).encode()
    at.file_uploader(key="catalog_upload").set_value(("new.csv", upload, "text/csv"))
    at.run()
    assert not at.exception
    at.checkbox(key="header").check().run()
    assert not at.exception and not at.tabs[1].error
    assert any(f"{len(frame)} products from new.csv categorized" in s for s in texts(at.tabs[1].success))
    [table] = at.tabs[1].dataframe
    expected = Categorizer.load(model_dir).predict_table(frame["title"].tolist())
    assert table.value["prediction"].tolist() == expected["prediction"].tolist()


# ------------------------------------------------- what predicting an upload found out about it
def test_the_catalog_page_says_which_products_had_no_text_and_that_rows_are_numbered(monkeypatch, model_dir):
    # The app's model is quiet, so these warnings of predict_file were lost: a catalog whose text sat
    # in other columns looked like any other, with its products "needing review" and no word why.
    data = b"item_no,title,description\nA1,oxford collar shirt,cotton\nA2,,\nA3,chef knife,\nA4,,\n"
    at = run_app(monkeypatch, model_dir)
    at.file_uploader(key="catalog_upload").set_value(("blanks.csv", data, "text/csv"))
    at.run()
    assert not at.exception and not at.tabs[1].error
    warnings = [shown(w) for w in texts(at.tabs[1].warning)]
    assert any("2 product(s) of blanks.csv have no text in title, description (first: row 2)" in w
               for w in warnings), warnings
    assert any("blanks.csv has no id column 'sku'; its rows are numbered in a 'row' column instead" in w
               for w in warnings), warnings
    assert not any("/tmp" in w or "prodcat-app-" in w for w in warnings), warnings


def test_the_catalog_page_copies_the_id_columns_chosen_for_an_upload(monkeypatch, model_dir, new_products):
    # The app had no --id-cols: an export whose ids were named otherwise came back numbered 1, 2, 3...
    data = new_products[["sku", "title", "description"]].rename(columns={"sku": "item_no"}).to_csv(index=False).encode()
    at = run_app(monkeypatch, model_dir)
    at.file_uploader(key="catalog_upload").set_value(("export.csv", data, "text/csv"))
    at.run()
    [warning] = [shown(w) for w in texts(at.tabs[1].warning)]
    # no hint of a close name ("did you mean"), which the app would say as "choose its id columns above"
    assert "export.csv has no id column 'sku'" in warning and "--id-cols" not in warning
    [table] = at.tabs[1].dataframe
    assert list(table.value.columns[:1]) == ["row"]
    [choice] = at.tabs[1].multiselect
    choice.select("item_no").run()
    assert not at.exception and not at.tabs[1].error and not at.tabs[1].warning
    [table] = at.tabs[1].dataframe
    assert table.value["item_no"].tolist() == new_products["sku"].tolist() and "row" not in table.value.columns


def test_the_catalog_page_says_how_large_an_upload_may_be(monkeypatch, model_dir):
    # It said "Any size", while Streamlit refuses an upload over its server.maxUploadSize.
    import streamlit

    at = run_app(monkeypatch, model_dir)
    intro = " ".join(texts(at.tabs[1].markdown))
    assert "Any size" not in intro
    assert f"up to {streamlit.get_option('server.maxUploadSize'):,} MB" in intro
    assert "prodcat predict" in intro


def test_choosing_another_download_format_converts_the_predictions_without_predicting_again(
        monkeypatch, model_dir, clf, new_products, tmp_path):
    # The format was part of what an upload was predicted for: a click on "Parquet" predicted a
    # whole catalog again (seconds to minutes for a large one) to write the same rows.
    data = new_products[["sku", "title", "description"]].to_csv(index=False).encode()
    at = run_app(monkeypatch, model_dir)
    at.file_uploader(key="catalog_upload").set_value(("new.csv", data, "text/csv"))
    at.run()
    predicted = at.session_state["catalog_result"]
    at.radio(key="out_format").set_value("parquet").run()
    assert not at.exception and not at.tabs[1].error
    assert at.session_state["catalog_result"] is predicted
    assert [b.label for b in at.tabs[1].get("download_button")][0] == f"Download all {len(new_products)} predictions (Parquet)"

    # converted either way, the download is what predicting into that format writes
    for first, then in (("csv", "parquet"), ("parquet", "csv")):
        result = predict_upload(clf, "new.csv", data, tmp_path / first, out_format=first)
        direct = predict_upload(clf, "new.csv", data, tmp_path / then, out_format=then)
        for converted, written in ((result.out_path, direct.out_path), (result.review_path, direct.review_path)):
            converted = uploads.predictions_bytes(converted, then)
            if then == "csv":
                assert converted == written.read_bytes()
            else:
                pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(converted)), pd.read_parquet(written))
        assert result.download_name(out_format=then) == f"new.predictions.{then}"


def test_an_exported_models_labels_are_checked_by_models_of_the_kind_it_was_exported_from(monkeypatch, tmp_path):
    # The page promised "a onnx model" judge, then refused: "model 'onnx' cannot be trained:
    # train its source model and export that again", advice for the command line.
    from prodcat.export import export_model

    source = tmp_path / "bow"
    Categorizer(model="bow", params={"dim": 8, "epochs": 1, "num_threads": 1}, **FORMATS["path"],
                id_cols=["sku"], quiet=True).fit(tiny_frame()).save(source)
    exported = export_model(source, tmp_path / "onnx", quiet=True)
    at = run_app(monkeypatch, exported)
    [intro] = [m for m in texts(at.tabs[2].markdown) if m.startswith("Upload a labelled catalog")]
    assert "judged by a bow model" in intro and "onnx" not in intro
    data, _ = mislabeled_catalog()
    at.file_uploader(key="labels_upload").set_value(("shop.csv", data, "text/csv"))
    at.run()
    at.button(key="check_labels").click().run()
    assert not at.exception and not texts(at.tabs[2].error)
    [success] = texts(at.tabs[2].success)
    assert "of 120 products** from shop.csv are probably mislabeled (5 models" in success
    # the Model page says where an export's curves are, not that "onnx logged none"
    [curves] = [i for i in texts(at.info) if "No training curves" in i]
    assert "an export of a bow model" in curves and "onnx logged none" not in curves


def test_the_id_columns_chosen_are_kept_while_the_text_columns_are_being_chosen_again(monkeypatch, model_dir,
                                                                                      new_products):
    data = renamed_upload(new_products, {"sku": "item_no", "title": "name", "description": "details"})
    at = run_app(monkeypatch, model_dir)
    at.file_uploader(key="catalog_upload").set_value(("export.csv", data, "text/csv"))
    at.run()
    column_choice(at, "title").select("name").run()
    [ids] = at.tabs[1].multiselect
    ids.select("item_no").run()
    column_choice(at, "title").select("(none)").run()
    column_choice(at, "description").select("(none)").run()  # halfway through choosing again: nothing predicted
    assert not at.tabs[1].dataframe
    column_choice(at, "title").select("name").run()
    [ids] = at.tabs[1].multiselect
    assert ids.value == ["item_no"]
    [table] = at.tabs[1].dataframe
    assert table.value["item_no"].tolist() == new_products["sku"].tolist()


def test_the_top_k_of_one_product_does_not_predict_an_uploaded_catalog_again(monkeypatch, model_dir, new_products):
    # The sidebar's top-k was part of what an upload was predicted for: trying 2 bars for one
    # product predicted the whole catalog again (minutes for a large one with a neural model).
    data = new_products[["sku", "title", "description"]].to_csv(index=False).encode()
    at = run_app(monkeypatch, model_dir)
    at.file_uploader(key="catalog_upload").set_value(("new.csv", data, "text/csv"))
    at.run()
    predicted = at.session_state["catalog_result"]
    at.sidebar.number_input(key="top_k").set_value(2).run()
    assert at.session_state["catalog_result"] is predicted
    # the catalog's own setting, next to its format, does predict it again
    at.tabs[1].number_input(key="catalog_top_k").set_value(2).run()
    [table] = at.tabs[1].dataframe
    assert at.session_state["catalog_result"] is not predicted
    assert "label_2" in table.value.columns and "label_3" not in table.value.columns


# ------------------------------------------------- choices that outlive a change of reading settings
def test_the_header_setting_turned_off_and_on_keeps_the_id_columns_chosen(monkeypatch, model_dir, new_products):
    # Turned off (the columns read as 0, 1, 2) and on again, the id choice fell back to none:
    # the download was numbered again, with nothing on the page to say so.
    data = new_products[["sku", "title", "description"]].rename(columns={"sku": "item_no"}).to_csv(index=False).encode()
    at = run_app(monkeypatch, model_dir)
    at.file_uploader(key="catalog_upload").set_value(("export.csv", data, "text/csv"))
    at.run()
    at.tabs[1].multiselect[0].select("item_no").run()
    at.checkbox(key="header").uncheck().run()
    assert at.tabs[1].multiselect[0].value == []  # no column of that name now
    at.checkbox(key="header").check().run()
    assert not at.exception and at.tabs[1].multiselect[0].value == ["item_no"]
    [table] = at.tabs[1].dataframe
    assert table.value["item_no"].tolist() == new_products["sku"].tolist()


def test_the_header_setting_turned_off_and_on_keeps_the_text_columns_chosen(monkeypatch, model_dir, new_products):
    data = renamed_upload(new_products, {"title": "name", "description": "details"})
    at = run_app(monkeypatch, model_dir)
    at.file_uploader(key="catalog_upload").set_value(("export.csv", data, "text/csv"))
    at.run()
    column_choice(at, "title").select("name").run()
    column_choice(at, "description").select("details").run()
    at.checkbox(key="header").uncheck().run()
    at.checkbox(key="header").check().run()
    assert not at.exception
    assert [column_choice(at, f).value for f in ("title", "description")] == ["name", "details"]
    assert any(f"{len(new_products)} products from export.csv categorized" in s for s in texts(at.tabs[1].success))


# ------------------------------------------------- columns named a little otherwise than the model's
def test_columns_named_a_little_otherwise_are_preselected_and_the_page_says_so(monkeypatch, model_dir, new_products,
                                                                              clf):
    # "Title" for title was offered as "(none)", and "SKU" for sku left the download numbered
    data = renamed_upload(new_products, {"sku": "SKU", "title": "Title", "description": "Description"})
    at = run_app(monkeypatch, model_dir)
    at.file_uploader(key="catalog_upload").set_value(("export.csv", data, "text/csv"))
    at.run()
    assert not at.exception and not at.tabs[1].error and not at.tabs[1].warning
    assert [column_choice(at, f).value for f in ("title", "description")] == ["Title", "Description"]
    assert at.tabs[1].multiselect[0].value == ["SKU"]
    [said] = texts(at.tabs[1].info)
    assert "**Title** for title" in said and "**Description** for description" in said and "**SKU** for sku" in said
    [table] = at.tabs[1].dataframe
    assert table.value["SKU"].tolist() == new_products["sku"].tolist()
    assert table.value["prediction"].tolist() == clf.predict_table(new_products)["prediction"].tolist()
    # chosen otherwise, the page no longer says it reads the close name
    column_choice(at, "description").select("(none)").run()
    [said] = texts(at.tabs[1].info)
    assert "**Title** for title" in said and "description" not in said


def test_a_column_that_only_contains_the_models_name_is_not_preselected(monkeypatch, model_dir, new_products):
    data = renamed_upload(new_products, {"title": "subtitle", "description": "short_description"})
    at = run_app(monkeypatch, model_dir)
    at.file_uploader(key="catalog_upload").set_value(("export.csv", data, "text/csv"))
    at.run()
    assert [column_choice(at, f).value for f in ("title", "description")] == ["(none)", "(none)"]
    assert not at.tabs[1].info and not at.tabs[1].dataframe
    [warning] = texts(at.tabs[1].warning)
    assert "has none of the model's text columns" in shown(warning)


# ------------------------------------------------- the labels of an upload naming its columns otherwise
def renamed_mislabeled_catalog() -> tuple[bytes, list[str]]:
    data, mislabeled = mislabeled_catalog()
    frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    renamed = frame.rename(columns={"sku": "item_no", "title": "name", "description": "details", "category": "dept"})
    return renamed.to_csv(index=False).encode(), mislabeled


def test_check_labels_upload_reads_the_columns_chosen_for_the_model_fields(clf, tmp_path):
    data, mislabeled = renamed_mislabeled_catalog()
    result = check_labels_upload(clf, "export.csv", data, tmp_path / "work", text_cols=["name", "details"],
                                 label_cols=["dept"], id_cols=["item_no"])
    assert result.rows == 120
    everything = pd.read_csv(result.out_path, dtype=str)
    assert 1 <= result.issues and set(everything["item_no"]) <= set(mislabeled)


def test_check_labels_upload_numbers_the_rows_of_an_upload_without_the_id_column(clf, tmp_path):
    # it was refused: "column 'sku' not found", while predicting such an upload numbers its rows
    data, _ = mislabeled_catalog()
    frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False).drop(columns=["sku"])
    result = check_labels_upload(clf, "export.csv", frame.to_csv(index=False).encode(), tmp_path / "work")
    assert result.rows == 120 and "sku" not in result.flagged.columns and "row" in result.flagged.columns


def test_the_labels_page_asks_which_columns_hold_the_model_fields_and_labels(monkeypatch, model_dir):
    # It assumed the model's column names: an export naming them otherwise was refused with
    # "column 'sku' not found", and no way on the page to say which columns to read.
    data, mislabeled = renamed_mislabeled_catalog()
    at = run_app(monkeypatch, model_dir)
    at.file_uploader(key="labels_upload").set_value(("export.csv", data, "text/csv"))
    at.run()
    page = at.tabs[2]
    assert not at.exception and not page.error and not page.success
    warnings = [shown(w) for w in texts(page.warning)]
    assert any("has none of the model's text columns" in w for w in warnings)
    assert any("export.csv has no column **category** of the model's labels" in w for w in warnings)
    choices = {s.label: s for s in page.selectbox}
    choices["Column for title"].select("name").run()
    {s.label: s for s in at.tabs[2].selectbox}["Column for description"].select("details").run()
    assert not at.tabs[2].success  # the labels are yet to be chosen
    {s.label: s for s in at.tabs[2].selectbox}["Column for the labels of category"].select("dept").run()
    at.tabs[2].multiselect[0].select("item_no").run()
    at.button(key="check_labels").click().run()
    page = at.tabs[2]
    assert not at.exception and not page.error
    assert not page.warning  # nothing is left to choose
    [success] = texts(page.success)
    assert "of 120 products** from export.csv are probably mislabeled (5 models" in success
    [table] = page.dataframe
    assert set(table.value["item_no"]) <= set(mislabeled)


def test_the_labels_page_preselects_columns_named_a_little_otherwise(monkeypatch, model_dir):
    data, mislabeled = mislabeled_catalog()
    frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    data = frame.rename(columns={"sku": "SKU", "title": "Title", "category": "Category"}).to_csv(index=False).encode()
    at = run_app(monkeypatch, model_dir)
    at.file_uploader(key="labels_upload").set_value(("export.csv", data, "text/csv"))
    at.run()
    at.button(key="check_labels").click().run()
    page = at.tabs[2]
    assert not at.exception and not page.error and not page.warning
    [said] = texts(page.info)
    assert "**Title** for title" in said and "**Category** for category" in said and "**SKU** for sku" in said
    [table] = page.dataframe
    assert set(table.value["SKU"]) <= set(mislabeled)


def test_another_id_column_does_not_train_the_label_judges_again_until_asked(monkeypatch, model_dir):
    # Each choice on the Check labels page trained the judges again at once: minutes of a waiting
    # page per choice with a neural model, for an id column copied into the list.
    data, mislabeled = mislabeled_catalog()
    frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    frame["ean"] = [f"E{i}" for i in range(len(frame))]
    at = run_app(monkeypatch, model_dir)
    at.file_uploader(key="labels_upload").set_value(("shop.csv", frame.to_csv(index=False).encode(), "text/csv"))
    at.run()
    at.button(key="check_labels").click().run()
    checked = at.session_state["labels_result"]
    at.tabs[2].multiselect[0].select("ean").run()
    assert at.session_state["labels_result"] is checked
    assert any("changed since the check below" in c for c in texts(at.tabs[2].caption))
    at.button(key="check_labels").click().run()
    assert at.session_state["labels_result"] is not checked
    [table] = at.tabs[2].dataframe
    assert "ean" in table.value.columns
    assert not any("changed since" in c for c in texts(at.tabs[2].caption))


def test_a_catalog_of_one_product_is_said_in_the_singular(monkeypatch, model_dir):
    at = run_app(monkeypatch, model_dir)
    at.file_uploader(key="catalog_upload").set_value(("one.csv", b"sku,title\n1,oxford shirt\n", "text/csv"))
    at.run()
    [success] = texts(at.tabs[1].success)
    assert success.startswith("1 product from one.csv categorized")
