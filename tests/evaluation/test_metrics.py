"""compute_metrics agrees with scikit-learn, and never crashes on classes the model never saw."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    hamming_loss,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)
from sklearn.preprocessing import MultiLabelBinarizer

from prodcat.evaluation import compute_metrics, precision_coverage
from prodcat.labels import LabelSpace


def noisy_proba(y: np.ndarray, n_classes: int, rng: np.random.Generator, signal: float = 2.5) -> np.ndarray:
    logits = rng.normal(0.0, 1.0, (len(y), n_classes))
    logits[np.arange(len(y)), y] += signal
    proba = np.exp(logits)
    return proba / proba.sum(axis=1, keepdims=True)


def assert_plain_json(value) -> None:
    text = json.dumps(value, allow_nan=False)
    assert json.loads(text) == value


@pytest.fixture
def single_case():
    rng = np.random.default_rng(0)
    classes = ["Bags", "Dresses", "Jeans", "Shirts", "Shoes", "Watches"]
    space = LabelSpace("single", classes)
    y = rng.integers(0, len(classes), 400)
    proba = noisy_proba(y, len(classes), rng)
    labels = [(classes[i],) for i in y]
    return space, labels, proba, y


def test_single_matches_sklearn(single_case):
    space, labels, proba, y = single_case
    m = compute_metrics(space, labels, proba)
    y_true = np.array([lab[0] for lab in labels])
    y_pred = np.array([space.classes[i] for i in proba.argmax(axis=1)])

    assert m["n"] == 400 and m["label_format"] == "single" and m["n_classes"] == 6
    assert m["accuracy"] == accuracy_score(y_true, y_pred)
    for avg in ("macro", "weighted", "micro"):
        assert m[f"{avg}_f1"] == f1_score(y_true, y_pred, average=avg)
    assert m["top3_accuracy"] == top_k_accuracy_score(y, proba, k=3, labels=range(6))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=space.classes, zero_division=0)
    assert list(m["per_class"]) == space.classes
    for i, name in enumerate(space.classes):
        assert m["per_class"][name] == {"precision": p[i], "recall": r[i], "f1": f[i], "support": int(s[i])}
    assert m["unseen_classes"] == {}
    assert m["log_loss"] == pytest.approx(-np.mean(np.log(proba[np.arange(400), y])))
    assert 0.0 <= m["ece"] <= 1.0
    assert sum(b["count"] for b in m["calibration"]) == 400
    assert "levels" not in m
    assert_plain_json(m)


def test_top_k_key_follows_k(single_case):
    space, labels, proba, y = single_case
    m = compute_metrics(space, labels, proba, top_k=2)
    assert "top3_accuracy" not in m
    assert m["top2_accuracy"] == top_k_accuracy_score(y, proba, k=2, labels=range(6))


@pytest.mark.parametrize("label_format", ["single", "multi"])
def test_top_k_ranks_equal_probabilities_as_the_predictions_list_them(label_format):
    # A confident model's other probabilities are often exactly 0 in float32:
    # sklearn's tie-breaking would count the last of them as in the top 2.
    space = LabelSpace(label_format, ["A", "B", "C", "D"])
    proba = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]], dtype=np.float32)
    m = compute_metrics(space, [("D",), ("C",)], proba, top_k=2)
    assert m["top2_accuracy"] == 0.0  # the predictions file lists A, B and D, A
    tied = np.array([[0.5, 0.5, 0.0, 0.0]])
    single = LabelSpace("single", ["A", "B", "C", "D"])
    m = compute_metrics(single, [("A",)], tied, top_k=1)
    assert m["top1_accuracy"] == m["accuracy"] == 1.0  # argmax decides A on the tie


def test_unseen_true_classes_are_errors_not_crashes():
    space = LabelSpace("single", ["A", "B", "C"])
    labels = [("A",), ("B",), ("C",), ("Ghost",), ("Ghost",), ("Phantom",)]
    proba = np.array(
        [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4]]
    )
    m = compute_metrics(space, labels, proba)
    y_true = [lab[0] for lab in labels]
    y_pred = ["A", "B", "C", "A", "B", "C"]

    assert m["unseen_classes"] == {"Ghost": 2, "Phantom": 1}
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["macro_f1"] == f1_score(y_true, y_pred, average="macro")
    assert m["weighted_f1"] == f1_score(y_true, y_pred, average="weighted")
    assert m["per_class"]["Ghost"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert m["top3_accuracy"] == pytest.approx(0.5)  # the 3 known rows hit, the unseen ones never can
    assert m["log_loss"] == pytest.approx(-np.log(0.8))  # on the known rows only
    assert {"true": "Ghost", "predicted": "A", "count": 1, "rate": 0.5} in m["confusions"]
    assert_plain_json(m)


def test_supports_are_counts_even_when_every_prediction_is_wrong():
    # sklearn returns float supports when no prediction is right
    space = LabelSpace("path", ["A > a1", "B > b1", "C > c1"])
    proba = np.array([[0.2, 0.5, 0.3], [0.5, 0.2, 0.3]])
    m = compute_metrics(space, [("A", "a1"), ("C", "c1")], proba)
    for per_class in [m["per_class"]] + [lv["per_class"] for lv in m["levels"]]:
        assert all(type(row["support"]) is int for row in per_class.values())
    assert m["per_class"]["A > a1"]["support"] == 1


def test_confusions_most_frequent_first_with_rates():
    space = LabelSpace("single", ["A", "B", "C"])
    pairs = [("A", "B")] * 5 + [("B", "C")] * 3 + [("C", "A")] * 1 + [("A", "A")] * 5 + [("B", "B")] * 3
    labels = [(t,) for t, _ in pairs]
    proba = np.array([[0.9 if c == p else 0.05 for c in space.classes] for _, p in pairs])
    m = compute_metrics(space, labels, proba)
    assert [(c["true"], c["predicted"], c["count"]) for c in m["confusions"]] == [
        ("A", "B", 5),
        ("B", "C", 3),
        ("C", "A", 1),
    ]
    assert [c["rate"] for c in m["confusions"]] == pytest.approx([0.5, 0.5, 1.0])
    assert len(compute_metrics(space, labels, proba, n_confusions=2)["confusions"]) == 2
    focus = m["confusion_focus"]
    assert focus["classes"] == ["A", "B", "C"]
    assert focus["counts"] == [[5, 5, 0], [0, 3, 3], [1, 0, 0]]


def test_ece_is_zero_when_calibrated_and_the_gap_when_not():
    space = LabelSpace("single", ["no", "yes"])
    n = 1000
    proba = np.tile([0.2, 0.8], (n, 1))
    calibrated = [("yes",)] * 800 + [("no",)] * 200  # 80% right at 80% confidence
    m = compute_metrics(space, calibrated, proba)
    assert m["ece"] == pytest.approx(0.0, abs=1e-12)
    assert m["calibration"] == [
        {"lower": pytest.approx(11 / 15), "upper": pytest.approx(12 / 15), "confidence": pytest.approx(0.8),
         "accuracy": pytest.approx(0.8), "count": n}
    ]
    overconfident = [("yes",)] * 500 + [("no",)] * 500
    assert compute_metrics(space, overconfident, proba)["ece"] == pytest.approx(0.3)


def test_path_levels_match_sklearn_on_ancestors():
    rng = np.random.default_rng(1)
    classes = sorted(
        f"{top} > {mid} > {leaf}"
        for top, mids in {"Apparel": ["Topwear", "Bottomwear"], "Footwear": ["Shoes", "Sandals"]}.items()
        for mid in mids
        for leaf in ("x", "y", "z")
    )
    space = LabelSpace("path", classes)
    y = rng.integers(0, len(classes), 300)
    proba = noisy_proba(y, len(classes), rng, signal=1.5)
    labels = [tuple(classes[i].split(" > ")) for i in y]
    m = compute_metrics(space, labels, proba)

    y_true = np.array([classes[i] for i in y])
    y_pred = np.array([classes[i] for i in proba.argmax(axis=1)])
    assert m["accuracy"] == accuracy_score(y_true, y_pred)
    assert m["macro_f1"] == f1_score(y_true, y_pred, average="macro")
    assert [lv["level"] for lv in m["levels"]] == [1, 2, 3]
    assert [lv["n_classes"] for lv in m["levels"]] == [2, 4, 12]
    for lv in m["levels"]:
        t = [LabelSpace.ancestor(c, lv["level"]) for c in y_true]
        p = [LabelSpace.ancestor(c, lv["level"]) for c in y_pred]
        assert lv["accuracy"] == accuracy_score(t, p)
        for avg in ("macro", "weighted", "micro"):
            assert lv[f"{avg}_f1"] == f1_score(t, p, average=avg)
        assert set(lv["per_class"]) == set(t) | set(p)
    # coarser levels can only be as good or better
    assert m["levels"][0]["accuracy"] >= m["levels"][1]["accuracy"] >= m["levels"][2]["accuracy"]
    assert m["levels"][2]["accuracy"] == m["accuracy"]
    assert_plain_json(m)


def test_path_unseen_leaf_still_scores_its_known_ancestors():
    space = LabelSpace("path", ["A > a1", "A > a2", "B > b1"])
    labels = [("A", "a1"), ("A", "a3"), ("B", "b1")]  # "A > a3" was never learned
    proba = np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8]])
    m = compute_metrics(space, labels, proba)
    assert m["unseen_classes"] == {"A > a3": 1}
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["levels"][0]["accuracy"] == 1.0


def test_a_coarser_level_cuts_the_decided_paths_and_sums_their_probabilities():
    space = LabelSpace("path", ["A > a1", "A > a2", "B > b1"])
    labels = [("A", "a1"), ("A", "a2"), ("B", "b1")]
    # Row 2: its leaf decision is B > b1 although A's paths add up to more;
    # a user cutting the predictions gets B, so that is what is scored.
    proba = np.array([[0.7, 0.2, 0.1], [0.3, 0.3, 0.4], [0.1, 0.1, 0.8]])
    full = compute_metrics(space, labels, proba)
    m = compute_metrics(space, [lab[:1] for lab in labels], proba, level=1)
    assert m["level"] == 1 and m["n_classes"] == 2 and [lv["level"] for lv in m["levels"]] == [1]
    assert m["accuracy"] == full["levels"][0]["accuracy"] == pytest.approx(2 / 3)
    assert m["macro_f1"] == full["levels"][0]["macro_f1"]
    assert m["confusions"][0] == {"true": "A", "predicted": "B", "count": 1, "rate": 0.5}
    assert m["top3_accuracy"] == 1.0
    # confidence is the summed probability of the decided category, B's 0.4 here
    assert sorted(r["threshold"] for r in m["precision_coverage"]) == pytest.approx([0.4, 0.8, 0.9])
    assert "level" not in compute_metrics(space, labels, proba, level=2)
    assert_plain_json(m)


@pytest.fixture
def multi_case():
    rng = np.random.default_rng(2)
    classes = ["cotton", "kids", "men", "summer", "winter", "women"]
    space = LabelSpace("multi", classes)
    y = rng.random((300, len(classes))) < 0.3
    y[np.arange(300), rng.integers(0, len(classes), 300)] = True
    proba = np.clip(0.6 * y + rng.normal(0.2, 0.2, y.shape), 0, 1)
    labels = [tuple(classes[j] for j in np.flatnonzero(row)) for row in y]
    return space, labels, proba


def test_multi_matches_sklearn(multi_case):
    space, labels, proba = multi_case
    labels = list(labels)
    labels[0] = labels[0] + ("zz-unseen",)
    m = compute_metrics(space, labels, proba)

    mlb = MultiLabelBinarizer(classes=space.classes + ["zz-unseen"])
    y_true = mlb.fit_transform(labels)
    y_pred = np.hstack([space.decide(proba), np.zeros((300, 1), dtype=np.uint8)])
    active = np.flatnonzero(y_true.sum(axis=0) + y_pred.sum(axis=0))

    assert m["accuracy"] == m["subset_accuracy"] == accuracy_score(y_true, y_pred)
    assert m["hamming_loss"] == hamming_loss(y_true, y_pred)
    assert m["micro_f1"] == f1_score(y_true, y_pred, average="micro")
    assert m["weighted_f1"] == f1_score(y_true, y_pred, average="weighted")
    assert m["samples_f1"] == f1_score(y_true, y_pred, average="samples")
    assert m["macro_f1"] == f1_score(y_true, y_pred, average="macro", labels=active)
    assert m["unseen_classes"] == {"zz-unseen": 1}
    assert m["per_class"]["zz-unseen"]["recall"] == 0.0 and m["per_class"]["zz-unseen"]["support"] == 1

    top3 = np.argsort(-proba, axis=1, kind="stable")[:, :3]
    expected = np.mean([bool(set(lab) & {space.classes[j] for j in row}) for lab, row in zip(labels, top3)])
    assert m["top3_accuracy"] == pytest.approx(expected)
    assert all(e["fp"] + e["fn"] > 0 for e in m["label_errors"])
    assert "confusions" not in m and "ece" not in m
    assert_plain_json(m)


def test_multi_thresholds_are_used(multi_case):
    space, labels, proba = multi_case
    strict = compute_metrics(space, labels, proba, thresholds=np.full(6, 0.99))
    loose = compute_metrics(space, labels, proba, thresholds=np.full(6, 0.5))
    assert strict["micro_f1"] != loose["micro_f1"]


def test_precision_coverage_single(single_case):
    space, labels, proba, _ = single_case
    m = compute_metrics(space, labels, proba)
    points = m["precision_coverage"]
    assert 2 <= len(points) <= 50
    assert points[0]["coverage"] == 1.0
    assert points[0]["precision"] == pytest.approx(m["accuracy"])
    thresholds = [p["threshold"] for p in points]
    coverages = [p["coverage"] for p in points]
    assert thresholds == sorted(thresholds) and coverages == sorted(coverages, reverse=True)
    assert precision_coverage(space, labels, proba) == points
    for row in m["coverage_at_precision"]:
        if row["threshold"] is not None:
            kept = proba.max(axis=1) >= row["threshold"]
            assert kept.mean() == pytest.approx(row["coverage"])
            assert row["precision"] >= row["target"]


def test_precision_coverage_multi_uses_subset_correctness(multi_case):
    space, labels, proba = multi_case
    points = precision_coverage(space, labels, proba)
    assert points[0]["coverage"] == 1.0
    assert points[0]["precision"] == pytest.approx(compute_metrics(space, labels, proba)["subset_accuracy"])


def test_bad_shapes_are_refused(single_case):
    space, labels, proba, _ = single_case
    with pytest.raises(ValueError, match="shape"):
        compute_metrics(space, labels, proba[:, :3])
    with pytest.raises(ValueError, match="no products"):
        compute_metrics(space, [], proba[:0])


def test_a_certain_right_model_has_a_log_loss_of_zero_not_minus_zero():
    # -log(1.0) is -0.0, which the report printed as "log loss -0.0000"
    space = LabelSpace("single", ["A", "B"])
    m = compute_metrics(space, [("A",), ("B",)], np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert m["log_loss"] == 0.0 and str(m["log_loss"]) == "0.0"
