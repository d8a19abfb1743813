"""The facade keeps scikit-learn's estimator conventions a notebook user relies on."""

import pytest
from sklearn.base import clone

from prodcat import Categorizer
from prodcat.errors import ConfigError, NotFittedError, ProdcatError
from tiny_catalogs import FORMATS, tiny_frame


def test_get_params_set_params_and_clone_make_an_unfitted_copy_with_the_same_settings():
    clf = Categorizer(quiet=True, seed=3, params={"C": 0.5}, **FORMATS["single"]).fit(tiny_frame())
    params = clf.get_params()
    assert params["seed"] == 3 and params["params"] == {"C": 0.5} and params["label_col"] == "leaf"
    assert set(params) == set(Categorizer().get_params())

    copy = clone(clf)
    assert copy.get_params() == params
    assert not hasattr(copy, "classes_")
    assert copy.fit(tiny_frame()).classes_ == clf.classes_

    assert copy.set_params(seed=5, target_precision=0.9) is copy
    assert (copy.seed, copy.target_precision) == (5, 0.9)
    with pytest.raises(ConfigError, match="^unknown Categorizer option[(]s[)] sed; known: .*seed"):
        copy.set_params(sed=1)


def test_an_unfitted_categorizer_has_no_fitted_attributes_rather_than_raising_on_a_look():
    clf = Categorizer(quiet=True, **FORMATS["single"])
    # hasattr / getattr with a default only catch an AttributeError, as scikit-learn's NotFittedError is
    assert not hasattr(clf, "classes_")
    assert getattr(clf, "classes_", None) is None
    with pytest.raises(NotFittedError, match="not fitted yet: call fit"):
        clf.predict(["shirt"])
    assert issubclass(NotFittedError, ProdcatError)  # the CLI's one catch still holds it


def test_a_loaded_model_fits_again_and_clones_with_the_settings_it_was_trained_with(tmp_path):
    trained = Categorizer(quiet=True, seed=7, class_weight=None, target_precision=0.9, **FORMATS["path"])
    trained.fit(tiny_frame()).save(tmp_path / "model")
    loaded = Categorizer.load(tmp_path / "model", quiet=True)
    assert (loaded.seed, loaded.class_weight, loaded.target_precision) == (7, None, 0.9)

    # fit on new data, or clone to fit elsewhere: each reads the catalog as the saved model did
    refit = clone(loaded).fit(tiny_frame(seed=5))
    assert refit.fields_ == loaded.fields_ and refit.classes_ == loaded.classes_
    assert loaded.fit(tiny_frame(seed=5)).predict(["oxford collar shirt"]) == ["Apparel > Shirts"]


def test_label_issues_of_a_frame_keep_its_index_when_unlabelled_rows_are_left_out():
    frame = tiny_frame()
    frame.index = [f"p{i}" for i in range(len(frame))]
    frame.loc["p3", "leaf"] = None
    clf = Categorizer(quiet=True, text_cols=["title"], label_col="leaf")
    table = clf.find_label_issues(frame, folds=2, skip_unlabelled=True)
    assert "p3" not in table.index and len(table) == len(frame) - 1
    # the index picks the very products judged, as predict_table's does
    assert (frame.loc[table.index, "leaf"].to_numpy() == table["label"].to_numpy()).all()
    assert table.loc["p4", "row"] == 5


def test_fitting_a_loaded_model_again_replaces_what_described_the_old_one(tmp_path):
    Categorizer(quiet=True, **FORMATS["path"]).fit(tiny_frame()).save(tmp_path / "old")
    clf = Categorizer.load(tmp_path / "old", quiet=True).set_params(fields=None, **FORMATS["single"])
    clf.fit(tiny_frame(seed=5))
    # the server described a model by manifest_, and messages named model_dir_: both the old model's
    assert not hasattr(clf, "manifest_") and not hasattr(clf, "model_dir_")
    assert not hasattr(clf, "review_level_confidence_")
    with pytest.raises(ConfigError, match="^this tfidf-linear model predicts single labels"):
        clf.evaluate(tiny_frame(seed=6), label_format="path", label_col="category")
