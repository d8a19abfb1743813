"""Score a model's probabilities against true labels, the way sklearn would.

Everything is computed on class *names* (strings), so a true class the model
never learned is simply a name no prediction can match: it counts as an error
and is listed under `unseen_classes`, instead of crashing an index lookup.

    >>> from prodcat.labels import LabelSpace
    >>> space = LabelSpace("single", ["Jeans", "Shirts"])
    >>> proba = np.array([[0.2, 0.8], [0.3, 0.7], [0.9, 0.1]])
    >>> m = compute_metrics(space, [("Shirts",), ("Jeans",), ("Jeans",)], proba)
    >>> round(m["accuracy"], 3), m["confusions"][0]["true"], m["confusions"][0]["predicted"]
    (0.667, 'Jeans', 'Shirts')

The result is a plain JSON-able dict (floats, ints, strings, lists, dicts; a
figure that cannot be computed, such as log loss with no known true class, is
None). Its keys are listed in `compute_metrics`.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Sequence

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    hamming_loss,
    precision_recall_fscore_support,
)
from sklearn.preprocessing import MultiLabelBinarizer

from prodcat.labels import Label, LabelSpace, label_name

#: number of equal-width confidence bins for the expected calibration error
ECE_BINS = 15
#: at most this many points on the precision/coverage curve kept in the metrics
CURVE_POINTS = 50
#: precision targets for which the coverage is reported
PRECISION_TARGETS = (0.90, 0.95, 0.99)
#: at most this many classes in the confusion sub-matrix kept for the plot
FOCUS_CLASSES = 25
_EPS = 1e-15


def compute_metrics(
    space: LabelSpace,
    true_labels: Sequence[Label],
    proba: np.ndarray,
    thresholds: np.ndarray | None = None,
    *,
    level: int | None = None,
    top_k: int = 3,
    n_confusions: int = 20,
) -> dict:
    """Score probabilities `proba` (n, n_classes; columns = `space.classes`).

    Decisions come from `space.decide(proba, thresholds)`.

    level: for a path model, score at its first `level` levels (see
      `at_level`): true labels are cut there, and so are the decided paths,
      as the `levels` entries cut them. The result then has `level` and
      describes the coarse classes.

    Keys for every label format:
      n, label_format, n_classes (the model's), accuracy, macro_f1,
      weighted_f1, micro_f1, top{k}_accuracy, per_class
      ({class: {precision, recall, f1, support}}), unseen_classes
      ({true class the model does not know: count}), precision_coverage
      (list of {threshold, coverage, precision}, threshold rising) and
      coverage_at_precision (list of {target, threshold, coverage, precision};
      threshold None and coverage 0 when the target is never reached).

    single / path also: confusions (the `n_confusions` most frequent
      off-diagonal pairs: {true, predicted, count, rate = count / support of
      true}), confusion_focus ({classes, counts}: the counts among the at most
      25 classes involved in the most frequent confusions, rows = true),
      log_loss (on products whose true class the model knows; None if none),
      ece (expected calibration error of the top-1 confidence, 15 equal-width
      bins) and calibration (the non-empty bins: {lower, upper, confidence,
      accuracy, count}).

    path also: levels, one entry per level k = 1..space.depth with n_classes,
      accuracy, macro_f1, weighted_f1, micro_f1 and per_class, after cutting
      true and predicted paths to their first k levels.

    multi: accuracy is the *subset* accuracy (every label of a product right),
      also given as subset_accuracy; plus samples_f1, hamming_loss and
      label_errors (the `n_confusions` labels with the most errors:
      {label, fp, fn, support}). macro_f1 and per_class cover the labels that
      occur in the truth or the predictions (as in single/path, a model class
      that is never true nor predicted is not averaged in); unseen true labels
      are misses. top{k}_accuracy is the share of products with at least one
      true label among the k most probable classes. label_cuts: "per label"
      (decided at `thresholds`) or "0.5".
    """
    proba = np.asarray(proba)
    n = len(true_labels)
    if n == 0:
        raise ValueError("compute_metrics: no products to score")
    if proba.ndim != 2 or proba.shape != (n, space.n_classes):
        raise ValueError(
            f"compute_metrics: proba has shape {proba.shape}, expected ({n}, {space.n_classes}) "
            "(one row per product, one column per class of the label space)"
        )
    if top_k < 1:
        raise ValueError("compute_metrics: top_k must be at least 1")
    decided = space.decide(proba, thresholds)
    cut = cuts_paths(space, level)
    if cut:
        space, proba, decided = at_level(space, proba, decided, level)
        true_labels = cut_labels(true_labels, level)
    if space.is_multi:
        metrics = _multi_metrics(space, true_labels, proba, decided, top_k, n_confusions)
        # which cut made the decisions: figures at 0.5 and at tuned cuts differ by several points
        metrics["label_cuts"] = "0.5" if thresholds is None else "per label"
    else:
        metrics = _single_metrics(space, true_labels, proba, decided, top_k, n_confusions)
    if cut:
        metrics["level"] = level
    return _plain(metrics)


def cuts_paths(space: LabelSpace, level: int | None) -> bool:
    """Whether scoring `space` at `level` levels cuts its paths (a path space deeper than that)."""
    return level is not None and space.label_format == "path" and level < space.depth


def cut_labels(true_labels: Sequence[Label], level: int) -> list[tuple[str, ...]]:
    """Path labels cut to their first `level` levels."""
    return [tuple(label[:level]) for label in true_labels]


def at_level(
    space: LabelSpace, proba: np.ndarray, decided: np.ndarray, level: int
) -> tuple[LabelSpace, np.ndarray, np.ndarray]:
    """A path model seen at its first `level` levels: (coarse space, probabilities, decisions).

    A category's probability is the sum of its paths' probabilities; a
    decision is the decided path cut to `level` levels, which is what a user
    who cuts the predictions gets, and what the `levels` entries score.
    """
    coarse, parent = space.coarsen(level)
    membership = np.zeros((space.n_classes, coarse.n_classes), dtype=np.float64)
    membership[np.arange(space.n_classes), parent] = 1.0
    summed = (np.asarray(proba, dtype=np.float64) @ membership).astype(np.asarray(proba).dtype)
    return coarse, summed, parent[np.asarray(decided)]


def precision_coverage(
    space: LabelSpace,
    true_labels: Sequence[Label],
    proba: np.ndarray,
    thresholds: np.ndarray | None = None,
    *,
    max_points: int = CURVE_POINTS,
) -> list[dict]:
    """Precision of the decisions kept when only confident ones are kept.

    single/path: confidence = top-1 probability, correct = top-1 is the true
    class. multi: confidence = the lowest probability among the chosen labels,
    correct = the chosen set equals the true set. Points go from the lowest
    threshold (coverage 1) upwards; coverage is the share of products kept.
    """
    confidence, correct = _confidence_and_correct(space, true_labels, np.asarray(proba), thresholds)
    thr, cov, prec = _curve(confidence, correct)
    keep = _curve_sample(cov, max_points)
    return [
        {"threshold": float(thr[i]), "coverage": float(cov[i]), "precision": float(prec[i])}
        for i in keep
    ]


# --- single / path ---------------------------------------------------------


def _single_metrics(space, true_labels, proba, decided, top_k, n_confusions) -> dict:
    fmt = space.label_format
    y_true = np.array([label_name(lab, fmt) for lab in true_labels], dtype=object)
    y_pred = np.array([space.classes[i] for i in decided], dtype=object)
    known = set(space.classes)
    unseen = Counter(t for t in y_true if t not in known)
    true_ids = space.encode(true_labels)

    metrics = {
        "n": len(y_true),
        "label_format": fmt,
        "n_classes": space.n_classes,
        **_flat_scores(y_true, y_pred),
        f"top{top_k}_accuracy": _top_k_single(true_ids, proba, top_k),
    }
    metrics["per_class"] = _per_class(y_true, y_pred)
    metrics["unseen_classes"] = dict(sorted(unseen.items(), key=lambda kv: (-kv[1], kv[0])))

    pairs = _confusion_pairs(y_true, y_pred)
    support = Counter(y_true.tolist())
    metrics["confusions"] = [
        {"true": t, "predicted": p, "count": c, "rate": c / support[t]} for (t, p), c in pairs[:n_confusions]
    ]
    metrics["confusion_focus"] = _confusion_focus(y_true, y_pred, pairs)

    # the probability of the decided class: the top-1 one, unless the
    # decisions were cut from finer paths (`at_level`)
    confidence = proba[np.arange(len(proba)), decided].astype(np.float64)
    correct = y_true == y_pred
    metrics["log_loss"] = _log_loss(true_ids, proba)
    metrics["ece"], metrics["calibration"] = _calibration(confidence, correct)
    if fmt == "path":
        metrics["levels"] = _levels(space, y_true, y_pred)
    _add_coverage(metrics, confidence, correct)
    return metrics


def _flat_scores(y_true, y_pred) -> dict:
    return {
        "accuracy": accuracy_score(y_true, y_pred),
        "macro_f1": f1_score(y_true, y_pred, average="macro", zero_division=0),
        "weighted_f1": f1_score(y_true, y_pred, average="weighted", zero_division=0),
        "micro_f1": f1_score(y_true, y_pred, average="micro", zero_division=0),
    }


def _per_class(y_true, y_pred) -> dict:
    labels = sorted(set(y_true.tolist()) | set(y_pred.tolist()))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    # int(): sklearn gives float supports when no prediction is right, which
    # would read "1.0" products in metrics.json and "1.0000" in report.md
    return {
        name: {"precision": p[i], "recall": r[i], "f1": f[i], "support": int(s[i])}
        for i, name in enumerate(labels)
    }


def _top_k_ranks(proba: np.ndarray, k: int) -> np.ndarray:
    """The k most probable class ids per row, ranked as predictions list them
    (`label_1` ... `label_k`): equal probabilities in class order, as argmax
    breaks them. sklearn's top_k_accuracy_score breaks them the other way, so
    a confident model's many probabilities of exactly 0 would put into its
    "top 3" a class that neither the decision nor the predictions file has."""
    return np.argsort(-proba, axis=1, kind="stable")[:, : min(k, proba.shape[1])]


def _top_k_single(true_ids: np.ndarray, proba: np.ndarray, k: int) -> float:
    # a true class the model does not know (id -1) is never a hit
    return float((_top_k_ranks(proba, k) == true_ids[:, None]).any(axis=1).mean())


def _confusion_pairs(y_true, y_pred) -> list[tuple[tuple[str, str], int]]:
    wrong = y_true != y_pred
    counts = Counter(zip(y_true[wrong].tolist(), y_pred[wrong].tolist()))
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def _confusion_focus(y_true, y_pred, pairs) -> dict:
    """Counts among the classes of the most frequent confusions, for the plot."""
    classes: list[str] = []
    for (t, p), _ in pairs:
        for name in (t, p):
            if name not in classes and len(classes) < FOCUS_CLASSES:
                classes.append(name)
        if len(classes) >= FOCUS_CLASSES:
            break
    index = {c: i for i, c in enumerate(classes)}
    counts = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for t, p in zip(y_true.tolist(), y_pred.tolist()):
        i, j = index.get(t), index.get(p)
        if i is not None and j is not None:
            counts[i, j] += 1
    support = Counter(y_true.tolist())
    return {"classes": classes, "support": [support[c] for c in classes], "counts": counts.tolist()}


def _log_loss(true_ids: np.ndarray, proba: np.ndarray) -> float | None:
    rows = np.flatnonzero(true_ids >= 0)
    if rows.size == 0:
        return None
    p = proba[rows].astype(np.float64)
    p = p / np.clip(p.sum(axis=1, keepdims=True), _EPS, None)
    picked = np.clip(p[np.arange(rows.size), true_ids[rows]], _EPS, 1.0)
    return 0.0 - float(np.log(picked).mean())  # not -0.0 when every pick is certain


def _calibration(confidence: np.ndarray, correct: np.ndarray) -> tuple[float, list[dict]]:
    # Bins (lower, upper]; a confidence of exactly 0 goes to the first bin.
    edges = np.linspace(0.0, 1.0, ECE_BINS + 1)
    bins = np.clip(np.ceil(confidence * ECE_BINS).astype(np.int64) - 1, 0, ECE_BINS - 1)
    n = confidence.size
    ece = 0.0
    table = []
    for b in range(ECE_BINS):
        mask = bins == b
        count = int(mask.sum())
        if count == 0:
            continue
        conf = float(confidence[mask].mean())
        acc = float(correct[mask].mean())
        ece += count / n * abs(acc - conf)
        table.append(
            {"lower": float(edges[b]), "upper": float(edges[b + 1]), "confidence": conf, "accuracy": acc, "count": count}
        )
    return ece, table


def _levels(space: LabelSpace, y_true, y_pred) -> list[dict]:
    levels = []
    for k in range(1, space.depth + 1):
        t = np.array([space.ancestor(name, k) for name in y_true], dtype=object)
        p = np.array([space.ancestor(name, k) for name in y_pred], dtype=object)
        levels.append(
            {
                "level": k,
                "n_classes": len({space.ancestor(c, k) for c in space.classes}),
                **_flat_scores(t, p),
                "per_class": _per_class(t, p),
            }
        )
    return levels


# --- multi ------------------------------------------------------------------


def _multi_metrics(space, true_labels, proba, decided, top_k, n_confusions) -> dict:
    known = set(space.classes)
    unseen = Counter(item for lab in true_labels for item in lab if item not in known)
    # Model classes first, in their own order, so the predictions are the
    # decision matrix padded with zero columns for the unseen labels.
    columns = list(space.classes) + sorted(unseen)
    mlb = MultiLabelBinarizer(classes=columns)
    y_true = mlb.fit_transform([list(lab) for lab in true_labels])
    y_pred = np.zeros_like(y_true)
    y_pred[:, : space.n_classes] = decided

    active = np.flatnonzero((y_true.sum(axis=0) + y_pred.sum(axis=0)) > 0)
    subset = accuracy_score(y_true, y_pred)
    metrics = {
        "n": len(true_labels),
        "label_format": space.label_format,
        "n_classes": space.n_classes,
        "accuracy": subset,
        "subset_accuracy": subset,
        "macro_f1": f1_score(y_true, y_pred, labels=active, average="macro", zero_division=0),
        "weighted_f1": f1_score(y_true, y_pred, average="weighted", zero_division=0),
        "micro_f1": f1_score(y_true, y_pred, average="micro", zero_division=0),
        "samples_f1": f1_score(y_true, y_pred, average="samples", zero_division=0),
        "hamming_loss": hamming_loss(y_true, y_pred),
    }
    ranked = _top_k_ranks(proba, top_k)
    known_true = y_true[:, : space.n_classes]
    metrics[f"top{top_k}_accuracy"] = float(np.take_along_axis(known_true, ranked, axis=1).any(axis=1).mean())

    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=active, zero_division=0)
    metrics["per_class"] = {
        columns[j]: {"precision": p[i], "recall": r[i], "f1": f[i], "support": s[i]} for i, j in enumerate(active)
    }
    metrics["unseen_classes"] = dict(sorted(unseen.items(), key=lambda kv: (-kv[1], kv[0])))

    fp = ((y_pred == 1) & (y_true == 0)).sum(axis=0)
    fn = ((y_pred == 0) & (y_true == 1)).sum(axis=0)
    order = sorted(active, key=lambda j: (-(fp[j] + fn[j]), columns[j]))
    metrics["label_errors"] = [
        {"label": columns[j], "fp": fp[j], "fn": fn[j], "support": y_true[:, j].sum()}
        for j in order[:n_confusions]
        if fp[j] + fn[j] > 0
    ]

    confidence = _multi_confidence(proba, decided)
    correct = (y_true == y_pred).all(axis=1)
    _add_coverage(metrics, confidence, correct)
    return metrics


def _multi_confidence(proba: np.ndarray, decided: np.ndarray) -> np.ndarray:
    chosen = np.where(decided.astype(bool), proba.astype(np.float64), np.inf)
    return chosen.min(axis=1)


# --- precision / coverage ---------------------------------------------------


def _confidence_and_correct(space, true_labels, proba, thresholds):
    decided = space.decide(proba, thresholds)
    if space.is_multi:
        truth = [tuple(sorted(set(lab))) for lab in true_labels]
        predicted = [tuple(space.classes[j] for j in np.flatnonzero(row)) for row in decided]
        correct = np.array([t == tuple(sorted(p)) for t, p in zip(truth, predicted)], dtype=bool)
        return _multi_confidence(proba, decided), correct
    y_true = np.array(space.names(true_labels), dtype=object)
    y_pred = np.array([space.classes[i] for i in decided], dtype=object)
    return proba.max(axis=1).astype(np.float64), y_true == y_pred


def _curve(confidence: np.ndarray, correct: np.ndarray):
    """Every distinct threshold, highest first: (threshold, coverage, precision)."""
    order = np.argsort(-confidence, kind="stable")
    conf = confidence[order]
    hits = np.cumsum(correct[order])
    # Products with equal confidence are kept or dropped together.
    ends = np.flatnonzero(np.r_[conf[1:] != conf[:-1], True])
    kept = ends + 1
    return conf[ends], kept / conf.size, hits[ends] / kept


def _curve_sample(coverage: np.ndarray, max_points: int) -> list[int]:
    """Indices of at most `max_points` points spread evenly over coverage,
    returned from the lowest threshold (full coverage) upwards."""
    if coverage.size <= max_points:
        idx = np.arange(coverage.size)
    else:
        targets = np.linspace(1.0 / max_points, 1.0, max_points)
        idx = np.unique(np.clip(np.searchsorted(coverage, targets - 1e-12), 0, coverage.size - 1))
    return idx[::-1].tolist()


def _add_coverage(metrics: dict, confidence: np.ndarray, correct: np.ndarray) -> None:
    thr, cov, prec = _curve(confidence, correct)
    metrics["precision_coverage"] = [
        {"threshold": thr[i], "coverage": cov[i], "precision": prec[i]} for i in _curve_sample(cov, CURVE_POINTS)
    ]
    rows = []
    for target in PRECISION_TARGETS:
        ok = np.flatnonzero(prec >= target - 1e-12)
        if ok.size:
            i = ok[-1]  # the lowest threshold that still reaches the target: most coverage
            rows.append({"target": target, "threshold": thr[i], "coverage": cov[i], "precision": prec[i]})
        else:
            rows.append({"target": target, "threshold": None, "coverage": 0.0, "precision": None})
    metrics["coverage_at_precision"] = rows


# --- JSON -------------------------------------------------------------------


def _plain(value):
    """numpy scalars to Python ones, NaN/inf to None, tuples to lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value
