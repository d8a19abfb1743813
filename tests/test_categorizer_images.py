"""Photos through the facade: every input form carries them to the model, and
evaluation reports a model's parts (text alone, image alone, combined)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prodcat import Categorizer
from prodcat.errors import ColumnError, ConfigError
from dummy_models import PartsModel
from tiny_catalogs import FORMATS, tiny_frame, tiny_image_frame

SINGLE = FORMATS["single"]




def fit_image_dummy(shop, **options) -> Categorizer:
    path, _ = shop
    return Categorizer(model="image-dummy", image_col="image", image_root="photos", quiet=True, **SINGLE,
                       **options).fit(path)


def test_stacking_makes_its_folds_on_a_catalog_of_photos_alone(dummies, shop):
    # Its folds were keyed by text alone: every product one group, "needs at least 2 distinct texts".
    path, frame = shop
    frame.assign(title="", description="").to_csv(path, index=False)
    clf = Categorizer(model="ensemble", params={"members": ["image-dummy", "image-dummy"], "method": "stacking"},
                      image_col="image", image_root="photos", quiet=True, **SINGLE).fit(path)
    assert clf.metrics_["test"]["n"] > 0


def test_fit_hands_the_model_paths_beside_the_catalog(dummies, shop):
    path, frame = shop
    clf = fit_image_dummy(shop)
    trained_on = dummies[0]
    assert len(trained_on) < len(frame)  # the training part only
    assert all(Path(ref).parent == path.parent / "photos" and Path(ref).is_file() for ref in trained_on)
    assert clf.fields_.image_root == "photos"  # saved as given, not as this machine's absolute path


def test_image_root_given_as_a_path_is_kept_as_text(dummies, shop):
    clf = Categorizer(model="image-dummy", image_col="image", image_root=Path("photos"), quiet=True, **SINGLE)
    assert clf.resolve_fields().image_root == "photos"


def test_dataframe_paths_start_from_the_image_root_in_the_current_directory(dummies, shop, monkeypatch):
    path, frame = shop
    clf = fit_image_dummy(shop)
    monkeypatch.chdir(path.parent)
    dummies.clear()
    clf.predict(frame.head(3))
    assert dummies[-1] == [str(Path("photos") / name) for name in frame["image"].head(3)]
    assert all(Path(ref).is_file() for ref in dummies[-1])


def test_a_path_reads_the_files_image_column_from_its_folder(dummies, shop):
    path, frame = shop
    clf = fit_image_dummy(shop)
    dummies.clear()
    clf.predict(Path(path))
    assert dummies[-1] == [str(path.parent / "photos" / name) for name in frame["image"]]


def test_dicts_carry_paths_and_bytes(dummies, shop):
    path, _ = shop
    clf = fit_image_dummy(shop)
    png = (path.parent / "photos").glob("*.png").__next__().read_bytes()
    dummies.clear()
    clf.predict([
        {"title": "oxford shirt", "image": "SHI-001.png"},  # the mapping's column: from the image root
        {"title": "chef knife", "image": png},  # bytes stay bytes
        {"title": "linen duvet", "image": None},
        {"title": "lace sneaker"},
    ])
    assert dummies[-1] == [str(Path("photos") / "SHI-001.png"), png, None, None]


def test_the_generic_image_key_is_taken_as_given_when_the_mapping_names_another(dummies, tmp_path):
    frame = tiny_image_frame(tmp_path / "pics", n_per_class=6).rename(columns={"image": "photo"})
    clf = Categorizer(model="image-dummy", image_col="photo", image_root=str(tmp_path / "pics"), quiet=True,
                      **SINGLE).fit(frame)
    dummies.clear()
    clf.predict([{"title": "a", "photo": "x.png"}, {"title": "b", "image": "y/z.png"}, {"title": "c", "image": b"\x89"}])
    assert dummies[-1] == [str(tmp_path / "pics" / "x.png"), str(Path("y") / "z.png"), b"\x89"]


def test_texts_carry_no_images(dummies, shop):
    clf = fit_image_dummy(shop)
    dummies.clear()
    clf.predict(["oxford shirt", "chef knife"])
    assert dummies[-1] is None


def test_a_model_trained_with_images_predicts_products_without_them(dummies, shop):
    _, frame = shop
    clf = fit_image_dummy(shop)
    dummies.clear()
    table = clf.predict_table(frame.drop(columns=["image"]).head(4))
    assert len(table) == 4 and dummies[-1] is None


def test_an_image_only_product_is_fine_for_an_image_model_only(dummies, shop):
    path, frame = shop
    png = next((path.parent / "photos").glob("*.png")).read_bytes()
    clf = fit_image_dummy(shop)
    assert clf.reads_images()
    assert len(clf.predict([{"image": png}])) == 1
    assert len(clf.predict(pd.DataFrame({"image": [png]}))) == 1
    text_model = Categorizer(image_col="image", image_root="photos", quiet=True, **SINGLE).fit(path)
    assert not text_model.reads_images()
    with pytest.raises(ColumnError, match="text fields"):
        text_model.predict([{"image": png}])
    with pytest.raises(ColumnError, match="not found"):
        text_model.predict(pd.DataFrame({"image": [png]}))


def test_a_model_of_photos_alone_predicts_every_input_form_without_text(dummies, shop, monkeypatch, tmp_path):
    from dummy_models import RecordingImageModel

    monkeypatch.setattr(RecordingImageModel, "reads_text", False)
    path, frame = shop
    photos_only = path.parent / "photos_only.csv"
    frame[["sku", "image", "leaf"]].to_csv(photos_only, index=False)
    clf = Categorizer(model="image-dummy", label_col="leaf", image_col="image", image_root="photos",
                      quiet=True).fit(photos_only)
    assert clf.fields_.text_cols == () and not clf.reads_text()
    png = (path.parent / "photos" / frame["image"][0]).read_bytes()
    assert len(clf.predict([{"image": png}, {"image": png}])) == 2
    assert dummies[-1] == [png, png]
    assert len(clf.predict(pd.DataFrame({"image": [png]}))) == 1
    assert len(clf.predict(photos_only)) == len(frame)
    with pytest.raises(ColumnError, match=r"no product has a photo \('image'\), and the model reads only photos"):
        clf.predict([{"title": "oxford shirt"}])
    with pytest.raises(ColumnError, match="the products have no image column"):
        clf.predict(pd.DataFrame({"title": ["oxford shirt"]}))


def test_an_image_model_needs_an_image_column(dummies, shop):
    path, _ = shop
    with pytest.raises(ConfigError, match="--image-col"):
        Categorizer(model="image-dummy", quiet=True, **SINGLE).fit(path)


def test_a_missing_image_folder_is_warned_about(dummies, shop, capsys):
    path, _ = shop
    Categorizer(model="image-dummy", image_col="image", image_root="nowhere", **SINGLE).fit(path)
    assert "image folder nowhere not found" in capsys.readouterr().err


def test_predict_file_resolves_against_that_files_folder_and_takes_an_override(dummies, shop, tmp_path):
    clf = fit_image_dummy(shop)
    other = tmp_path / "other"
    frame = tiny_image_frame(other / "shots", n_per_class=2)
    frame.to_csv(other / "new.csv", index=False)
    dummies.clear()
    clf.predict_file(other / "new.csv", tmp_path / "pred.csv")
    assert dummies[-1][0] == str(Path("photos") / frame["image"][0])  # no photos/ beside it: from here
    dummies.clear()
    clf.predict_file(other / "new.csv", tmp_path / "pred.csv", image_root="shots")
    assert dummies[-1] == [str(other / "shots" / name) for name in frame["image"]]
    assert all(Path(ref).is_file() for ref in dummies[-1])


def test_predict_file_without_the_image_column_warns_and_falls_back(dummies, shop, tmp_path, capsys):
    clf = fit_image_dummy(shop)
    clf.quiet = False
    pd.DataFrame({"title": ["oxford shirt"]}).to_csv(tmp_path / "no_images.csv", index=False)
    dummies.clear()
    summary = clf.predict_file(tmp_path / "no_images.csv", tmp_path / "pred.csv")
    assert summary["rows"] == 1 and dummies[-1] is None
    assert "no image column 'image'" in capsys.readouterr().err


def test_evaluate_reports_each_part_on_the_same_products(dummies, shop, tmp_path):
    path, frame = shop
    clf = Categorizer(model="parts-dummy", image_col="image", image_root="photos", quiet=True, **SINGLE).fit(path)
    metrics = clf.evaluate(path, keep_seen=True, report_dir=tmp_path / "report")
    parts = metrics["components"]
    assert list(parts) == ["tfidf-linear", "prior", "combined"]
    assert all(part["n"] == metrics["n"] == len(frame) for part in parts.values())
    assert parts["combined"] == {k: metrics[k] for k in ("accuracy", "macro_f1", "weighted_f1", "n")}
    assert parts["tfidf-linear"]["accuracy"] > 0.9 > parts["prior"]["accuracy"]
    assert metrics["images"] == {"with_image": len(frame), "without_image": 0}
    report = (tmp_path / "report" / "report.md").read_text()
    assert "## By part" in report and "| prior |" in report and "| combined |" in report
    assert json.loads((tmp_path / "report" / "metrics.json").read_text())["components"] == parts
    versus = metrics["versus_best_part"]
    assert versus["best_part"] == "tfidf-linear" and versus["n"] == len(frame)
    assert versus["macro_f1_gain"] == pytest.approx(parts["combined"]["macro_f1"] - parts["tfidf-linear"]["macro_f1"])
    assert versus["changed"] >= versus["fixed"] + versus["broken"]
    assert f"Against its best part alone (tfidf-linear): the combined model changes {versus['changed']:,} of" in report


def test_the_saved_report_and_manifest_show_the_parts(dummies, shop, tmp_path):
    path, _ = shop
    clf = Categorizer(model="parts-dummy", image_col="image", image_root="photos", quiet=True, **SINGLE).fit(path)
    model_dir = clf.save(tmp_path / "model")
    assert "## By part" in (model_dir / "report" / "report.md").read_text()
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert set(manifest["metrics"]["test"]["components"]) == {"tfidf-linear", "prior", "combined"}
    assert manifest["metrics"]["test"]["versus_best_part"]["best_part"] == "tfidf-linear"
    loaded = Categorizer.load(model_dir, quiet=True)
    again = loaded.evaluate(path, keep_seen=True)
    assert again["components"]["prior"] == clf.evaluate(path, keep_seen=True)["components"]["prior"]


def test_a_single_model_reports_no_parts_and_counts_photos(shop, tmp_path):
    path, frame = shop
    frame.loc[:4, "image"] = ""
    frame.to_csv(path, index=False)
    clf = Categorizer(image_col="image", image_root="photos", quiet=True, **SINGLE).fit(path)
    metrics = clf.evaluate(path, keep_seen=True)
    assert "components" not in metrics and "versus_best_part" not in metrics
    assert metrics["images"] == {"with_image": len(frame) - 5, "without_image": 5}
    assert "images" not in Categorizer(quiet=True, **SINGLE).fit(path).evaluate(path, keep_seen=True)


def test_evaluate_takes_image_options_and_a_label_col_alias(dummies, shop, tmp_path):
    path, frame = shop
    clf = fit_image_dummy(shop)
    dummies.clear()
    clf.evaluate(path, keep_seen=True, image_root=str(tmp_path / "elsewhere"), label_col="leaf")
    assert dummies[-1][0] == str(tmp_path / "elsewhere" / frame["image"][0])
    with pytest.raises(ConfigError, match="unknown field option"):
        clf.evaluate(path, image_rot="x")


def test_multi_label_parts_are_scored_too(dummies, tmp_path):
    frame = tiny_image_frame(tmp_path / "pics", n_per_class=8)
    clf = Categorizer(model="parts-dummy", quiet=True, **FORMATS["multi"]).fit(frame)
    metrics = clf.evaluate(frame, keep_seen=True)
    assert set(metrics["components"]) == {"tfidf-linear", "prior", "combined"}
    assert np.isfinite([part["macro_f1"] for part in metrics["components"].values()]).all()
    assert metrics["versus_best_part"]["n"] == len(frame)


def test_a_multi_label_part_alone_is_cut_at_thresholds_tuned_for_it(dummies, monkeypatch, tmp_path):
    # A text part that is the whole combination: every decision the combination seems to change
    # against it would be the combination's tuned cuts set against the part's untuned 0.5.
    monkeypatch.setattr(PartsModel, "TEXT_SHARE", 1.0)
    frame = tiny_frame(n_per_class=24)
    # a tag no text tells, on a third of the products: its best cut is far below 0.5
    on_sale = np.random.default_rng(0).random(len(frame)) < 0.35
    frame.loc[on_sale, "tags"] += "|sale"
    clf = Categorizer(model="parts-dummy", quiet=True, **FORMATS["multi"]).fit(frame)
    assert clf.thresholds_[clf.classes_.index("sale")] < 0.3
    for scored in (clf, Categorizer.load(clf.save(tmp_path / "model"), quiet=True)):
        metrics = scored.evaluate(frame, keep_seen=True)
        assert metrics["components"]["tfidf-linear"] == metrics["components"]["combined"]
        assert metrics["versus_best_part"]["changed"] == 0
