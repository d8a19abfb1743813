"""ensemble: tuned averaging and stacking of registered models, masks, state, bad settings."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest

from prodcat import Categorizer
from prodcat.catalog.load import catalog_from_frame
from prodcat.catalog.products import Products
from prodcat.errors import ConfigError, ModelDirError, UnknownModelError
from prodcat.labels import LabelSpace
from prodcat.models import FitContext, get_model_class, register
from prodcat.models.base import CategorizerModel
from prodcat.catalog.normalize import product_keys
from prodcat.catalog.split import grouped_folds
from prodcat.models.ensemble import Ensemble, average_proba, simplex_grid, tune_weights
from cli_runner import run
from tiny_catalogs import FORMATS, tiny_frame

# Tiny members: tfidf-linear learns the tiny catalog at once; bow after 2 epochs is the weaker member.
BOW = {"dim": 8, "epochs": 2, "batch_size": 8, "lr": 0.05, "minn": 0, "num_threads": 1}
TEXT_MEMBERS = {"members": ["tfidf-linear", "bow"], "member_params": {"bow": BOW}}


# --- test doubles -----------------------------------------------------------------


class _Stateless(CategorizerModel):
    """A model with nothing to learn or save: the doubles below predict from the products alone."""

    def fit(self, products, y, label_space, valid=None, *, seed=0, class_weight=None, context=None):
        self.label_space = label_space
        return self

    def get_state(self):
        return {}, {}

    @classmethod
    def from_state(cls, params, state, arrays, label_space):
        model = cls(**params)
        model.label_space = label_space
        return model


class Noise(_Stateless):
    """Useless input: confident probabilities drawn from each product's text hash, unrelated to its class."""

    def predict_proba(self, products):
        k = self.label_space.n_classes
        rows = [np.random.default_rng(zlib.crc32(t.encode())).dirichlet(np.full(k, 0.2)) for t in products.texts]
        proba = np.asarray(rows, np.float32).reshape(len(products), k)
        if self.label_space.is_multi:
            return proba * 0 + (proba > 1 / k)  # confident and wrong as often as not
        return proba / proba.sum(axis=1, keepdims=True)


class Picture(_Stateless):
    """An image model stand-in: the "image" "img-<class id>" shows the class; without one it cannot read
    the product and returns a confidently WRONG fallback row (all on the last class)."""

    label_formats = ("single", "path")

    def predict_proba_masked(self, products):
        k = self.label_space.n_classes
        images = products.images or [None] * len(products)
        mask = np.array([ref is not None for ref in images], dtype=bool)
        proba = np.full((len(products), k), 0.02 / (k - 1), np.float32)
        for row, ref in enumerate(images):
            proba[row, int(ref[len("img-"):]) if ref is not None else k - 1] = 0.98
        return proba, mask

    def predict_proba(self, products):
        return self.predict_proba_masked(products)[0]


class Picky(Picture):
    """A `Picture` that refuses to train without an image, as image-cnn does."""

    def fit(self, products, y, label_space, valid=None, *, seed=0, class_weight=None, context=None):
        if not any(ref is not None for ref in products.images or []):
            raise ConfigError(f"test-picky: none of the {len(products)} training products has an image")
        return super().fit(products, y, label_space, valid)


@pytest.fixture(autouse=True, scope="module")
def _doubles():
    """Register the doubles for this module only, so other tests (the model listing) never see them."""
    from prodcat import models

    doubles = {"test-noise": Noise, "test-picture": Picture, "test-picky": Picky}
    for name, cls in doubles.items():
        register(name)(cls)
    yield
    for name in doubles:
        models._REGISTRY.pop(name, None)


# --- data -----------------------------------------------------------------------


