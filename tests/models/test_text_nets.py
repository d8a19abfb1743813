"""lstm / cnn / transformer: padding invariance, encoding, settings, learning, saving as data.

The contract test runs all three through the facade on every label format;
these tests check what is particular to word models, on tiny networks so
they take seconds. Accuracy on real catalogs is measured by benchmarks, not here.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from prodcat.catalog.products import Products
from prodcat.errors import ConfigError, ModelDirError
from prodcat.labels import LabelSpace
from prodcat.models import FitContext, create_model, get_model_class
from prodcat.models.text_nets import (
    MAX_AUTO_LENGTH,
    MIN_AUTO_LENGTH,
    CNNNet,
    LSTMNet,
    TransformerNet,
)
from prodcat.models.vocab import PAD_ID, UNK_ID, Vocabulary
from prodcat.models.word_vectors import lsa_word_vectors

NETWORKS = {
    "lstm-max": lambda: LSTMNet(40, 3, embedding_dim=8, hidden_size=8, dense_size=8),
    "lstm-last-2-layers": lambda: LSTMNet(40, 3, embedding_dim=8, hidden_size=8, num_layers=2, pooling="last"),
    "lstm-one-direction": lambda: LSTMNet(40, 3, embedding_dim=8, hidden_size=8, bidirectional=False),
    "cnn": lambda: CNNNet(40, 3, embedding_dim=8, filters=8, kernel_sizes=(2, 3, 5)),
    "transformer": lambda: TransformerNet(40, 3, max_positions=16, d_model=16, num_heads=2, feedforward_size=32),
}

# Tiny settings: every model trains on the data below in about a second.
TINY = {
    "lstm": {"embedding_dim": 16, "hidden_size": 16, "dense_size": 16},
    "cnn": {"embedding_dim": 16, "filters": 16, "kernel_sizes": [1, 2]},
    "transformer": {"d_model": 16, "num_heads": 2, "feedforward_size": 32},
}
QUIET = FitContext(device="cpu", quiet=True)
TRAIN = {"epochs": 12, "batch_size": 8, "lr": 2e-2, "dropout": 0.0, "num_threads": 1}

KINDS = {
    "shirt": ["cotton shirt", "linen shirt", "formal shirt", "check shirt"],
    "mug": ["coffee mug", "ceramic mug", "tea mug", "travel mug"],
    "shoe": ["running shoes", "leather shoes", "canvas shoes", "sports shoes"],
}


def catalog(n_per_class: int, seed: int) -> tuple[Products, list[tuple[str, ...]]]:
    """Titles whose class is given away by a type word, with a brand and a colour as noise."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for name, stems in KINDS.items():
        for _ in range(n_per_class):
            brand, colour = rng.choice(["Acme", "Zeta", "Nova"]), rng.choice(["red", "blue", "green", "black"])
            texts.append(f"{brand} {colour} {rng.choice(stems)}")
            labels.append((name,))
    return Products.from_texts(texts), labels


def fitted(name: str, **params):
    products, labels = catalog(12, seed=0)
    space = LabelSpace.from_labels(labels, "single")
    valid, valid_labels = catalog(3, seed=1)
    model = create_model(name, **{**TINY[name], **TRAIN, **params})
    model.fit(products, space.encode(labels), space, valid=(valid, space.encode(valid_labels)), seed=0, context=QUIET)
    return model, space


@pytest.mark.parametrize("key", list(NETWORKS))
def test_padding_does_not_change_a_products_logits(key):
    torch.manual_seed(0)
    net = NETWORKS[key]().eval()
    short = torch.tensor([[5, 6, 7]])
    alone = net(ids=short, lengths=torch.tensor([3]))
    # Beside a longer neighbour the short product is padded with 7 zeros.
    batch = torch.tensor([[5, 6, 7] + [PAD_ID] * 7, list(range(10, 20))])
    with_neighbour = net(ids=batch, lengths=torch.tensor([3, 10]))
    torch.testing.assert_close(with_neighbour[:1], alone, atol=1e-5, rtol=0)
    # ... and the neighbour's logits differ, so the comparison is not vacuous.
    assert not torch.allclose(with_neighbour[1], alone[0], atol=1e-3)


def test_the_transformer_refuses_a_sequence_longer_than_its_position_table():
    net = TransformerNet(40, 3, max_positions=4, d_model=16, num_heads=2).eval()
    with pytest.raises(ValueError, match="max_positions=4"):
        net(ids=torch.ones(1, 5, dtype=torch.long), lengths=torch.tensor([5]))


