"""Path models place a product at the deepest level of its predicted path that is confident enough."""

from __future__ import annotations

import copy
import hashlib
import json
import random

import numpy as np
import pandas as pd
import pytest
from safetensors.numpy import load_file, save_file

from prodcat import Categorizer
from prodcat.errors import ModelDirError
from tiny_catalogs import FORMATS, tiny_frame

TREE = {
    "Apparel > Topwear > Shirts": ["shirt", "collar", "formal"],
    "Apparel > Topwear > Tshirts": ["tshirt", "crew", "graphic"],
    "Apparel > Bottomwear > Jeans": ["jeans", "denim", "rivet"],
    "Apparel > Bottomwear > Shorts": ["shorts", "bermuda", "cargo"],
    "Home > Kitchen > Mugs": ["mug", "coffee", "handle"],
    "Home > Kitchen > Plates": ["plate", "dinner", "rim"],
}


def tree_frame(n: int = 720, seed: int = 0) -> pd.DataFrame:
    """Titles that name their leaf, or (one in three) only their level 2 ("topwear item"):
    those the model can place at level 2 with confidence, never at the leaf."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        path = rng.choice(list(TREE))
        top, middle, _ = path.split(" > ")
        if rng.random() < 1 / 3:
            words = [middle.lower(), rng.choice(["item", "product", "piece"])]
        else:
            words = [rng.choice(TREE[path]), rng.choice(["new", "classic", "basic"])]
        rows.append({"title": f"{' '.join(words)} {top.lower()} {i}", "category": path})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def tree_model(tmp_path_factory):
    clf = Categorizer(text_cols=["title"], label_col="category", label_format="path", quiet=True)
    clf.fit(tree_frame())
    folder = tmp_path_factory.mktemp("tree") / "model"
    clf.save(folder)
    return clf, folder


def test_an_unsure_leaf_is_placed_at_the_confident_level_above_it(tree_model):
    clf, _ = tree_model
    table = clf.predict_table(["topwear item apparel", "jeans classic apparel", ""])
    assert list(table.columns[-2:]) == ["confident_path", "confident_level"]
    ambiguous, sure, blank = table.to_dict("records")
    # shirt or t-shirt, the model cannot tell; that it is topwear, it can
    assert ambiguous["needs_review"] and ambiguous["prediction"].startswith("Apparel > Topwear > ")
    assert (ambiguous["confident_path"], ambiguous["confident_level"]) == ("Apparel > Topwear", 2)
    assert not sure["needs_review"]
    assert (sure["confident_path"], sure["confident_level"]) == ("Apparel > Bottomwear > Jeans", 3)
    # a product with nothing to read is placed nowhere
    assert (blank["confident_path"], blank["confident_level"]) == ("", 0)


def test_each_level_has_its_own_review_threshold_chosen_on_validation(tree_model):
    clf, folder = tree_model
    levels = clf.review_["levels"]
    assert [level["level"] for level in levels] == [1, 2]
    for level in levels:
        # chosen among the validation products no deeper level placed (none may be left)
        assert level["target_precision"] == 0.95
        assert level["threshold"] is None or level["precision"] >= 0.95
    assert levels[1]["threshold"] is not None
    # kept with the model: a reloaded one places products alike
    again = Categorizer.load(folder)
    assert again.review_["levels"] == levels
    products = tree_frame(60, seed=3)[["title"]]
    pd.testing.assert_frame_equal(again.predict_table(products), clf.predict_table(products))
    # another target precision chooses the levels' thresholds again, as the leaf's
    stricter = again.predict_table(products, target_precision=0.999)
    assert (stricter["confident_level"] <= again.predict_table(products)["confident_level"]).all()


def test_test_figures_say_where_products_were_placed_and_how_often_rightly(tree_model, tmp_path):
    clf, folder = tree_model
    placed = clf.test_metrics_["confident_paths"]
    assert placed["products"] == clf.test_metrics_["n"]
    assert placed["not_placed"] + sum(r["products"] for r in placed["levels"]) == placed["products"]
    by_level = {r["level"]: r for r in placed["levels"]}
    assert by_level[2]["products"] > 0 and by_level[3]["products"] > 0
    # recomputed from the predictions: a placed path is right when it starts the true path
    test = clf._test_catalog
    table = clf.predict_table(test.products.texts)
    truth = clf.label_space_.names(test.labels)
    for level in (2, 3):
        rows = np.flatnonzero(table["confident_level"].to_numpy() == level)
        right = np.mean([(truth[i] + " > ").startswith(table["confident_path"][i] + " > ") for i in rows])
        assert by_level[level]["precision"] == pytest.approx(right, abs=1e-6)
    report = (folder / "report" / "report.md").read_text()
    assert "## Confident paths" in report
    # evaluate on another file gives the same figures and section
    other = tree_frame(120, seed=9)
    metrics = Categorizer.load(folder).evaluate(other, report_dir=tmp_path / "report", keep_seen=True)
    assert metrics["confident_paths"]["products"] == len(other)
    assert "## Confident paths" in (tmp_path / "report" / "report.md").read_text()


def test_models_of_other_labels_have_no_confident_path():
    clf = Categorizer(**FORMATS["single"], quiet=True).fit(tiny_frame(8))
    assert "confident_path" not in clf.predict_table(["oxford shirt"]).columns
    assert "levels" not in clf.review_ and "confident_paths" not in clf.test_metrics_


def test_a_one_level_path_model_ends_its_predictions_with_the_same_columns(tmp_path):
    # A pipeline reading confident_path must not break on a catalog whose tree is flat.
    frame = tiny_frame(12).assign(category=lambda f: f["leaf"])
    clf = Categorizer(**FORMATS["path"], quiet=True).fit(frame)
    assert clf.label_space_.depth == 1 and clf.review_["levels"] == []
    clf.save(tmp_path / "model")
    for model in (clf, Categorizer.load(tmp_path / "model", quiet=True)):
        table = model.predict_table(["oxford shirt collar", ""])
        assert list(table.columns[-2:]) == ["confident_path", "confident_level"]
        sure, blank = table.to_dict("records")
        # the leaf is the path: placed when sure, as the review threshold says
        assert (sure["confident_level"], sure["confident_path"]) == (
            (1, sure["prediction"]) if not sure["needs_review"] else (0, ""))
        assert (blank["confident_level"], blank["confident_path"]) == (0, "")
    assert "confident_paths" in clf.test_metrics_


def copy_with(folder, to, arrays_edit, manifest_edit=lambda manifest: None):
    """A copy of model directory `folder` at `to` with its arrays and manifest edited, checksums redone."""
    to.mkdir()
    for item in folder.iterdir():
        if item.is_file():
            (to / item.name).write_bytes(item.read_bytes())
    save_file(arrays_edit(load_file(to / "weights.safetensors")), to / "weights.safetensors")
    manifest = json.loads((to / "manifest.json").read_text())
    manifest_edit(manifest)
    manifest["files"]["weights.safetensors"]["sha256"] = hashlib.sha256(
        (to / "weights.safetensors").read_bytes()).hexdigest()
    (to / "manifest.json").write_text(json.dumps(manifest))
    return to


def test_a_path_model_saved_before_levels_had_thresholds_loads_without_them(tree_model, tmp_path):
    _, folder = tree_model
    old = copy_with(folder, tmp_path / "old",
                    lambda arrays: {k: v for k, v in arrays.items() if "review_level" not in k},
                    lambda manifest: manifest["review"].pop("levels"))
    clf = Categorizer.load(old)
    table = clf.predict_table(["topwear item apparel"])
    assert "confident_path" not in table.columns
    assert "confident_path" not in clf.prediction_columns()


def test_damaged_level_review_arrays_are_a_model_dir_error(tree_model, tmp_path):
    _, folder = tree_model

    def cut(arrays):
        arrays["prodcat.review_level_correct"] = arrays["prodcat.review_level_correct"][:1]
        return arrays

    bad = copy_with(folder, tmp_path / "bad", cut)
    with pytest.raises(ModelDirError, match="review confidences per level"):
        Categorizer.load(bad)


def test_the_server_answers_a_path_models_confident_path(tree_model):
    from fastapi.testclient import TestClient

    from prodcat.serve import create_app

    _, folder = tree_model
    with TestClient(create_app(folder)) as client:
        response = client.post("/v1/predict", json=[{"title": "topwear item apparel"}])
    assert response.status_code == 200, response.text
    answer = response.json()["predictions"][0]
    assert (answer["confident_path"], answer["confident_level"]) == ("Apparel > Topwear", 2)


def test_a_class_shallower_than_a_level_is_placed_only_by_its_own_threshold():
    # "Gifts" is a whole path of one level beside paths of three: at level 2 it is its own
    # ancestor, so a level-2 threshold below the leaf's would call an unsure "Gifts" sure
    # and place it at a level it does not have
    frame = pd.concat([tree_frame(240), pd.DataFrame(
        {"title": [f"gift voucher card {i}" for i in range(40)], "category": "Gifts"})], ignore_index=True)
    clf = Categorizer(text_cols=["title"], label_col="category", label_format="path", quiet=True).fit(frame)
    space = clf.label_space_
    proba = np.zeros((2, space.n_classes), np.float32)
    proba[0, space.classes.index("Gifts")], proba[0, space.classes.index("Home > Kitchen > Mugs")] = 0.8, 0.2
    proba[1, space.classes.index("Apparel > Topwear > Shirts")] = 0.6
    proba[1, space.classes.index("Apparel > Topwear > Tshirts")] = 0.4
    placed, paths = clf._confident_paths(proba, 0.99, [0.99, 0.5])
    assert (placed.tolist(), paths) == ([0, 2], ["", "Apparel > Topwear"])


@pytest.mark.parametrize("levels", [
    "ab",  # as long as the two levels, yet no list of them
    [{"level": 1}, {"level": 2}],  # no thresholds
    [{"level": 1, "threshold": "0.9"}, {"level": 2, "threshold": 0.9}],
    [1, 2],
    [{"level": 1, "threshold": 0.9}],  # one level for a model of two
])
def test_a_hand_edited_review_levels_entry_is_a_model_dir_error_at_load(tree_model, tmp_path, levels):
    # read only when predicting: each of these was a TypeError or KeyError traceback in predict
    _, folder = tree_model
    bad = copy_with(folder, tmp_path / "bad", lambda arrays: arrays,
                    lambda manifest: manifest["review"].__setitem__("levels", levels))
    with pytest.raises(ModelDirError, match="review 'levels' must list"):
        Categorizer.load(bad)


def test_a_class_shallower_than_a_level_has_no_say_in_that_levels_threshold():
    # the validation products decided as "Gifts" are never placed at level 2 or 1 by their
    # ancestor confidence: counted there, their easy "Gifts" would lift the level's precision
    frame = pd.concat([tree_frame(240), pd.DataFrame(
        {"title": [f"gift voucher card {i}" for i in range(40)], "category": "Gifts"})], ignore_index=True)
    clf = Categorizer(text_cols=["title"], label_col="category", label_format="path", quiet=True).fit(frame)
    space = clf.label_space_
    proba = np.full((1, space.n_classes), 0.01, np.float32)
    proba[0, space.classes.index("Gifts")] = 1 - 0.01 * (space.n_classes - 1)
    confidence, _ = clf._level_confidence_and_correctness(proba, np.array([space.classes.index("Gifts")]))
    assert confidence[:, 0].tolist() == [-1.0, -1.0]
    gifts_in_validation = (clf.review_level_confidence_ < 0).sum(axis=1)
    assert (gifts_in_validation > 0).all()
    # the levels' thresholds are those of the deeper classes' products alone
    levels = clf._level_reviews(0.95)
    without = copy.copy(clf)
    keep = clf.review_level_confidence_[0] >= 0
    without.review_confidence_, without.review_correct_ = clf.review_confidence_[keep], clf.review_correct_[keep]
    without.review_level_confidence_ = clf.review_level_confidence_[:, keep]
    without.review_level_correct_ = clf.review_level_correct_[:, keep]
    assert [level["threshold"] for level in levels] == \
        [level["threshold"] for level in without._level_reviews(0.95)]


@pytest.mark.parametrize("edit", [
    lambda review: review.pop("threshold"),
    lambda review: review.pop("target_precision"),
    lambda review: review.__setitem__("target_precision", 0),
])
def test_a_hand_edited_review_threshold_is_a_model_dir_error_at_load(tree_model, tmp_path, edit):
    # a review without its threshold loaded, then was a KeyError traceback in predict
    _, folder = tree_model
    bad = copy_with(folder, tmp_path / "bad", lambda arrays: arrays, lambda manifest: edit(manifest["review"]))
    with pytest.raises(ModelDirError, match="review must hold a threshold"):
        Categorizer.load(bad)
