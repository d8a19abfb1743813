"""bow: hashed n-grams that are the same in every process, and texts of unseen words."""

import os
import subprocess
import sys

import numpy as np
import pytest

from prodcat.catalog.products import Products
from prodcat.errors import ConfigError
from prodcat.labels import LabelSpace
from prodcat.models.bow import BagOfNgrams, hashed_ngrams

TEXTS = ["Men's Slim-Fit Cotton SHIRT", "café au lait mug", "", "  !!  ", "t-shirt tshirt"]
FAST = dict(dim=16, epochs=15, batch_size=8, lr=0.05, num_threads=1)


def test_ngram_counts_follow_fasttext():
    hashes, offsets = hashed_ngrams(["ab", "ab cd", "", "!?"], word_ngrams=2, minn=2, maxn=5)
    counts = np.diff(offsets).tolist()
    # "ab": the word + "<a" "ab" "b>" + "<ab" "ab>" + "<ab>"; "ab cd": 2 words, 1 bigram, 2 x 6 char n-grams
    assert counts == [7, 15, 0, 0]
    first, second = set(hashes[0:7].tolist()), set(hashes[7:22].tolist())
    assert first < second  # "ab" hashes the same wherever it appears


def test_case_punctuation_and_spacing_do_not_matter():
    hashes, offsets = hashed_ngrams(["Red shirt", "red  SHIRT!", "shirt red"])
    bags = [sorted(hashes[offsets[i] : offsets[i + 1]].tolist()) for i in range(3)]
    assert bags[0] == bags[1]
    assert bags[0] != bags[2]  # word order matters through the bigram only
    assert len(set(bags[0]) ^ set(bags[2])) == 2


def test_hashes_are_the_same_in_another_process():
    here, _ = hashed_ngrams(TEXTS)
    code = (
        "import sys, json; from prodcat.models.bow import hashed_ngrams; "
        "h, _ = hashed_ngrams(json.loads(sys.argv[1])); print(','.join(map(str, h.tolist())))"
    )
    import json

    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # Python's own str hash would change with it
    out = subprocess.run([sys.executable, "-c", code, json.dumps(TEXTS)], capture_output=True, text=True, env=env,
                         check=True).stdout.strip()
    assert [int(v) for v in out.split(",")] == here.tolist()


def _fit(texts, labels, **params):
    space = LabelSpace.from_labels([(label,) for label in labels], "single")
    y = space.encode([(label,) for label in labels])
    return BagOfNgrams(**{**FAST, **params}).fit(Products.from_texts(texts), y, space, seed=0), space


def test_unseen_words_get_the_prior_and_misspellings_their_class():
    texts = ["cotton shirt", "linen shirt", "oxford shirt", "coffee mug", "tea mug", "ceramic mug"] * 4
    labels = ["shirt"] * 3 + ["mug"] * 3
    model, space = _fit(texts, labels * 4)
    proba = model.predict_proba(Products.from_texts(["zzz qqq", "qqqq", "", "shirts", "mugg"]))
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    # nothing known: all three unseen texts get one and the same answer (the output bias)
    np.testing.assert_allclose(proba[0], proba[1], atol=1e-7)
    np.testing.assert_allclose(proba[0], proba[2], atol=1e-7)
    # unseen words that share character n-grams with known ones
    assert space.classes[proba[3].argmax()] == "shirt"
    assert space.classes[proba[4].argmax()] == "mug"


def test_only_seen_buckets_get_rows_and_state_round_trips():
    texts = ["cotton shirt", "coffee mug"] * 6
    model, space = _fit(texts, ["shirt", "mug"] * 6, epochs=3)
    hashes, _ = hashed_ngrams(texts[:2])
    expected_rows = len(np.unique(hashes >> np.uint64(64 - 22)))
    state, arrays = model.get_state()
    assert arrays["embedding.weight"].shape == (expected_rows, 16)
    assert all(a.dtype == np.float32 for a in arrays.values())
    again = BagOfNgrams.from_state(model.get_params(), state, arrays, space)
    probe = Products.from_texts(["linen shirt", "tea mug", "never seen"])
    np.testing.assert_array_equal(again.predict_proba(probe), model.predict_proba(probe))


def test_min_count_drops_rare_ngrams():
    texts = ["cotton shirt", "cotton shirt", "velvet mug", "coffee mug"]
    common, _ = _fit(texts, ["shirt", "shirt", "mug", "mug"], epochs=1, min_count=2)
    every, _ = _fit(texts, ["shirt", "shirt", "mug", "mug"], epochs=1)
    assert 0 < len(common.seen_buckets) < len(every.seen_buckets)


@pytest.mark.parametrize(
    "params, message",
    [({"buckets": 1000}, "buckets must be a power of two"), ({"maxn": 1}, "maxn"),
     ({"colour": 1}, "unknown setting.*'colour'"), ({"dim": "big"}, "dim must be an integer"),
     ({"dropout": 1.0}, "dropout")],
)
def test_bad_settings_are_config_errors(params, message):
    with pytest.raises(ConfigError, match=message):
        BagOfNgrams(**params)