def _parts(label_format: str, seed: int = 0):
    """The tiny catalog as (space, train, valid, test), each part a (Products, targets) pair."""
    mapping = Categorizer(**FORMATS[label_format]).resolve_fields()
    catalog = catalog_from_frame(tiny_frame(seed=seed), mapping)
    space = LabelSpace.from_labels(catalog.labels, label_format)
    y = space.encode(catalog.labels)
    n = len(catalog)
    cuts = {"train": np.arange(0, n // 2), "valid": np.arange(n // 2, 3 * n // 4), "test": np.arange(3 * n // 4, n)}
    parts = {name: (catalog.products.take(idx), y[idx]) for name, idx in cuts.items()}
    return space, parts["train"], parts["valid"], parts["test"]


def _with_images(products: Products, y: np.ndarray, every: int = 2) -> Products:
    """The products with an "image" showing their class, except every `every`-th one."""
    images = [None if i % every == 0 else f"img-{c}" for i, c in enumerate(y)]
    return Products(texts=products.texts, fields=products.fields, images=images)


def _fit(params, label_format="single", valid=True, **fit_options):
    space, train, held, test = _parts(label_format)
    model = Ensemble(**params).fit(*train, space, held if valid else None, seed=0, **fit_options)
    return model, space, test


def _macro_f1(space, y, proba):
    from sklearn.metrics import f1_score

    decided = space.decide(proba)
    if space.is_multi:
        return f1_score(y, decided, average="macro", zero_division=0)
    return f1_score(y, decided, average="macro")


def _round_trip(model: Ensemble, space: LabelSpace) -> Ensemble:
    state, arrays = model.get_state()
    json.dumps(state, allow_nan=False)  # plain JSON data
    assert all(isinstance(a, np.ndarray) and a.dtype != object for a in arrays.values())
    assert all(k.startswith(("member0.", "member1.", "meta.")) for k in arrays)
    return get_model_class("ensemble").from_state(json.loads(json.dumps(model.get_params())), state, arrays, space)


# --- fit, predict, save, load ---------------------------------------------------------


@pytest.mark.parametrize("method", ["average", "stacking"])
@pytest.mark.parametrize("label_format", list(FORMATS))
def test_fit_predict_and_state_round_trip(method, label_format):
    model, space, (products, y) = _fit({**TEXT_MEMBERS, "method": method}, label_format)
    proba = model.predict_proba(products)
    assert proba.dtype == np.float32 and proba.shape == (len(products), space.n_classes)
    assert np.isfinite(proba).all() and (proba >= 0).all() and (proba <= 1).all()
    if label_format != "multi":
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert _macro_f1(space, y, proba) >= 0.8

    components = model.component_proba(products)
    assert list(components) == ["tfidf-linear", "bow"]
    assert all(c.shape == proba.shape for c in components.values())
    assert model.predict_proba_masked(products)[1] is None  # text members read every product

    report = model.fit_report_
    assert [m["member"] for m in report["members"]] == ["tfidf-linear", "bow"]
    assert all(0 <= m["valid_macro_f1"] <= 1 for m in report["members"]) and 0 <= report["valid_macro_f1"] <= 1
    if method == "average":
        assert sum(report["weights"].values()) == pytest.approx(1.0)
    else:
        assert all("oof_macro_f1" in m for m in report["members"])

    loaded = _round_trip(model, space)
    np.testing.assert_array_equal(loaded.predict_proba(products), proba)
    assert loaded.fit_report_ == report


@pytest.mark.parametrize("method, label_format", [("average", "single"), ("stacking", "multi"), ("stacking", "path")])
def test_categorizer_save_and_load(method, label_format, tmp_path):
    frame = tiny_frame()
    clf = Categorizer(model="ensemble", params={**TEXT_MEMBERS, "method": method}, quiet=True, seed=1,
                      **FORMATS[label_format])
    clf.fit(frame)
    assert clf.metrics_["test"]["macro_f1"] >= 0.8
    new = frame.drop(columns=["category", "leaf", "tags"]).head(20)
    proba = clf.predict_proba(new)
    clf.save(tmp_path / "model")
    loaded = Categorizer.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.predict_proba(new).to_numpy(), proba.to_numpy())
    assert loaded.predict(new) == clf.predict(new)
    assert loaded.manifest_["model"]["params"]["members"] == ["tfidf-linear", "bow"]


@pytest.mark.parametrize("method", ["average", "stacking"])
def test_multilabel_fit_report_scores_validation_as_the_manifest_does(method):
    # The manifest scores validation at the per-label cuts tuned there, which predictions use;
    # the fit report once scored the same products at 0.5 (0.85 against 1.0 here).
    clf = Categorizer(model="ensemble", params={**TEXT_MEMBERS, "method": method}, quiet=True, **FORMATS["multi"])
    clf.fit(tiny_frame(12))
    report = clf._fitted.fit_report_
    assert report["valid_macro_f1"] == pytest.approx(clf.metrics_["validation"]["macro_f1"], abs=1e-6)
    assert report["decisions"] == "per-label thresholds tuned on the products scored"
    assert "per-label thresholds tuned" in clf._fitted._summary_line()


@pytest.mark.parametrize("edit, named", [
    ({"member_params": {"bow": {**BOW, "dim": 16}}}, "member_params['bow']['dim'] is 16, but member 2 (bow) was "
                                                     "trained with 8 (model_state.json members[1].params)"),
    ({"method": "average", "weights": [0, 1]}, "model.params.weights [0.0, 1.0] do not match"),
])
def test_manifest_settings_that_contradict_the_saved_members_are_refused(edit, named):
    # The members' saved settings are what they were trained with; a hand-edited manifest
    # claiming others once loaded silently and described a model it is not.
    model, space, _ = _fit({**TEXT_MEMBERS, "weights": [3, 1]})
    state, arrays = model.get_state()
    params = {**json.loads(json.dumps(model.get_params())), **edit}
    with pytest.raises(ModelDirError) as caught:
        get_model_class("ensemble").from_state(params, state, arrays, space)
    assert named in str(caught.value) and "manifest.json model.params." in str(caught.value)
    assert "\n" not in str(caught.value)


def test_predict_refuses_an_ensemble_whose_manifest_contradicts_a_member_in_one_line(tmp_path, capsys):
    clf = Categorizer(model="ensemble", params=TEXT_MEMBERS, quiet=True, **FORMATS["single"])
    clf.fit(tiny_frame(12))
    clf.save(tmp_path / "model")
    manifest_path = tmp_path / "model" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["model"]["params"]["member_params"]["bow"]["epochs"] = 50
    manifest_path.write_text(json.dumps(manifest))
    (tmp_path / "new.csv").write_text("title,description\noxford shirt,a shirt\n")
    code, _, err = run(capsys, "predict", str(tmp_path / "model"), "--data", str(tmp_path / "new.csv"),
                       "--out", str(tmp_path / "out.csv"))
    assert code != 0 and "Traceback" not in err
    assert "member_params['bow']['epochs'] is 50, but member 2 (bow) was trained with 2" in err
    assert not (tmp_path / "out.csv").exists()


def test_empty_input_gives_an_empty_matrix():
    model, space, _ = _fit(TEXT_MEMBERS)
    assert model.predict_proba(Products.from_texts([])).shape == (0, space.n_classes)


# --- average -------------------------------------------------------------------------


def test_weights_favour_the_member_that_reads_something_useful():
    model, space, (products, y) = _fit({"members": ["test-noise", "tfidf-linear"]})
    noise_weight, text_weight = model.weights_
    assert text_weight > noise_weight and text_weight >= 0.7
    assert model.fit_report_["weights_from"] == "tuned on validation"
    noise_alone = model.component_proba(products)["test-noise"]
    assert _macro_f1(space, y, model.predict_proba(products)) > _macro_f1(space, y, noise_alone) + 0.3


def test_without_validation_the_members_weigh_the_same():
    model, _, _ = _fit({"members": ["test-noise", "tfidf-linear"]}, valid=False)
    np.testing.assert_allclose(model.weights_, [0.5, 0.5])
    assert model.fit_report_["weights_from"] == "equal (no validation split)"


def test_fixed_weights_are_kept_and_normalized():
    model, _, _ = _fit({"members": ["test-noise", "tfidf-linear"], "weights": [1, 3]})
    np.testing.assert_allclose(model.weights_, [0.25, 0.75])


def test_the_weight_grid_covers_the_simplex():
    for members, step, points in [(2, 0.05, 21), (3, 0.1, 66), (4, 0.25, 35)]:
        grid = simplex_grid(members, step)
        assert grid.shape == (points, members)
        np.testing.assert_allclose(grid.sum(axis=1), 1.0)
        assert len({tuple(row) for row in grid.round(6)}) == points
    # equal weights are on the grid of 2 members
    assert [0.5, 0.5] in simplex_grid(2, 0.05).round(6).tolist()


def test_one_lucky_product_does_not_buy_a_weak_member_weight():
    # Three frequent classes and a rare one with a single validation product. The
    # weak member is confidently wrong on a third of the frequent products but gets
    # the rare one, which the strong member misses. Between weights 0.3 and 0.55 on
    # the weak member the decisions are all right (validation macro-F1 1.0 against
    # 0.74), yet the weak member makes every other product less certain: a search on
    # macro-F1 chose 0.3 here. The Brier score sees the cost on all 37 products.
    y = np.array([0, 1, 2] * 12 + [3])
    n, k = len(y), 4
    strong = np.full((n, k), 0.04)
    strong[np.arange(n), y] = 0.88
    weak = np.full((n, k), 0.1)
    weak[np.arange(n), y] = 0.7
    wrong = np.arange(0, 36, 3)
    weak[wrong] = 0.1
    weak[wrong, (y[wrong] + 1) % 3] = 0.7
    strong[-1] = [0.62, 0.04, 0.04, 0.30]
    weak[-1] = [0.02, 0.02, 0.02, 0.94]
    strong_weight, weak_weight = tune_weights([strong, weak], [None, None], y, multi=False)
    assert weak_weight <= 0.1 < strong_weight


def test_complementary_members_share_the_weight():
    # Each member is sure on the half of the products the other cannot tell apart.
    y = np.array([0, 1, 2, 3] * 10)
    n = len(y)
    first, second = np.full((n, 4), 0.25), np.full((n, 4), 0.25)
    first[::2] = 0.02
    first[np.arange(0, n, 2), y[::2]] = 0.94
    second[1::2] = 0.02
    second[np.arange(1, n, 2), y[1::2]] = 0.94
    np.testing.assert_allclose(tune_weights([first, second], [None, None], y, multi=False), [0.5, 0.5])
    # multi-label targets: the same, the squared error summed over the classes
    y_multi = np.eye(4, dtype=np.uint8)[y]
    np.testing.assert_allclose(tune_weights([first, second], [None, None], y_multi, multi=True), [0.5, 0.5])


# --- masks: a product without an image falls back to its text -------------------------


def _picture_parts():
    space, (train, y_train), (held, y_held), (test, y_test) = _parts("single")
    return (space, (_with_images(train, y_train), y_train), (_with_images(held, y_held), y_held),
            (_with_images(test, y_test), y_test))


@pytest.mark.parametrize("weights", [None, [0.0, 1.0], [0.5, 0.5]])
def test_average_uses_only_the_members_that_read_the_product(weights):
    space, train, held, (test, y) = _picture_parts()
    model = Ensemble(members=["tfidf-linear", "test-picture"], weights=weights).fit(*train, space, held)
    proba, mask = model.predict_proba_masked(test)
    text = model.component_proba(test)["tfidf-linear"]
    no_image = np.array([ref is None for ref in test.images])
    assert no_image.any() and (~no_image).any()
    # the picture's (wrong) fallback rows count for nothing: those rows are the text member's
    np.testing.assert_allclose(proba[no_image], text[no_image], atol=1e-6)
    # with an image both count, as weighted
    w = model.weights_
    picture = model.component_proba(test)["test-picture"]
    np.testing.assert_allclose(proba[~no_image], w[0] * text[~no_image] + w[1] * picture[~no_image], atol=1e-6)
    # the OR of the masks: the text member reads everything
    assert mask is not None and mask.all()
    assert (proba.argmax(axis=1) == y).mean() >= 0.9


@pytest.mark.parametrize("members", [["tfidf-linear", "test-picture"], ["test-picture", "tfidf-linear"]])
def test_a_member_no_validation_product_lets_count_keeps_an_equal_weight(members, capsys):
    # Flat Brier along the photo member's weight: the grid's first point, (0, 1), once gave it all
    # the weight whenever it came second, so photos alone decided every product that had one.
    space, train, (held, y_held), _ = _picture_parts()
    photo_less = Products(texts=held.texts, images=[None] * len(held))
    model = Ensemble(members=members).fit(*train, space, (photo_less, y_held))
    np.testing.assert_allclose(model.weights_, [0.5, 0.5])
    assert model.fit_report_["untuned"] == ["test-picture"]
    assert "test-picture could read none of the" in capsys.readouterr().err


def test_average_proba_renormalizes_row_by_row():
    a = np.array([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1]], np.float32)
    b = np.array([[0.1, 0.9], [0.1, 0.9], [0.1, 0.9]], np.float32)
    mask_b = np.array([True, False, True])
    mask_a = np.array([True, True, False])
    out = average_proba([a, b], [mask_a, mask_b], np.array([0.25, 0.75]), multi=False)
    np.testing.assert_allclose(out, [[0.3, 0.7], [0.9, 0.1], [0.1, 0.9]], atol=1e-6)
    # nobody reads the product: the plain weights combine the fallbacks
    none = average_proba([a, b], [np.zeros(3, bool), np.zeros(3, bool)], np.array([0.25, 0.75]), multi=False)
    np.testing.assert_allclose(none[0], [0.3, 0.7], atol=1e-6)


