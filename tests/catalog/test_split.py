"""The split keeps duplicates on one side, stratifies, and reports what it cannot split."""

from __future__ import annotations

import os
import random

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from prodcat.catalog.normalize import normalize_text
from prodcat.catalog.split import Split, split_catalog
from prodcat.errors import ConfigError
from prodcat.labels import label_name, path_labels_from_columns


def noisy_copy(text: str, rng: random.Random) -> str:
    """The same text as another listing would write it: case, punctuation, spacing."""
    variants = [text.upper(), text.title(), text.replace(" ", "  "), text.replace(" ", "-"), f"{text}!", f" {text} "]
    return rng.choice(variants + [text])


def synthetic_catalog(seed: int = 0, n_classes: int = 8, groups_per_class: int = 40):
    """Many duplicate texts (1-6 listings per text, noisy copies), plus two tiny classes."""
    rng = random.Random(seed)
    texts, labels = [], []
    for c in range(n_classes):
        for g in range(groups_per_class):
            base = f"brand{g % 7} item {c} model {g}"
            for _ in range(rng.randint(1, 6)):
                texts.append(noisy_copy(base, rng))
                labels.append((f"class{c}",))
    # Too small to split: one class in 2 distinct texts, one in 1 text (listed 3 times).
    for text in ("tiny a one", "tiny a two"):
        texts.append(text)
        labels.append(("tiny_a",))
    for _ in range(3):
        texts.append("Tiny B only")
        labels.append(("tiny_b",))
    order = list(range(len(texts)))
    rng.shuffle(order)
    return [texts[i] for i in order], [labels[i] for i in order]


def parts(split: Split):
    return {"train": split.train, "valid": split.valid, "test": split.test}


def assert_partition(split: Split, n: int):
    all_rows = np.concatenate([split.train, split.valid, split.test])
    assert sorted(all_rows.tolist()) == list(range(n))
    for rows in parts(split).values():
        assert rows.dtype == np.int64
        assert np.all(np.diff(rows) > 0)  # sorted, no repeats


def assert_no_leakage(split: Split, texts):
    keys = {name: {normalize_text(texts[i]) for i in rows} for name, rows in parts(split).items()}
    assert not keys["train"] & keys["valid"]
    assert not keys["train"] & keys["test"]
    assert not keys["valid"] & keys["test"]


def test_no_normalized_text_in_two_parts():
    texts, labels = synthetic_catalog()
    split = split_catalog(texts, labels, "single", seed=0)
    assert_partition(split, len(texts))
    assert_no_leakage(split, texts)


@pytest.mark.parametrize("seed", range(6))
def test_no_leakage_randomized(seed):
    # Random catalogs: few distinct texts, many noisy repeats, conflicting labels.
    rng = random.Random(1000 + seed)
    words = ["red", "blue", "shirt", "mug", "lamp", "pro", "set", "kit"]
    texts, labels = [], []
    for _ in range(rng.randint(50, 400)):
        base = " ".join(rng.choices(words, k=rng.randint(1, 3)))
        texts.append(noisy_copy(base, rng))
        labels.append((rng.choice("ABCDE"),))
    valid_size, test_size = rng.choice([(0.1, 0.1), (0.2, 0.3), (0.0, 0.25), (0.3, 0.0)])
    split = split_catalog(texts, labels, "single", valid_size=valid_size, test_size=test_size, seed=seed)
    assert_partition(split, len(texts))
    assert_no_leakage(split, texts)


def test_sizes_near_requested_fractions():
    texts, labels = synthetic_catalog()
    n = len(texts)
    split = split_catalog(texts, labels, "single", valid_size=0.15, test_size=0.2, seed=3)
    assert len(split.train) + len(split.valid) + len(split.test) == n
    assert abs(len(split.valid) / n - 0.15) < 0.04
    assert abs(len(split.test) / n - 0.2) < 0.04
    assert split.to_dict()["sizes"] == {"train": len(split.train), "valid": len(split.valid), "test": len(split.test)}


def test_every_splittable_class_is_trained_and_scored():
    texts, labels = synthetic_catalog()
    # A small class with exactly 3 texts (10% of it rounds to nothing) is still in train and test.
    for i, text in enumerate(["small one", "small two", "small three", "Small Three!"]):
        texts.append(text)
        labels.append(("small",))
    split = split_catalog(texts, labels, "single", seed=1)
    splittable = {lab[0] for lab in labels} - set(split.train_only_classes)
    assert "small" in splittable
    for name in ("train", "test"):
        assert {labels[i][0] for i in parts(split)[name]} >= splittable, name
    # Validation needs no coverage: the small class keeps its examples for training...
    small_rows = [i for i, lab in enumerate(labels) if lab == ("small",)]
    assert not set(small_rows) & set(split.valid.tolist())
    # 4 rows in 3 text groups: one group is scored, two are learned.
    assert len(set(small_rows) & set(split.test.tolist())) == 1
    assert len(set(small_rows) & set(split.train.tolist())) == 3
    # ...while classes with 10+ texts (1 / valid_size) reach validation too.
    large = {c for c, k in Counter(lab[0] for lab in labels).items() if k >= 40} - set(split.train_only_classes)
    assert large and {labels[i][0] for i in split.valid} >= large


