"""TfidfLinear on tiny synthetic catalogs: shapes, learning, calibration, saving.

Defaults were chosen on the real catalogs (grouped 80/20 split by normalised
title on fashion articleType, 10% of train as valid; stratified 80/20 on
flipkart level 1); those measurements live in the model's report, not here,
so these tests stay fast.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from prodcat.catalog.products import Products
from prodcat.errors import ConfigError
from prodcat.labels import LabelSpace
from prodcat.models import create_model, get_model_class
from prodcat.models.linear import TfidfLinear

KINDS = {
    "shirt": ["cotton shirt", "linen shirt", "formal shirt", "check shirt"],
    "mug": ["coffee mug", "ceramic mug", "tea mug", "travel mug"],
    "shoe": ["running shoes", "leather shoes", "canvas sneakers shoes", "sports shoes"],
}
COLOURS = ["red", "blue", "green", "black", "white"]


def catalog(n_per_class: int = 20, seed: int = 0) -> tuple[list[str], list[str]]:
    """Titles whose class is given away by a type word, with noise words."""
    rng = np.random.default_rng(seed)
    texts, names = [], []
    for name, stems in KINDS.items():
        for _ in range(n_per_class):
            texts.append(f"{rng.choice(['Acme', 'Zeta', 'Nova'])} {rng.choice(COLOURS)} {rng.choice(stems)}")
            names.append(name)
    return texts, names


def single_data(n_per_class: int = 20, seed: int = 0):
    texts, names = catalog(n_per_class, seed)
    space = LabelSpace.from_labels([(n,) for n in names], "single")
    return Products.from_texts(texts), space.encode([(n,) for n in names]), space


def path_data(seed: int = 0):
    texts, names = catalog(seed=seed)
    top = {"shirt": "Apparel", "shoe": "Footwear", "mug": "Home"}
    labels = [(top[n], n) for n in names]
    space = LabelSpace.from_labels(labels, "path")
    return Products.from_texts(texts), space.encode(labels), space


def multi_data(seed: int = 0):
    texts, names = catalog(seed=seed)
    # a label from the type word and one from the colour word
    labels = [tuple(sorted({n, t.split()[1]})) for t, n in zip(texts, names)]
    space = LabelSpace.from_labels(labels, "multi")
    return Products.from_texts(texts), space.encode(labels), space


def split(products: Products, y: np.ndarray, every: int = 4):
    idx = np.arange(len(products))
    valid = idx % every == 0
    return (products.take(idx[~valid]), y[~valid]), (products.take(idx[valid]), y[valid])


def roundtrip(model: TfidfLinear, tmp_path) -> TfidfLinear:
    """Save and load as a model directory does: JSON text + safetensors file."""
    state, arrays = model.get_state()
    save_file(arrays, str(tmp_path / "weights.safetensors"))
    params = json.loads(json.dumps(model.get_params()))
    state = json.loads(json.dumps(state))
    space = LabelSpace.from_dict(json.loads(json.dumps(model.label_space.to_dict())))
    return TfidfLinear.from_state(params, state, load_file(str(tmp_path / "weights.safetensors")), space)


@pytest.mark.parametrize("make", [single_data, path_data], ids=["single", "path"])
def test_single_and_path_shapes_and_row_sums(make):
    products, y, space = make()
    (tr, ytr), valid = split(products, y)
    proba = TfidfLinear().fit(tr, ytr, space, valid).predict_proba(products)
    assert proba.dtype == np.float32
    assert proba.shape == (len(products), space.n_classes)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert (proba >= 0).all()


def test_multi_shapes_and_independent_probabilities():
    products, y, space = multi_data()
    (tr, ytr), valid = split(products, y)
    model = TfidfLinear().fit(tr, ytr, space, valid)
    proba = model.predict_proba(products)
    assert proba.dtype == np.float32 and proba.shape == y.shape
    assert ((proba >= 0) & (proba <= 1)).all()
    # one type and one colour per product: rows do not sum to 1
    assert not np.allclose(proba.sum(axis=1), 1.0)
    decided = space.decide(proba)
    assert (decided == y).mean() > 0.95
    assert model.get_state()[0]["calibration"]["kind"] == "platt"


def test_learns_an_easy_separable_problem():
    products, y, space = single_data(seed=1)
    test_products, y_test, _ = single_data(n_per_class=10, seed=2)
    model = TfidfLinear().fit(products, y, space, seed=0)
    assert (space.decide(model.predict_proba(test_products)) == y_test).all()


def test_calibration_gives_non_degenerate_confidences():
    # Noisy labels: a fifth of the products carry a wrong class, so honest
    # confidences must sit well below 1 yet above chance.
    products, y, space = single_data(n_per_class=40)
    rng = np.random.default_rng(0)
    noisy = y.copy()
    flip = rng.random(len(y)) < 0.2
    noisy[flip] = (y[flip] + rng.integers(1, 3, flip.sum())) % 3
    (tr, ytr), valid = split(products, noisy)
    model = TfidfLinear().fit(tr, ytr, space, valid)
    top = model.predict_proba(products).max(axis=1)
    assert 0.5 < top.mean() < 0.97
    assert top.std() > 1e-3
    # calibration is a temperature: the argmax is the SVM's
    raw = model.decision_function(products)
    assert (raw.argmax(axis=1) == model.predict_proba(products).argmax(axis=1)).all()


def test_without_valid_calibrates_out_of_fold():
    products, y, space = single_data()
    model = TfidfLinear().fit(products, y, space, valid=None)
    calibration = model.get_state()[0]["calibration"]
    assert calibration["fitted_on"] != "default"
    assert 0 < calibration["temperature"] < 100


def test_tiny_and_lopsided_training_sets_still_fit():
    # a class with one product, a class never seen in training, two products total per fold
    space = LabelSpace("single", ["a", "b", "c", "unseen"])
    products = Products.from_texts(["alpha one", "alpha two", "alpha three", "beta one", "gamma"])
    y = np.array([0, 0, 0, 1, 2])
    proba = TfidfLinear().fit(products, y, space).predict_proba(products)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert (proba[:, 3] == 0).all()


def test_class_weight_balanced_is_accepted():
    products, y, space = single_data()
    keep = np.r_[np.arange(20), np.arange(20, 25), np.arange(40, 60)]  # "mug" is rare
    model = TfidfLinear().fit(products.take(keep), y[keep], space, class_weight="balanced")
    assert model.predict_proba(products).shape == (len(products), 3)
    with pytest.raises(ConfigError):
        TfidfLinear().fit(products, y, space, class_weight="heavy")


def test_a_min_df_no_term_reaches_is_one_line_naming_it():
    # Every term pruned: scikit-learn's own error ("0 feature(s)") names neither the setting nor the fix.
    products = Products.from_texts(["oxford shirt", "chef knife", "linen duvet", "lace sneaker"])
    space = LabelSpace("single", ["a", "b"])
    with pytest.raises(ConfigError, match=r"^tfidf-linear: no word or character n-gram is in at least min_df=50 of "
                                          r"the 4 training texts; lower min_df$"):
        TfidfLinear(min_df=50).fit(products, np.array([0, 1, 0, 1]), space)


def test_unknown_and_bad_settings_raise_config_error():
    with pytest.raises(ConfigError, match=r"'ngram'.*known: .*word_ngrams"):
        TfidfLinear(ngram=(1, 2))
    with pytest.raises(ConfigError, match="C must be"):
        TfidfLinear(C=-1)
    with pytest.raises(ConfigError, match="char_ngrams"):
        TfidfLinear(char_ngrams=(5, 2))


def test_registered_under_its_name():
    assert get_model_class("tfidf-linear") is TfidfLinear
    assert isinstance(create_model("tfidf-linear", C=2.0), TfidfLinear)


def test_get_params_is_json_and_complete():
    params = TfidfLinear(word_ngrams=(1, 3)).get_params()
    again = json.loads(json.dumps(params))
    assert again["word_ngrams"] == [1, 3]
    assert {"char_ngrams", "C", "min_df", "word_max_features", "char_max_features", "sublinear_tf"} <= set(again)
    # lists from JSON are accepted back
    assert TfidfLinear(**again).get_params() == params


@pytest.mark.parametrize("make", [single_data, path_data, multi_data], ids=["single", "path", "multi"])
def test_state_roundtrip_gives_identical_probabilities(make, tmp_path):
    products, y, space = make()
    (tr, ytr), valid = split(products, y)
    model = TfidfLinear(batch_size=7).fit(tr, ytr, space, valid)
    unseen = Products.from_texts(["Zeta purple shirt", "", "completely new words", "MUG mug mug"])
    loaded = roundtrip(model, tmp_path)
    for batch in (products, unseen):
        np.testing.assert_allclose(loaded.predict_proba(batch), model.predict_proba(batch), rtol=0, atol=1e-6)
    state, arrays = model.get_state()
    assert arrays["coef"].dtype == np.float32
    assert arrays["coef"].shape == (space.n_classes, state["n_features"])


def test_same_seed_same_model():
    products, y, space = single_data()
    a = TfidfLinear().fit(products, y, space, seed=3).predict_proba(products)
    b = TfidfLinear().fit(products, y, space, seed=3).predict_proba(products)
    np.testing.assert_array_equal(a, b)


def test_batches_do_not_change_results():
    products, y, space = single_data()
    model = TfidfLinear(batch_size=5).fit(products, y, space)
    whole = TfidfLinear.from_state({**model.get_params(), "batch_size": 10_000}, *model.get_state(), space)
    np.testing.assert_allclose(model.predict_proba(products), whole.predict_proba(products), atol=1e-6)


def test_texts_without_known_terms_between_known_ones():
    # Rows with no feature at all, last in the batch, once broke the row norms.
    from prodcat.catalog.products import Products
    from prodcat.labels import LabelSpace
    from prodcat.models.linear import TfidfLinear

    space = LabelSpace("single", ["mug", "shirt"])
    texts = ["blue cotton shirt", "coffee mug", "linen shirt", "tea mug"] * 3
    y = space.encode([("shirt",), ("mug",), ("shirt",), ("mug",)] * 3)
    model = TfidfLinear().fit(Products.from_texts(texts), y, space)
    proba = model.predict_proba(Products.from_texts(["shirt", "", "§§", "mug", "", "¤"]))
    assert proba.shape == (6, 2)
    assert proba[0].argmax() == 1 and proba[3].argmax() == 0
    np.testing.assert_allclose(proba[1], proba[2])  # nothing known: same answer


@pytest.mark.parametrize("class_weight", [None, "balanced"])
def test_one_vs_rest_on_threads_finds_liblinears_own_multiclass_solution(class_weight):
    # The binary SVMs must be weighted as liblinear weighs its own one-vs-rest
    # (a class's products by the class's weight, the rest by 1), else the
    # balanced model quietly becomes another model.
    import warnings

    from sklearn.svm import LinearSVC

    from prodcat.models.linear import _Block, _Features, _fit_multiclass, resolve_params

    texts, names = catalog(n_per_class=30)
    names = names[:70] + names[80:]  # classes of unequal size, so the weights differ
    texts = texts[:70] + texts[80:]
    y = np.unique(names, return_inverse=True)[1]
    p = resolve_params({})
    learned = [_Block.learn(a, texts, p) for a in ("word", "char_wb")]
    x = _Features([b for b, _ in learned]).stack([m for _, m in learned])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        own = LinearSVC(C=p["C"], class_weight=class_weight, max_iter=p["max_iter"], random_state=0).fit(x, y)
    coef, intercept, _ = _fit_multiclass(x, y, 3, p, 0, class_weight)
    np.testing.assert_allclose(coef, own.coef_, atol=1e-3)
    np.testing.assert_allclose(intercept, own.intercept_, atol=1e-3)


def test_training_features_are_those_prediction_computes():
    from prodcat.models.linear import _Block, _Features, resolve_params

    texts, _ = catalog()
    p = resolve_params({})
    learned = [_Block.learn(a, texts, p) for a in ("word", "char_wb")]
    features = _Features([b for b, _ in learned])
    counted_once = features.stack([m for _, m in learned])
    again = features.transform(texts)
    assert (counted_once != again).nnz == 0 and counted_once.dtype == again.dtype == np.float32


@pytest.mark.parametrize("make", [single_data, multi_data], ids=["single", "multi"])
def test_the_fit_does_not_depend_on_how_many_cores_run_it(monkeypatch, make):
    # Threads sharing liblinear's one random generator gave a seed's model
    # other weights from run to run; worker processes each reseed their own.
    from prodcat.models import linear

    products, y, space = make()
    monkeypatch.setattr(linear, "PARALLEL_MIN_WORK", 0)  # a tiny catalog would fit in one process
    fitted = {}
    for cores in (1, 3, 3):
        monkeypatch.setattr(linear, "_cores", lambda cores=cores: cores)
        proba = TfidfLinear().fit(products, y, space, seed=3).predict_proba(products)
        fitted.setdefault(cores, []).append(proba)
    np.testing.assert_array_equal(fitted[1][0], fitted[3][0])
    np.testing.assert_array_equal(fitted[3][0], fitted[3][1])


AWKWARD_TEXTS = [
    "", " ", "a", "İstanbul İ ı", "ﬁ ligature ǅ ß", "café  CAFÉ\u00a0mug", "tab\tsep\nnew\rline\x0bvt\x0c",
    "\u2003em\u2009thin\u3000ideo", "x\x1cfs\x1dgs", "  lead trail  ", "日本語 テキスト", "t-shirt T Shirts tshirt",
    "blue blue blue shirt shirt", "Acme red cotton shirt", "zero\u200bwidth",
]


@pytest.mark.parametrize("params", [{}, {"strip_accents": "unicode"}, {"lowercase": False},
                                    {"char_ngrams": [1, 3], "word_ngrams": [1, 3]}, {"char_ngrams": [4, 6]},
                                    {"word_ngrams": [2, 2], "char_max_features": 40}])
def test_prediction_counts_terms_as_scikit_learns_vectorizer_does(params):
    # Prediction counts n-grams itself (faster than CountVectorizer); a model's
    # features must stay the ones it was trained on, to the last bit.
    from prodcat.models.linear import _Block, resolve_params

    texts, _ = catalog()
    p = resolve_params(params)
    for analyzer in ("word", "char_wb"):
        block, _ = _Block.learn(analyzer, texts + AWKWARD_TEXTS, p)
        for batch in (AWKWARD_TEXTS, texts + AWKWARD_TEXTS, []):
            own = block.counts(batch)
            theirs = block._counter.transform(batch).tocsr()
            theirs.sort_indices()
            assert own.shape == theirs.shape and own.dtype == theirs.dtype == np.float32
            assert own.has_canonical_format
            np.testing.assert_array_equal(own.indptr, theirs.indptr)
            np.testing.assert_array_equal(own.indices, theirs.indices)
            np.testing.assert_array_equal(own.data, theirs.data)
