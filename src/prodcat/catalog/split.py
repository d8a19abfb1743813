"""Train / valid / test splits without leakage.

A catalog lists the same product several times (re-listed, other colour, other
seller), and a random row split puts one copy in train and another in test:
the model is then tested on what it memorised and scores too high. So the
split is *grouped*: every product whose text normalizes to the same key
(`normalize_text`) lands in the same part, always. A product without text is
grouped by its photo (`product_keys`), so a catalog of photos alone is split
by photo rather than kept whole in one part.

Within that constraint it is *stratified*: each class keeps about the
requested share of its products in every part, and every class with at least
`min_groups` distinct texts appears in train and test alike, so rare classes
are scored too. A class with fewer distinct texts cannot be; all its products
go to train and it is reported in `train_only_classes` (it is learned, but not
scored). Validation calibrates probabilities and sets thresholds, which needs
no class coverage: a class too small to expect one validation group (fewer
than 1 / valid_size groups) keeps those products for training, where a rare
class needs every example.

    >>> split = split_catalog(texts, labels, "single", seed=0)   # doctest: +SKIP
    >>> train = catalog.take(split.train)                        # doctest: +SKIP

How (and why not StratifiedGroupKFold)
--------------------------------------
Each text group gets one stratification class, then the groups of each class
are shuffled (seeded) and cut by cumulative product count: the groups whose
midpoint falls in the first `test_size` of the class's products go to test,
the next `valid_size` to valid, the rest to train. Then, if a class with
enough groups left train or test empty (a small class where 10% rounds to
nothing), one group moves there from the class's largest part.

Compared with `StratifiedGroupKFold` used twice (test fold, then a valid fold
of the rest), this is linear in the number of groups (milliseconds on 38k
products instead of seconds), honours any fraction instead of 1/k, counts
products rather than groups, and *guarantees* that every splittable class is
in all three parts, which the k-fold greedy does not for classes with fewer
groups than folds.

The stratification class of a group is the rarest class among its products'
labels (rarest = found in the fewest groups). For single and path labels a
group nearly always has one class; when identical texts carry different labels
(a conflict) the rarer class decides, since a common class is spread across
the parts by its other groups anyway. For multi-label products this is the
"rarest label first" rule of iterative stratification: stratifying on the
joined label set would make most sets singletons, while the rarest label is
the one at risk of missing from a part; common labels end up in every part
through sheer numbers. Two consequences on a small catalog with many rare
tags: test grows beyond its share (every tag with 3 texts gets one there:
103 of 630 products on the demo catalog's tags), and validation would shrink
far below its share, since most products' rarest tag is too rare for one
validation group. So for multi-label products validation is topped up to
its share with training groups whose every label can spare one
(`_top_up_validation`): 46 of 630 there instead of 11.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from numbers import Real
from typing import Sequence

import numpy as np

from prodcat.catalog.fields import LABEL_FORMATS
from prodcat.catalog.normalize import product_keys
from prodcat.errors import ConfigError
from prodcat.labels import Label, label_name

TRAIN, VALID, TEST = 0, 1, 2


@dataclass
class Split:
    """Row indices (int64, sorted) of each part, and what could not be split."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    #: classes too small to split -> their product count; all their products are in train
    train_only_classes: dict[str, int]
    seed: int

    def to_dict(self) -> dict:
        """Sizes, seed and train-only classes, for a manifest or report (no indices)."""
        return {
            "sizes": {"train": len(self.train), "valid": len(self.valid), "test": len(self.test)},
            "seed": self.seed,
            "train_only_classes": dict(self.train_only_classes),
        }


def check_fractions(valid_size: float, test_size: float, min_groups: int = 1) -> None:
    """ConfigError unless the validation and test shares leave something to train on."""
    for name, value in (("valid size", valid_size), ("test size", test_size)):
        # a string or None ("0.1" from a config) failed on the comparison below with a TypeError
        if isinstance(value, bool) or not isinstance(value, Real) or not 0 <= value < 1:
            raise ConfigError(f"{name} must be a fraction from 0 up to (not including) 1, got {value!r}")
    if valid_size + test_size >= 1:
        raise ConfigError(
            f"valid size + test size must be below 1 (something must be left to train on), "
            f"got {valid_size} + {test_size}"
        )
    if isinstance(min_groups, bool) or not isinstance(min_groups, int) or min_groups < 1:
        raise ConfigError(f"min groups must be a whole number of 1 or more, got {min_groups!r}")