def test_stacking_falls_back_to_text_and_learns_an_availability_indicator():
    space, train, held, (test, y) = _picture_parts()
    model = Ensemble(members=["tfidf-linear", "test-picture"], method="stacking").fit(*train, space, held)
    assert model._meta.indicators == [1]  # only the picture member ever misses a product
    proba, mask = model.predict_proba_masked(test)
    no_image = np.array([ref is None for ref in test.images])
    # the picture's fallback puts 0.98 on the last class; the text decides those rows
    assert (proba[no_image].argmax(axis=1) == y[no_image]).mean() >= 0.9
    assert (proba.argmax(axis=1) == y).mean() >= 0.9
    assert mask.all()
    loaded = _round_trip(model, space)
    np.testing.assert_array_equal(loaded.predict_proba(test), proba)


def _complementary(products: Products, y: np.ndarray) -> Products:
    """Half the products show their class only in the text, the other half only in the image."""
    texts = [f"item {i}" if i % 2 else text for i, text in enumerate(products.texts)]
    images = [f"img-{c}" if i % 2 else None for i, c in enumerate(y)]
    return Products(texts=texts, images=images)


@pytest.mark.parametrize("method", ["average", "stacking"])
def test_text_and_image_members_complete_each_other(method):
    space, (train, y_train), (held, y_held), (test, y) = _parts("single")
    train, held, test = _complementary(train, y_train), _complementary(held, y_held), _complementary(test, y)
    model = Ensemble(members=["tfidf-linear", "test-picture"], method=method).fit(train, y_train, space, (held, y_held))
    alone = {k: (p.argmax(axis=1) == y).mean() for k, p in model.component_proba(test).items()}
    combined = (model.predict_proba(test).argmax(axis=1) == y).mean()
    assert max(alone.values()) <= 0.75  # each member reads half the products
    assert combined >= 0.9