@pytest.mark.parametrize("name", ["lstm", "cnn", "transformer"])
def test_learns_predicts_and_reloads_from_plain_data(name):
    model, space = fitted(name)
    probe, probe_labels = catalog(4, seed=2)
    proba = model.predict_proba(probe)
    assert proba.dtype == np.float32 and proba.shape == (len(probe), space.n_classes)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert (proba.argmax(axis=1) == space.encode(probe_labels)).mean() >= 0.9

    state, arrays = model.get_state()
    restored_state = json.loads(json.dumps(state))  # plain JSON, no objects
    assert restored_state["preprocessor"]["vocabulary"]["tokens"][:2] == ["<pad>", "<unk>"]
    assert all(isinstance(a, np.ndarray) for a in arrays.values())
    params = json.loads(json.dumps(model.get_params()))
    again = get_model_class(name).from_state(params, restored_state, arrays, space)
    np.testing.assert_allclose(again.predict_proba(probe), proba, atol=1e-6)
    assert model.batch_size_ == again.batch_size_ == TRAIN["batch_size"]


def test_a_batch_size_chosen_from_the_data_is_kept_with_the_model():
    products, labels = catalog(12, seed=0)
    space = LabelSpace.from_labels(labels, "single")
    model = create_model("lstm", **TINY["lstm"], **{**TRAIN, "epochs": 1, "batch_size": None})
    model.fit(products, space.encode(labels), space, context=QUIET)
    state, arrays = model.get_state()
    again = get_model_class("lstm").from_state(model.get_params(), json.loads(json.dumps(state)), arrays, space)
    assert model.get_params()["batch_size"] is None
    assert model.batch_size_ == again.batch_size_ == 16


def test_vocabulary_comes_from_training_products_only():
    products, labels = catalog(12, seed=0)
    space = LabelSpace.from_labels(labels, "single")
    # A brand seen only in validation must not get an id: the model never learned it.
    valid = Products.from_texts(["Zorblax red shirt"] * 3 + ["Zorblax tea mug"] * 3 + ["Zorblax sports shoes"] * 3)
    valid_y = space.encode([("shirt",)] * 3 + [("mug",)] * 3 + [("shoe",)] * 3)
    model = create_model("cnn", **TINY["cnn"], **{**TRAIN, "epochs": 1})
    model.fit(products, space.encode(labels), space, valid=(valid, valid_y), context=QUIET)
    assert "zorblax" not in model.vocabulary
    assert "shoes" in model.vocabulary


def test_encoding_truncates_and_never_yields_an_empty_sequence():
    model, _ = fitted("lstm", max_length=2)
    examples = model.encode(Products.from_texts(["Acme red cotton shirt", "", "!!! ???", "qwertyuiop"]))
    assert [len(e["ids"]) for e in examples] == [2, 1, 1, 1]
    assert examples[0]["ids"] == [model.vocabulary.id("acme"), model.vocabulary.id("red")]
    assert examples[1]["ids"] == examples[2]["ids"] == examples[3]["ids"] == [UNK_ID]
    batch = model.collate(examples)
    assert batch["ids"].tolist() == [examples[0]["ids"], [UNK_ID, PAD_ID], [UNK_ID, PAD_ID], [UNK_ID, PAD_ID]]
    assert batch["lengths"].tolist() == [2, 1, 1, 1]
    # Empty and long texts alike get probabilities.
    proba = model.predict_proba(Products.from_texts(["", "Acme " * 500 + "shirt"]))
    assert np.isfinite(proba).all()


@pytest.mark.parametrize("name", ["lstm", "transformer"])
def test_word_dropout_hides_training_words_only(name):
    model, _ = fitted(name, word_dropout=0.5)
    examples = model.encode(Products.from_texts(["Acme red cotton shirt"] * 50 + ["Nova blue mug"] * 50))
    plain = model.collate(examples)
    torch.manual_seed(0)
    noisy = model.collate_train(examples)
    torch.manual_seed(0)
    assert torch.equal(model.collate_train(examples)["ids"], noisy["ids"]), "the trainer's seed must fix the draw"
    assert torch.equal(noisy["lengths"], plain["lengths"])
    real = plain["ids"] != PAD_ID
    changed = noisy["ids"] != plain["ids"]
    # Only real words change, and only into <unk>; padding stays padding.
    assert (noisy["ids"][changed] == UNK_ID).all() and not changed[~real].any()
    assert 0.35 < changed[real].float().mean() < 0.65
    # Predicting never drops a word.
    assert torch.equal(model.collate(examples)["ids"], plain["ids"])
    assert np.isfinite(model.predict_proba(Products.from_texts(["Acme red cotton shirt"]))).all()


def test_without_word_dropout_a_training_batch_is_the_prediction_batch():
    model, _ = fitted("cnn")
    examples = model.encode(Products.from_texts(["Acme red cotton shirt", "Nova blue mug"]))
    assert torch.equal(model.collate_train(examples)["ids"], model.collate(examples)["ids"])