def _classes_of(label: Label, label_format: str) -> tuple[str, ...]:
    """The classes a product counts toward: each label of a multi set, else the one name."""
    return label if label_format == "multi" else (label_name(label, label_format),)


def _top_up_validation(parts: np.ndarray, group_sizes: np.ndarray, classes_in_group: list[set[str]],
                       train_only: set[str], *, target: int, valid_share: float, rng: np.random.Generator) -> None:
    """Move training groups to validation (in place) until it holds `target` products.

    For multi-label products only. A group is split by its rarest label, and
    most products carry one rare tag among common ones, so the rule that
    keeps a rare class's few groups out of validation kept most products
    out: 11 of 630 on the demo catalog's tags, too few to choose per-label
    thresholds on. A group moves only if each of its labels keeps in train
    all but `valid_share` of the training groups it had, so rare tags stay
    whole in train as before.
    """
    have = int(group_sizes[parts == VALID].sum())
    if have >= target:
        return
    train_groups = np.flatnonzero(parts == TRAIN)
    in_train: Counter[str] = Counter(c for g in train_groups.tolist() for c in classes_in_group[g])
    may_give = {c: int(k * valid_share) for c, k in in_train.items()}
    for g in rng.permutation(train_groups).tolist():
        if have >= target:
            break
        labels = classes_in_group[g]
        if not labels or labels & train_only or any(may_give[c] < 1 for c in labels):
            continue
        parts[g] = VALID
        have += int(group_sizes[g])
        for c in labels:
            may_give[c] -= 1