def test_only_masked_members_give_a_mask():
    space, train, held, (test, _) = _picture_parts()
    model = Ensemble(members=["test-picture", "test-picture"], weights=[1, 1]).fit(*train, space, held)
    proba, mask = model.predict_proba_masked(test)
    np.testing.assert_array_equal(mask, [ref is not None for ref in test.images])
    assert list(model.component_proba(test)) == ["test-picture", "test-picture#2"]


# --- stacking -------------------------------------------------------------------------


def test_stacking_beats_or_matches_the_worse_member():
    model, space, (products, y) = _fit({**TEXT_MEMBERS, "method": "stacking"})
    members = {k: _macro_f1(space, y, p) for k, p in model.component_proba(products).items()}
    assert _macro_f1(space, y, model.predict_proba(products)) >= min(members.values())


def test_stacking_learns_to_ignore_a_useless_member():
    model, space, (products, y) = _fit({"members": ["test-noise", "tfidf-linear"], "method": "stacking"})
    members = {k: _macro_f1(space, y, p) for k, p in model.component_proba(products).items()}
    assert members["test-noise"] < 0.5
    assert _macro_f1(space, y, model.predict_proba(products)) >= members["tfidf-linear"] - 0.05


def test_stacking_without_validation_is_not_calibrated():
    model, space, (products, _) = _fit({**TEXT_MEMBERS, "method": "stacking"}, valid=False)
    assert model._meta.calibration["temperature"] == 1.0
    np.testing.assert_allclose(model.predict_proba(products).sum(axis=1), 1.0, atol=1e-5)