def test_max_length_is_chosen_from_the_training_lengths_when_not_given():
    model = create_model("transformer", **TINY["transformer"], **{**TRAIN, "epochs": 1})
    lengths = [3] * 90 + [40] * 10  # 95th percentile: 40 words
    texts = [" ".join(["shirt"] * n) if i % 2 else " ".join(["mug"] * n) for i, n in enumerate(lengths)]
    labels = [("shirt",) if i % 2 else ("mug",) for i in range(len(texts))]
    space = LabelSpace.from_labels(labels, "single")
    model.fit(Products.from_texts(texts), space.encode(labels), space, context=QUIET)
    assert model.max_length_ == 40
    assert model.network.position_embedding.num_embeddings == 40
    assert MIN_AUTO_LENGTH <= 40 <= MAX_AUTO_LENGTH

    short = create_model("cnn", **TINY["cnn"], **{**TRAIN, "epochs": 1})
    short.fit(Products.from_texts(["shirt", "mug"] * 5), space.encode([("shirt",), ("mug",)] * 5), space, context=QUIET)
    assert short.max_length_ == MIN_AUTO_LENGTH


def test_multi_label_and_path_targets_train():
    products, labels = catalog(8, seed=0)
    colours = [tuple(sorted({lab[0], text.split()[1]})) for text, lab in zip(products.texts, labels)]
    space = LabelSpace.from_labels(colours, "multi")
    # 20 epochs: at 12 both starts sit at the 0.9 bar (random 0.91, LSA 0.90); at 20, 0.95 and 0.99.
    model = create_model("lstm", **TINY["lstm"], **{**TRAIN, "epochs": 20})
    model.fit(products, space.encode(colours), space, seed=0, context=QUIET)
    proba = model.predict_proba(products)
    assert proba.shape == (len(products), space.n_classes)
    assert ((proba > 0.5) == space.encode(colours).astype(bool)).mean() >= 0.9

    paths = [("Apparel" if lab[0] != "mug" else "Home", lab[0]) for lab in labels]
    path_space = LabelSpace.from_labels(paths, "path")
    model = create_model("transformer", **TINY["transformer"], **TRAIN)
    model.fit(products, path_space.encode(paths), path_space, seed=0, context=QUIET)
    assert (model.predict_proba(products).argmax(axis=1) == path_space.encode(paths)).mean() >= 0.9


@pytest.mark.parametrize("name", ["lstm", "cnn", "transformer"])
def test_words_start_from_lsa_vectors_of_the_training_texts(name):
    products, labels = catalog(12, seed=0)
    space = LabelSpace.from_labels(labels, "single")
    starts = {}
    for init in ("lsa", "random"):
        model = create_model(name, **TINY[name], **TRAIN, embedding_init=init)
        model.build_preprocessor(products)
        torch.manual_seed(0)
        network = model.build_network(space.n_classes)
        model.initialize_network(network)
        starts[init] = (model, network.word_embedding.weight.detach().numpy().copy())
    model, lsa_start = starts["lsa"]
    _, random_start = starts["random"]
    width = lsa_start.shape[1]
    expected = lsa_word_vectors(products.texts, model.vocabulary, dim=width, seed=0)
    k = expected.shape[1]
    assert 0 < k <= width
    known = np.abs(expected).sum(axis=1) > 0
    assert known[model.vocabulary.id("shirt")] and not known[PAD_ID] and not known[UNK_ID]
    np.testing.assert_allclose(lsa_start[known, :k], expected[known], rtol=1e-6)
    # Only the rows of words in the texts change; <pad>, <unk> and extra dimensions keep the random start.
    np.testing.assert_array_equal(lsa_start[~known], random_start[~known])
    np.testing.assert_array_equal(lsa_start[:, k:], random_start[:, k:])
    assert not np.allclose(lsa_start[known, :k], random_start[known, :k])
    # The vectors are handed over once: a network built again (as on load) starts random.
    again = model.build_network(space.n_classes)
    model.initialize_network(again)
    assert model._start_vectors is None