def split_catalog(
    texts: Sequence[str],
    labels: Sequence[Label],
    label_format: str,
    *,
    valid_size: float = 0.1,
    test_size: float = 0.1,
    seed: int = 0,
    min_groups: int = 3,
    images: Sequence[str | bytes | None] | None = None,
) -> Split:
    """Split rows into train / valid / test, grouped by normalized text, stratified by class.

    texts: one text per product (the joined text fields).
    labels: one label tuple per product (see `prodcat.labels`).
    images: each product's photo (`Products.images`): what groups the
        products whose text is empty.
    min_groups: a class found in fewer distinct texts goes wholly to train.

    >>> s = split_catalog(["red shirt", "Red shirt!", "blue jeans"], [("a",), ("a",), ("b",)],
    ...                   "single", valid_size=0, test_size=0.5)
    >>> s.train_only_classes
    {'a': 2, 'b': 1}
    """
    check_fractions(valid_size, test_size, min_groups)
    if label_format not in LABEL_FORMATS:
        raise ConfigError(f"unknown label format {label_format!r}; use one of {', '.join(LABEL_FORMATS)}")
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    n = len(texts)

    # Group ids in order of first appearance, so the result depends on the
    # data and the seed only.
    group_ids: dict[str, int] = {}
    group_of = np.fromiter(
        (group_ids.setdefault(key, len(group_ids)) for key in product_keys(texts, images)), dtype=np.int64, count=n
    )
    n_groups = len(group_ids)
    group_sizes = np.bincount(group_of, minlength=n_groups)

    classes_in_group: list[set[str]] = [set() for _ in range(n_groups)]
    product_counts: Counter[str] = Counter()
    for g, label in zip(group_of.tolist(), labels):
        names = _classes_of(tuple(label), label_format)
        classes_in_group[g].update(names)
        product_counts.update(names)
    groups_per_class: Counter[str] = Counter(c for cs in classes_in_group for c in cs)

    train_only = {c for c, k in groups_per_class.items() if k < min_groups}
    part_of_group = np.full(n_groups, TRAIN, dtype=np.int8)
    # A group holding a too-small class stays in train; the others are split
    # by their rarest class.
    groups_by_key: dict[str, list[int]] = defaultdict(list)
    for g, cs in enumerate(classes_in_group):
        if not cs or cs & train_only:
            continue
        key = min(cs, key=lambda c: (groups_per_class[c], c))
        groups_by_key[key].append(g)

    fractions = {TEST: test_size, VALID: valid_size}
    # Every splittable class is learned and scored; validation needs no class coverage.
    wanted = [TRAIN] + [p for p in (TEST,) if fractions[p] > 0]
    rng = np.random.default_rng(seed)
    for key in sorted(groups_by_key):
        groups = np.asarray(groups_by_key[key], dtype=np.int64)
        groups = groups[rng.permutation(len(groups))]
        sizes = group_sizes[groups]
        middle = (np.cumsum(sizes) - sizes / 2) / sizes.sum()
        parts = np.where(middle < test_size, TEST, np.where(middle < test_size + valid_size, VALID, TRAIN))
        if len(groups) * valid_size < 1:
            # Validation only calibrates and sets thresholds; a class too small
            # to expect one validation group there learns from those products instead.
            parts[parts == VALID] = TRAIN
        if len(groups) >= min_groups and len(groups) >= len(wanted):
            for part in wanted:
                if not (parts == part).any():
                    # Take the first group (in shuffled order) of the largest part;
                    # with more groups than parts, it has one to spare.
                    donor = np.bincount(parts, minlength=3).argmax()
                    parts[np.flatnonzero(parts == donor)[0]] = part
        part_of_group[groups] = parts.astype(np.int8)

    if label_format == "multi" and valid_size > 0:
        _top_up_validation(part_of_group, group_sizes, classes_in_group, train_only,
                           target=round(valid_size * n), valid_share=valid_size / (1 - test_size), rng=rng)

    part_of_row = part_of_group[group_of]
    return Split(
        train=np.flatnonzero(part_of_row == TRAIN).astype(np.int64),
        valid=np.flatnonzero(part_of_row == VALID).astype(np.int64),
        test=np.flatnonzero(part_of_row == TEST).astype(np.int64),
        train_only_classes={c: product_counts[c] for c in sorted(train_only, key=lambda c: (-product_counts[c], c))},
        seed=seed,
    )


def grouped_folds(keys: Sequence[str], y: np.ndarray, folds: int, seed: int, multi: bool, *,
                  purpose: str = "out-of-fold predictions") -> list[tuple[np.ndarray, np.ndarray]]:
    """K (train, held-out) index pairs; products with the same key (`product_keys`) share a fold.

    Groups (distinct keys) are shuffled, ordered by class (the class of a
    group's first product; for multi-label, its rarest tag, as the split does)
    and dealt to the folds in turn. So each fold holds about the same number
    of groups, a class's groups land in consecutive folds, and every class
    with at least 2 groups is in every fold's training part (a tag, unless
    some of its groups are ordered by a rarer one). The deal is linear, where sklearn's
    StratifiedGroupKFold takes seconds on large catalogs (see above for the
    same choice). `purpose` names the caller in the error for too few groups.
    """
    _, first, group_of = np.unique(np.asarray(keys, dtype=object), return_index=True, return_inverse=True)
    n_groups = len(first)
    k = min(folds, n_groups)
    if k < 2:
        raise ConfigError(f"{purpose} needs at least 2 distinct texts to make folds")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_groups)
    if multi:
        # dealt at random, the two products of a rare tag share a fold one time in k, and neither is learned
        tags = np.asarray(y)[first].astype(bool)
        stratum = np.where(tags, tags.sum(axis=0), n_groups + 1).argmin(axis=1)
    else:
        stratum = np.asarray(y)[first]
    order = order[np.argsort(stratum[order], kind="stable")]
    fold_of_group = np.empty(n_groups, dtype=np.int64)
    fold_of_group[order] = np.arange(n_groups) % k
    fold = fold_of_group[group_of.ravel()]
    return [(np.flatnonzero(fold != f), np.flatnonzero(fold == f)) for f in range(k)]