def test_a_member_refusing_a_fold_says_it_is_the_fold_not_the_catalog():
    space, (products, y), held, _ = _parts("single")
    with_one_photo = Products(texts=products.texts, images=["img-0"] + [None] * (len(products) - 1))
    Ensemble(members=["tfidf-linear", "test-picky"]).fit(with_one_photo, y, space, held)  # average: one photo is enough
    with pytest.raises(ConfigError, match=r"^ensemble stacking fold \d/3 \(members trained on [\d,]+ of the "
                                          rf"{len(products)} training products\): test-picky: none of the"):
        Ensemble(members=["tfidf-linear", "test-picky"], method="stacking").fit(with_one_photo, y, space, held)


def test_folds_keep_duplicate_texts_together_and_every_class_in_training():
    texts = [f"red shirt {i}" for i in range(9)] + ["Red Shirt!", "red  shirt"] + [f"mug {i}" for i in range(9)]
    y = np.array([0] * 11 + [1] * 9)
    splits = grouped_folds(product_keys(texts), y, folds=3, seed=0, multi=False)
    assert len(splits) == 3
    held = np.concatenate([h for _, h in splits])
    assert sorted(held.tolist()) == list(range(20))  # each product held out exactly once
    for train_idx, held_idx in splits:
        assert {9, 10} <= set(held_idx.tolist()) or not {9, 10} & set(held_idx.tolist())
        assert set(y[train_idx].tolist()) == {0, 1}
        assert 5 <= len(held_idx) <= 8


