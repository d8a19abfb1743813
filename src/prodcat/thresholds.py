"""Decision thresholds chosen on the validation split."""

from __future__ import annotations

import numpy as np


def choose_multilabel_thresholds(y_true: np.ndarray, proba: np.ndarray, default: float = 0.5) -> np.ndarray:
    """Per class, the probability cut that maximises that class's F1 on validation.

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
        last_of_run = np.r_[scores[1:] != scores[:-1], True]
        best = np.flatnonzero(last_of_run)[np.argmax(f1[last_of_run])]
        thresholds[k] = scores[best]
    return thresholds
