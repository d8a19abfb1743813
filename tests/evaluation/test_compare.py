"""`versus_best_part`: decisions changed, headroom and the bootstrap interval of an ensemble's gain."""

import numpy as np
import pytest

from prodcat.evaluation import compute_metrics
from prodcat.evaluation.compare import versus_best_part
from prodcat.labels import LabelSpace


def one_hot(ids, n_classes, sure=0.9):
    proba = np.full((len(ids), n_classes), (1 - sure) / (n_classes - 1))
    proba[np.arange(len(ids)), ids] = sure
    return proba


@pytest.mark.parametrize("fmt", ["single", "path"])
def test_gain_is_the_difference_of_compute_metrics_macro_f1_even_with_unseen_classes(fmt):
    rng = np.random.default_rng(3)
    classes = ["A > x", "A > y", "B > z", "B > w", "C > v"] if fmt == "path" else list("ABCDE")
    space = LabelSpace(fmt, classes)
    names = classes + (["D > unseen"] if fmt == "path" else ["unseen"])
    true = [tuple(names[i].split(" > ")) if fmt == "path" else (names[i],) for i in rng.integers(0, 6, 300)]
    text, photo, both = (rng.dirichlet(np.ones(5), 300) for _ in range(3))
    v = versus_best_part(space, true, {"text": text, "photo": photo}, both)
    alone = {name: compute_metrics(space, true, p)["macro_f1"] for name, p in (("text", text), ("photo", photo))}
    best = max(alone, key=alone.get)
    assert v["best_part"] == best
    assert v["macro_f1_gain"] == pytest.approx(compute_metrics(space, true, both)["macro_f1"] - alone[best], abs=1e-9)
    assert v["n"] == 300 and v["resamples"] == 1000


def test_at_a_coarser_level_parts_are_compared_on_their_cut_paths():
    rng = np.random.default_rng(4)
    space = LabelSpace("path", ["A > x", "A > y", "B > z", "B > w", "C > v"])
    true = [(space.classes[i].split(" > ")[0],) for i in rng.integers(0, 5, 200)]
    parts = {"text": rng.dirichlet(np.ones(5), 200), "photo": rng.dirichlet(np.ones(5), 200)}
    both = rng.dirichlet(np.ones(5), 200)
    v = versus_best_part(space, true, parts, both, level=1)
    alone = {name: compute_metrics(space, true, p, level=1)["macro_f1"] for name, p in parts.items()}
    best = max(alone, key=alone.get)
    assert v["best_part"] == best
    assert v["macro_f1_gain"] == pytest.approx(compute_metrics(space, true, both, level=1)["macro_f1"] - alone[best],
                                               abs=1e-9)

    def top_level(proba):
        return np.array([space.classes[i][0] for i in proba.argmax(axis=1)])

    assert v["changed"] == int((top_level(parts[best]) != top_level(both)).sum())


def test_multi_label_gain_matches_compute_metrics_and_counts_whole_label_sets():
    space = LabelSpace("multi", ["red", "cotton", "kids"])
    true = [("red",), ("red", "cotton"), ("kids",), ("cotton", "new")]  # "new": a label the model does not know
    text = np.array([[0.9, 0.1, 0.1], [0.9, 0.2, 0.1], [0.1, 0.1, 0.9], [0.1, 0.9, 0.1]])
    photo = np.array([[0.9, 0.1, 0.1], [0.9, 0.9, 0.1], [0.9, 0.1, 0.1], [0.1, 0.1, 0.9]])
    both = np.array([[0.9, 0.1, 0.1], [0.9, 0.9, 0.1], [0.1, 0.1, 0.9], [0.1, 0.9, 0.1]])
    v = versus_best_part(space, true, {"text": text, "photo": photo}, both)
    assert v["best_part"] == "text"
    # only product 2 changed: its set {red, cotton} is now whole; product 4 misses "new" either way
    assert (v["changed"], v["fixed"], v["broken"], v["headroom"]) == (1, 1, 0, 1)
    expected = compute_metrics(space, true, both)["macro_f1"] - compute_metrics(space, true, text)["macro_f1"]
    assert v["macro_f1_gain"] == pytest.approx(expected, abs=1e-9)


def test_a_gain_from_one_product_is_not_called_a_gain_but_many_fixes_are():
    rng = np.random.default_rng(0)
    classes = [f"c{i}" for i in range(40)]
    space = LabelSpace("single", classes)
    ids = rng.integers(0, 40, 400)
    true = [(classes[i],) for i in ids]
    text_ids = np.where(rng.random(400) < 0.85, ids, rng.integers(0, 40, 400))
    photo_ids = np.where(rng.random(400) < 0.5, ids, rng.integers(0, 40, 400))
    wrong = np.flatnonzero(text_ids != ids)
    text, photo = one_hot(text_ids, 40), one_hot(photo_ids, 40)

    one_fix = text_ids.copy()
    one_fix[wrong[0]] = ids[wrong[0]]
    small = versus_best_part(space, true, {"text": text, "photo": photo}, one_hot(one_fix, 40))
    assert (small["changed"], small["fixed"], small["broken"]) == (1, 1, 0)
    assert small["macro_f1_gain"] > 0
    assert small["gain_interval"][0] <= 0 < small["gain_interval"][1]

    many_fixes = text_ids.copy()
    many_fixes[wrong[: len(wrong) // 2]] = ids[wrong[: len(wrong) // 2]]
    large = versus_best_part(space, true, {"text": text, "photo": photo}, one_hot(many_fixes, 40))
    assert large["fixed"] == len(wrong) // 2 and large["broken"] == 0
    assert 0 < large["gain_interval"][0] <= large["macro_f1_gain"] <= large["gain_interval"][1]
    # headroom: text is wrong where the photo is right
    assert large["headroom"] == int(((text_ids != ids) & (photo_ids == ids)).sum())


def test_the_interval_is_the_same_for_the_same_seed_and_moves_with_another():
    rng = np.random.default_rng(1)
    space = LabelSpace("single", list("ABCD"))
    true = [("ABCD"[i],) for i in rng.integers(0, 4, 200)]
    text, photo, both = (rng.dirichlet(np.ones(4), 200) for _ in range(3))
    first = versus_best_part(space, true, {"text": text, "photo": photo}, both, seed=5)
    assert versus_best_part(space, true, {"text": text, "photo": photo}, both, seed=5) == first
    assert versus_best_part(space, true, {"text": text, "photo": photo}, both, seed=6)["gain_interval"] != \
        first["gain_interval"]


def test_nothing_to_compare_is_an_error():
    space = LabelSpace("single", ["A", "B"])
    with pytest.raises(ValueError, match="no parts"):
        versus_best_part(space, [("A",)], {}, np.array([[0.9, 0.1]]))