def test_stacking_members_train_per_fold_in_their_own_folders(tmp_path):
    context = FitContext(logdir=tmp_path / "tb", checkpoint_dir=tmp_path / "ckpt", quiet=True)
    _fit({**TEXT_MEMBERS, "method": "stacking", "folds": 2}, context=context)
    runs = sorted(p.name for p in (tmp_path / "tb").iterdir())
    # bow trains with the trainer (TensorBoard); tfidf-linear trains in one pass and writes nothing
    assert runs == ["member-2-bow", "member-2-bow-fold-1", "member-2-bow-fold-2"]


def test_a_fold_missing_a_class_still_gives_every_column():
    # class "c" has a single text: the fold that holds it out trains without it
    texts = [f"shirt {i}" for i in range(8)] + [f"mug {i}" for i in range(8)] + ["lamp"]
    labels = [("a",)] * 8 + [("b",)] * 8 + [("c",)]
    space = LabelSpace.from_labels(labels, "single")
    model = Ensemble(**TEXT_MEMBERS, method="stacking").fit(Products.from_texts(texts), space.encode(labels), space)
    proba = model.predict_proba(Products.from_texts(["shirt 3", "mug 5"]))
    assert proba.shape == (2, 3)
    assert proba.argmax(axis=1).tolist() == [0, 1]


def test_stacking_weighs_members_only_on_classes_their_fold_had_seen():
    # "lamp", "sofa" and "vase" have one product each: held out, no member of
    # that fold knows the class. Those rows must not drag the member weights
    # down, and the final members (which know them) still predict them.
    texts = [f"shirt {i}" for i in range(8)] + [f"mug {i}" for i in range(8)] + ["lamp", "sofa", "vase"]
    labels = [("a",)] * 8 + [("b",)] * 8 + [("lamp",), ("sofa",), ("vase",)]
    space = LabelSpace.from_labels(labels, "single")
    model = Ensemble(**TEXT_MEMBERS, method="stacking").fit(Products.from_texts(texts), space.encode(labels), space)
    assert model.fit_report_["meta_rows"] == 16
    assert model._meta.arrays["active"].all()
    assert (model._meta.arrays["weights"] > 0.5).all()
    proba = model.predict_proba(Products.from_texts(["lamp", "sofa", "shirt 2"]))
    assert [space.classes[k] for k in proba.argmax(axis=1)] == ["lamp", "sofa", "a"]