def test_too_small_classes_go_to_train_and_are_reported():
    texts, labels = synthetic_catalog()
    split = split_catalog(texts, labels, "single", seed=0)
    assert split.train_only_classes == {"tiny_b": 3, "tiny_a": 2}
    train = set(split.train.tolist())
    for i, lab in enumerate(labels):
        if lab[0].startswith("tiny"):
            assert i in train
    assert split.to_dict()["train_only_classes"] == {"tiny_b": 3, "tiny_a": 2}
    # min_groups=1 splits every class it can.
    assert split_catalog(texts, labels, "single", min_groups=1).train_only_classes == {}


def test_reproducible_per_seed():
    texts, labels = synthetic_catalog()
    a = split_catalog(texts, labels, "single", seed=7)
    b = split_catalog(texts, labels, "single", seed=7)
    c = split_catalog(texts, labels, "single", seed=8)
    for name in ("train", "valid", "test"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.test, c.test)
    assert a.seed == 7 and a.to_dict()["seed"] == 7


@pytest.mark.parametrize(("valid_size", "test_size"), [(0.0, 0.2), (0.2, 0.0), (0.0, 0.0)])
def test_zero_sizes(valid_size, test_size):
    texts, labels = synthetic_catalog()
    split = split_catalog(texts, labels, "single", valid_size=valid_size, test_size=test_size)
    assert_partition(split, len(texts))
    assert_no_leakage(split, texts)
    if valid_size == 0:
        assert split.valid.size == 0 and split.valid.dtype == np.int64
    if test_size == 0:
        assert split.test.size == 0 and split.test.dtype == np.int64
    for name, size in (("valid", valid_size), ("test", test_size)):
        if size:
            assert len(getattr(split, name)) > 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"valid_size": -0.1}, "valid size"),
        ({"test_size": 1.0}, "test size"),
        ({"test_size": 1.5}, "test size"),
        ({"valid_size": 0.5, "test_size": 0.5}, "below 1"),
        ({"valid_size": 0.6, "test_size": 0.45}, "below 1"),
        ({"min_groups": 0}, "min groups"),
    ],
)
def test_bad_fractions(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        split_catalog(["a", "b"], [("x",), ("y",)], "single", **kwargs)


def test_bad_label_format_and_length_mismatch():
    with pytest.raises(ConfigError, match="label format"):
        split_catalog(["a"], [("x",)], "tree")
    with pytest.raises(ValueError, match="2 texts but 1 labels"):
        split_catalog(["a", "b"], [("x",)], "single")


def test_path_labels_stratify_on_the_whole_path():
    texts, labels = synthetic_catalog()
    # Two leaves under one parent: each leaf must reach every part on its own.
    paths = [("Top", lab[0], "leaf1" if i % 2 else "leaf2") for i, lab in enumerate(labels)]
    split = split_catalog(texts, paths, "path", seed=2)
    assert_no_leakage(split, texts)
    leaves = {label_name(p, "path") for p in paths} - set(split.train_only_classes)
    for rows in parts(split).values():
        assert {label_name(paths[i], "path") for i in rows} >= leaves
    assert "Top > tiny_b > leaf1" in split.train_only_classes or "Top > tiny_b > leaf2" in split.train_only_classes


def test_multi_label_rarest_label_reaches_every_part():
    rng = random.Random(5)
    texts, labels = [], []
    for g in range(300):
        common = ("men",) if g % 2 else ("women",)
        extra = ("summer",) if g % 3 == 0 else ()
        rare = ("linen",) if g % 30 == 0 else ()  # 10 texts
        lone = ("silk",) if g == 7 else ()  # 1 text: train only
        label = tuple(sorted(set(common + extra + rare + lone)))
        for _ in range(rng.randint(1, 3)):
            texts.append(noisy_copy(f"product number {g}", rng))
            labels.append(label)
    split = split_catalog(texts, labels, "multi", seed=0)
    assert_no_leakage(split, texts)
    assert set(split.train_only_classes) == {"silk"}
    for name, rows in parts(split).items():
        present = {item for i in rows for item in labels[i]}
        assert present >= {"men", "women", "summer", "linen"}, name
    silk_rows = [i for i, lab in enumerate(labels) if "silk" in lab]
    assert set(silk_rows) <= set(split.train.tolist())
    assert split.train_only_classes["silk"] == len(silk_rows)


def test_multi_label_validation_reaches_its_share_without_taking_rare_tags_from_training():
    # Most products carry one of 60 rare tags (5 texts each) beside a common one, so
    # splitting by the rarest label alone leaves validation nearly empty.
    texts, labels = [], []
    for g in range(400):
        common = ("men",) if g % 2 else ("women",)
        rare = (f"tag{g % 60}",) if g < 300 else ()
        texts.append(f"product number {g}")
        labels.append(tuple(sorted(common + rare)))
    split = split_catalog(texts, labels, "multi", valid_size=0.1, test_size=0.1, seed=0)
    assert_no_leakage(split, texts)
    assert len(split.valid) == 40  # 10% of 400, where the rarest-label rule alone gave 10
    valid_tags = Counter(t for i in split.valid.tolist() for t in labels[i] if t.startswith("tag"))
    assert not valid_tags  # a tag with 4 training texts gives none of them away
    for name in ("men", "women"):
        assert sum(name in labels[i] for i in split.valid.tolist()) > 10
    again = split_catalog(texts, labels, "multi", valid_size=0.1, test_size=0.1, seed=0)
    assert split.valid.tolist() == again.valid.tolist()
    # single and path labels are split as before: by their one class, no top-up
    single = split_catalog(texts, [(lab[-1],) for lab in labels], "single", valid_size=0.1, test_size=0.1, seed=0)
    assert len(single.valid) < 40


def test_empty_catalog():
    split = split_catalog([], [], "single")
    assert split.train.size == split.valid.size == split.test.size == 0


@pytest.mark.shared_data
@pytest.mark.slow
def test_fashion_split_has_no_leakage(shared_data):
    df = pd.read_csv(
        shared_data / "fashion" / "styles.csv", dtype=str, keep_default_na=False, on_bad_lines="skip"
    )
    texts = df["productDisplayName"].tolist()
    labels = path_labels_from_columns([df["masterCategory"], df["subCategory"], df["articleType"]])
    split = split_catalog(texts, labels, "path", seed=0)
    assert_partition(split, len(df))
    assert_no_leakage(split, texts)
    n = len(df)
    assert abs(len(split.test) / n - 0.1) < 0.02
    assert abs(len(split.valid) / n - 0.1) < 0.02
    # The long tail of articleTypes is reported, not dropped.
    assert split.train_only_classes
    assert all(c.count(" > ") == 2 for c in split.train_only_classes)


def test_products_without_text_are_grouped_by_their_photo():
    # A catalog of photos alone: every text is empty. Grouped by text, all 60
    # products would be one group and land in one part.
    photos = [f"photo {i}".encode() for i in range(30)]
    images = photos + photos  # each photo listed twice, as bytes
    labels = [(f"c{i % 3}",) for i in range(30)] * 2
    split = split_catalog([""] * 60, labels, "single", images=images, valid_size=0.2, test_size=0.2, seed=0)
    assert min(len(split.train), len(split.valid), len(split.test)) >= 6
    part = np.empty(60, int)
    for p, rows in enumerate((split.train, split.valid, split.test)):
        part[rows] = p
    assert (part[:30] == part[30:]).all()  # both listings of a photo on the same side


def test_a_photo_is_known_by_its_bytes_and_a_text_wins_over_it(tmp_path):
    from prodcat.catalog.normalize import product_keys

    (tmp_path / "a.png").write_bytes(b"same pixels")
    (tmp_path / "copy of a.png").write_bytes(b"same pixels")
    (tmp_path / "b.png").write_bytes(b"other pixels")
    refs = [str(tmp_path / n) for n in ("a.png", "copy of a.png", "b.png", "gone.png")] + [str(tmp_path / "a.png")]
    keys = product_keys(["", "", "", "", "Red Shirt"], refs)
    assert keys[0] == keys[1] != keys[2]
    assert keys[3] != keys[0] and keys[4] == normalize_text("Red Shirt")
    assert product_keys(["", ""], None) == ["", ""]


def test_a_photo_path_that_is_a_fifo_stands_for_itself_rather_than_hang(tmp_path):
    # Reading a FIFO (or a device) for its bytes waited for ever: train and inspect of a catalog
    # of photos hung on one such cell.
    from prodcat.catalog.normalize import product_keys

    os.mkfifo(tmp_path / "pipe.jpg")
    keys = product_keys(["", ""], [str(tmp_path / "pipe.jpg"), str(tmp_path)])
    assert keys[0] != keys[1] and keys[0].endswith(str(tmp_path / "pipe.jpg"))
