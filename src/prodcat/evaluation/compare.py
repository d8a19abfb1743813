"""Does a model with parts (an ensemble) beat its best part, or did a few products move?

An ensemble's macro-F1 gain over its best member often rests on a handful of
test products: on flipkart level 2 (207 test products, 62 classes) averaging
text and photo gained 0.043 macro-F1 by changing 2 decisions, and on fashion
articleType stacking lost 0.015 by changing 12 of 1,643 (5 broken, 6 fixed),
one of them the only test product of a rare class. `versus_best_part` says how
many decisions the combination changed, how many it could have fixed at most,
and gives a paired bootstrap interval of the macro-F1 gain over the test
products, so a reader can tell a gain from a coin flip.

    >>> from prodcat.labels import LabelSpace
    >>> space = LabelSpace("single", ["Jeans", "Shirts"])
    >>> true = [("Jeans",), ("Shirts",), ("Shirts",)]
    >>> text = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    >>> photo = np.array([[0.4, 0.6], [0.3, 0.7], [0.3, 0.7]])
    >>> both = np.array([[0.7, 0.3], [0.4, 0.6], [0.2, 0.8]])
    >>> v = versus_best_part(space, true, {"text": text, "photo": photo}, both)
    >>> v["best_part"], v["changed"], v["fixed"], v["broken"], v["headroom"]
    ('text', 1, 1, 0, 1)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from prodcat.evaluation.metrics import at_level, cut_labels, cuts_paths
from prodcat.labels import Label, LabelSpace, label_name

#: resamples of the products behind the interval of the gain
BOOTSTRAP_RESAMPLES = 1000
#: resamples drawn and scored at once
_CHUNK = 50


class _Truth:
    """True labels and decisions as arrays that macro-F1 can be counted from with row weights.

    single / path: class ids, true classes the space does not know numbered after
    its own; multi: indicator matrices over the space's classes plus unseen labels.
    Macro-F1 is taken, as in `compute_metrics`, over the classes that occur in the
    truth or the decisions: 2 tp / (true + predicted) per class.
    """

    def __init__(self, space: LabelSpace, true_labels: Sequence[Label]):
        self.space = space
        index = space.index()
        # multi: each product's label set; single / path: its one class name
        names = ([list(lab) for lab in true_labels] if space.is_multi
                 else [label_name(lab, space.label_format) for lab in true_labels])
        found = {item for items in names for item in items} if space.is_multi else set(names)
        unseen = sorted(name for name in found if name not in index)
        columns = {**index, **{name: space.n_classes + i for i, name in enumerate(unseen)}}
        self.n_columns = len(columns)
        if space.is_multi:
            self.true = np.zeros((len(names), self.n_columns), np.float32)
            for row, items in enumerate(names):
                self.true[row, [columns[item] for item in items]] = 1.0
        else:
            self.true = np.array([columns[name] for name in names], np.int64)

    def decide(self, proba: np.ndarray, thresholds: np.ndarray | None = None) -> np.ndarray:
        decided = self.space.decide(np.asarray(proba), thresholds)
        if not self.space.is_multi:
            return decided.astype(np.int64)
        padded = np.zeros_like(self.true)
        padded[:, : self.space.n_classes] = decided
        return padded

    def correct(self, decided: np.ndarray) -> np.ndarray:
        if self.space.is_multi:
            return (decided == self.true).all(axis=1)
        return decided == self.true


def _macro_f1(true: np.ndarray, decided: np.ndarray, weights: np.ndarray, multi: bool, n_columns: int) -> np.ndarray:
    """(resamples,) macro-F1 under each row of weights (resamples, rows): how often each row was drawn."""
    if multi:
        tp = weights @ (true * decided)
        total = weights @ true + weights @ decided
        present = total > 0
        f1 = np.divide(2 * tp, total, out=np.zeros_like(total, dtype=np.float64), where=present)
        return f1.sum(axis=1) / np.maximum(present.sum(axis=1), 1)
    hit = decided == true
    scores = np.empty(len(weights))
    for r, w in enumerate(weights):
        tp = np.bincount(true[hit], weights=w[hit], minlength=n_columns)
        total = np.bincount(true, weights=w, minlength=n_columns) + np.bincount(decided, weights=w, minlength=n_columns)
        present = total > 0
        scores[r] = (2 * tp[present] / total[present]).mean() if present.any() else 0.0
    return scores


def versus_best_part(
    space: LabelSpace,
    true_labels: Sequence[Label],
    parts: dict[str, np.ndarray],
    combined: np.ndarray,
    thresholds: np.ndarray | None = None,
    *,
    part_thresholds: dict[str, np.ndarray] | None = None,
    level: int | None = None,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> dict:
    """The combined model against its best part alone, on the same products.

    parts: each part's probabilities, decided with its `part_thresholds`
    (multi-label: the cuts tuned for that part alone; a part without: 0.5),
    as the report's per-part rows are; combined: the model's own, decided
    with `thresholds`.

    Returns best_part (the part with the highest macro-F1 alone), changed
    (products whose decision differs from the best part's), fixed / broken
    (of those, now right / now wrong), headroom (products the best part gets
    wrong and another part gets right: the most a combination could fix),
    macro_f1_gain (combined minus best part) and gain_interval (its 95%
    paired bootstrap interval over the products, `resamples` draws).
    A product is right when its class (multi-label: its whole label set) is.
    level: for a path model, compare at its first `level` levels, as
    `compute_metrics` scores there.
    """
    if not parts:
        raise ValueError("versus_best_part: no parts to compare with")
    leaves = space
    coarser = cuts_paths(space, level)
    if coarser:
        space = space.coarsen(level)[0]
        true_labels = cut_labels(true_labels, level)
    truth = _Truth(space, true_labels)

    def decide(proba: np.ndarray, thresholds: np.ndarray | None = None) -> np.ndarray:
        if coarser:
            return at_level(leaves, proba, leaves.decide(np.asarray(proba), thresholds), level)[2]
        return truth.decide(proba, thresholds)

    n = len(truth.true)
    if n == 0:
        raise ValueError("versus_best_part: no products to compare on")
    multi, ones = space.is_multi, np.ones((1, n))

    def macro_f1(decided: np.ndarray) -> float:
        return float(_macro_f1(truth.true, decided, ones, multi, truth.n_columns)[0])

    decisions = {name: decide(proba, (part_thresholds or {}).get(name)) for name, proba in parts.items()}
    alone = {name: macro_f1(d) for name, d in decisions.items()}
    best = max(alone, key=lambda name: alone[name])  # first of equals: the order parts were given
    ours = decide(combined, thresholds)
    base = decisions[best]
    changed = (ours != base) if ours.ndim == 1 else (ours != base).any(axis=1)
    right_ours, right_base = truth.correct(ours), truth.correct(base)
    others_right = np.zeros(n, bool)
    for name, d in decisions.items():
        if name != best:
            others_right |= truth.correct(d)

    # Products with the same truth and the same two decisions are interchangeable: a
    # resample is scored from how many of each kind it drew, so scoring costs the
    # number of kinds (hundreds or thousands), not of products.
    rows = np.hstack([truth.true, ours, base]) if multi else np.stack([truth.true, ours, base], axis=1)
    _, first, kind = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    kind = kind.reshape(-1)
    true_k, ours_k, base_k = truth.true[first], ours[first], base[first]
    rng = np.random.default_rng(seed)
    gains = []
    for start in range(0, resamples, _CHUNK):
        # counting n draws is O(n); rng.multinomial over the kinds is O(kinds) but far slower per kind
        weights = np.stack([np.bincount(kind[rng.integers(0, n, n)], minlength=len(first))
                            for _ in range(min(_CHUNK, resamples - start))]).astype(np.float64)
        gains.append(_macro_f1(true_k, ours_k, weights, multi, truth.n_columns)
                     - _macro_f1(true_k, base_k, weights, multi, truth.n_columns))
    gains = np.concatenate(gains)
    return {
        "best_part": best,
        "n": int(n),
        "changed": int(changed.sum()),
        "fixed": int((changed & right_ours & ~right_base).sum()),
        "broken": int((changed & ~right_ours & right_base).sum()),
        "headroom": int((~right_base & others_right).sum()),
        "macro_f1_gain": macro_f1(ours) - alone[best],
        "gain_interval": [float(v) for v in np.percentile(gains, [2.5, 97.5])],
        "resamples": int(resamples),
    }