# --- settings ----------------------------------------------------------------------------


def test_members_as_text_and_per_name_settings():
    model = Ensemble(members="tfidf-linear, tfidf-linear", member_params={"tfidf-linear#2": {"C": 0.1}})
    assert model.member_keys == ["tfidf-linear", "tfidf-linear#2"]
    assert model.get_params()["members"] == ["tfidf-linear", "tfidf-linear"]
    json.dumps(model.get_params())
    space, train, held, (test, _) = _parts("single")
    model.fit(*train, space, held)
    assert [m.get_params()["C"] for m in model.members_] == [1.0, 0.1]
    assert list(model.component_proba(test)) == ["tfidf-linear", "tfidf-linear#2"]


def test_label_formats_are_those_every_member_can_learn():
    assert Ensemble(members=["tfidf-linear", "test-picture"]).label_formats == ("single", "path")
    space, (products, y), _, _ = _parts("multi")
    with pytest.raises(ConfigError, match="multi"):
        Ensemble(members=["tfidf-linear", "test-picture"]).fit(products, y, space)


@pytest.mark.parametrize("setting", [{"loss": "focal"}, {"sampler": "balanced"}])
@pytest.mark.parametrize("members, key", [(["test-noise", "bow"], "bow"), (["test-noise", "bow", "bow"], "bow#2")])
def test_a_member_setting_the_label_format_refuses_fails_before_any_member_trains(monkeypatch, setting, members, key):
    # It used to train the members before it (minutes with a neural one), then refuse at that member.
    trained = []
    monkeypatch.setattr(Noise, "fit", lambda self, *args, **kwargs: trained.append(self) or self)
    model = Ensemble(members=members, member_params={key: {**BOW, **setting}})
    space, train, held, _ = _parts("multi")
    name, value = next(iter(setting.items()))
    prefix = "bow: " if key == "bow" else "ensemble member bow#2: bow: "
    with pytest.raises(ConfigError, match=f"^{prefix}{name}='{value}' ") as error:
        model.fit(*train, space, held)
    assert "\n" not in str(error.value)
    assert trained == []
    model.check_before_fit("single")  # single and path labels take them


@pytest.mark.parametrize(
    "params, message",
    [
        ({"members": ["tfidf-linear"]}, "at least 2"),
        ({"members": "tfidf-linear,"}, "at least 2"),
        ({"members": 3}, "list of model names"),
        ({"members": ["tfidf-linear", "nope"]}, "unknown model 'nope'"),
        ({"members": ["tfidf-linear", "ensemble"]}, "cannot be a member"),
        ({"members": ["tfidf-linear", "onnx"]}, "cannot be trained"),
        ({"method": "vote"}, "method must be"),
        ({"folds": 1}, "folds must be"),
        ({"folds": True}, "folds must be"),
        ({"weights": [1.0]}, "weights must be 2"),
        ({"weights": [-1, 2]}, "weights must be 2"),
        ({"weights": [0, 0]}, "weights must be 2"),
        ({"weights": [1, 1], "method": "stacking"}, "'average' only"),
        ({"member_params": {"bert": {}}}, "not a member"),
        ({"member_params": {"bow": 3}}, "must be a dict"),
        ({"member_params": {"tfidf-linear": {"C": -1}}}, "C must be a positive number"),
        ({"member_params": {"bow": {"dimension": 8}}}, "unknown setting"),
        ({"member_params": {"bow": {"dim": object()}}}, "plain data"),
        ({"voting": "soft"}, "unknown setting"),
    ],
)
def test_bad_settings_are_one_line_config_errors(params, message):
    with pytest.raises(ConfigError, match=message) as error:
        Ensemble(**params)
    assert "\n" not in str(error.value)


def test_unknown_member_lists_the_models():
    with pytest.raises(UnknownModelError, match="available:"):
        Ensemble(members="tfidf-linear,nope")