def test_lsa_vectors_place_words_of_the_same_products_together():
    texts = ["eyelet door curtain", "blackout window curtain", "eyelet window curtain",
             "ceramic coffee mug", "steel travel mug", "ceramic tea mug"] * 4
    vocab = Vocabulary.build(texts)
    vectors = lsa_word_vectors(texts, vocab, dim=3, seed=0)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    cosine = lambda a, b: float(unit[vocab.id(a)] @ unit[vocab.id(b)])  # noqa: E731
    assert cosine("eyelet", "curtain") > 0.5 > cosine("eyelet", "mug")
    assert cosine("ceramic", "mug") > 0.5 > cosine("ceramic", "curtain")
    assert vectors.dtype == np.float32 and abs(float(vectors[2:].std()) - 1) < 1e-4
    # The same texts give the same vectors; a catalog too small for any dimension gives none.
    np.testing.assert_array_equal(vectors, lsa_word_vectors(texts, vocab, dim=3, seed=0))
    assert lsa_word_vectors(["mug"], Vocabulary.build(["mug"]), dim=8, seed=0).shape == (3, 0)
    # Above max_texts a seeded sample is read.
    sampled = lsa_word_vectors(texts, vocab, dim=3, seed=0, max_texts=12)
    assert sampled.shape == vectors.shape and not np.allclose(sampled, vectors)


def test_a_catalog_too_small_for_lsa_still_trains():
    space = LabelSpace.from_labels([("shirt",), ("mug",)], "single")
    model = create_model("lstm", **TINY["lstm"], **{**TRAIN, "epochs": 2})
    model.fit(Products.from_texts(["shirt", "mug"]), space.encode([("shirt",), ("mug",)]), space, context=QUIET)
    assert model.predict_proba(Products.from_texts(["mug"])).shape == (1, 2)


@pytest.mark.parametrize(
    "name, params, message",
    [
        ("lstm", {"embedding_init": "glove"}, "embedding_init must be 'lsa' or 'random'"),
        ("lstm", {"pooling": "mean"}, "pooling must be 'max' or 'last'"),
        ("lstm", {"hidden_size": 0}, "hidden_size must be a positive integer"),
        ("lstm", {"dropout": 1.0}, r"dropout must be a number in \[0, 1\)"),
        ("cnn", {"word_dropout": 1.0}, r"word_dropout must be a number in \[0, 1\)"),
        ("lstm", {"word_dropout": "some"}, "word_dropout must be a number"),
        ("cnn", {"kernel_sizes": []}, "kernel_sizes must be a non-empty list"),
        ("cnn", {"kernel_sizes": [2, 0]}, "kernel_sizes must be a non-empty list"),
        ("transformer", {"d_model": 30, "num_heads": 4}, r"d_model \(30\) must be a multiple of num_heads \(4\)"),
        ("transformer", {"embedding_dim": 64}, "unknown setting"),
        ("cnn", {"max_length": 0}, "max_length must be"),
        ("cnn", {"max_vocab": 2}, "max_vocab must be at least 3"),
        ("lstm", {"min_freq": "two"}, "min_freq must be"),
    ],
)
def test_bad_settings_are_config_errors_naming_the_setting(name, params, message):
    with pytest.raises(ConfigError, match=message):
        create_model(name, **params)


def test_a_damaged_saved_state_is_a_model_dir_error():
    model, space = fitted("cnn", epochs=1)
    state, arrays = model.get_state()
    broken = json.loads(json.dumps(state))
    broken["preprocessor"]["max_length"] = "long"
    with pytest.raises(ModelDirError, match="max_length"):
        get_model_class("cnn").from_state(model.get_params(), broken, arrays, space)
    broken = json.loads(json.dumps(state))
    broken["preprocessor"]["vocabulary"]["tokens"] = broken["preprocessor"]["vocabulary"]["tokens"][:-1]
    with pytest.raises(ModelDirError):
        get_model_class("cnn").from_state(model.get_params(), broken, arrays, space)


ZH_KINDS = {
    "shirt": ["衬衫", "衬衣", "翻领"],
    "mug": ["水杯", "马克杯", "陶瓷"],
    "shoe": ["运动鞋", "跑鞋", "球鞋"],
}


@pytest.mark.parametrize("name", ["cnn", "lstm"])
def test_chinese_titles_without_spaces_are_learned_from_their_characters(name):
    # Taobao-style titles run brand, colour and type together: read as one word each, every
    # test title was unknown to the model, and it scored at chance
    rng = np.random.default_rng(0)

    def zh_catalog(n_per_class):
        texts, labels = [], []
        for kind, types in ZH_KINDS.items():
            for _ in range(n_per_class):
                texts.append(f"{rng.choice(['新款', '正品', '包邮'])}{rng.choice(['红色', '蓝色', '黑色'])}{rng.choice(types)}")
                labels.append((kind,))
        return Products.from_texts(texts), labels

    products, labels = zh_catalog(12)
    space = LabelSpace.from_labels(labels, "single")
    probe, probe_labels = zh_catalog(6)
    model = create_model(name, **TINY[name], **TRAIN)
    model.fit(products, space.encode(labels), space, seed=0, context=QUIET)
    assert not set(probe.texts) <= set(products.texts)
    assert (model.predict_proba(probe).argmax(axis=1) == space.encode(probe_labels)).mean() >= 0.9
