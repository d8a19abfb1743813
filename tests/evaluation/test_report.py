"""write_report writes every file, the figures are real PNGs, report.md says the numbers."""

from __future__ import annotations

import json

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from prodcat.evaluation import compute_metrics, write_report
from prodcat.evaluation.report import escape_cell, render_markdown
from prodcat.labels import LabelSpace

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def synthetic(label_format: str, n_classes: int = 120, n: int = 1500, seed: int = 0):
    """Imbalanced classes, some pairs systematically confused, one unseen true class."""
    rng = np.random.default_rng(seed)
    if label_format == "path":
        classes = sorted(f"Dept {i % 5} > Group {i % 13} > Leaf {i:03d}" for i in range(n_classes))
    else:
        classes = [f"Class {i:03d}" for i in range(n_classes)]
    space = LabelSpace(label_format, classes)
    weights = 1.0 / np.arange(1, n_classes + 1) ** 0.8
    y = rng.choice(n_classes, n, p=weights / weights.sum())
    logits = rng.normal(0, 1, (n, n_classes))
    logits[np.arange(n), y] += rng.uniform(1, 8, n)
    for a in range(0, min(20, n_classes - 1), 2):
        logits[y == a, a + 1] += 3
    proba = np.exp(logits)
    proba /= proba.sum(axis=1, keepdims=True)
    split = label_format == "path"
    labels = [tuple(classes[i].split(" > ")) if split else (classes[i],) for i in y]
    labels[0] = ("Dept 9", "New", "Unseen") if split else ("Unseen class",)
    return space, labels, proba


def assert_png(path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def examples_for(space, labels, proba) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "text": [f"item {i} | size M\nslim" for i in range(len(labels))],
            "true": space.names(labels),
            "predicted": space.decisions_to_names(space.decide(proba)),
            "confidence": proba.max(axis=1),
        }
    )


def test_report_single_120_classes(tmp_path):
    space, labels, proba = synthetic("single")
    metrics = compute_metrics(space, labels, proba)
    out = tmp_path / "nested" / "report"
    report = write_report(metrics, out, title="Demo | run", examples=examples_for(space, labels, proba))

    assert report == out / "report.md"
    names = sorted(p.name for p in out.iterdir())
    assert names == ["confusion_matrix.png", "metrics.json", "per_class_f1.png", "precision_coverage.png", "report.md"]
    for name in names:
        if name.endswith(".png"):
            assert_png(out / name)
    assert json.loads((out / "metrics.json").read_text()) == metrics

    text = report.read_text()
    assert text.startswith("# Demo \\| run")
    for key in ("accuracy", "macro_f1", "weighted_f1", "micro_f1", "top3_accuracy", "ece"):
        assert f"{metrics[key]:.4f}" in text, key
    assert f"| products (n) | {metrics['n']} |" in text
    assert "## Weakest 10 classes" in text
    assert "## Most confused pairs (10)" in text
    assert "Unseen class" in text  # listed among the classes the model never learned
    # the log loss leaves out that product: the row says which it covers
    assert f"| log loss (the {metrics['n'] - 1:,} products of classes the model knows) | {metrics['log_loss']:.4f} |" in text
    for target in ("0.90", "0.95", "0.99"):
        assert f"| {target} |" in text
    for name in ("confusion_matrix.png", "per_class_f1.png", "precision_coverage.png"):
        assert f"![]({name})" in text
    assert "levels.png" not in text


def test_report_path_has_levels(tmp_path):
    space, labels, proba = synthetic("path", n=800)
    metrics = compute_metrics(space, labels, proba)
    write_report(metrics, tmp_path)
    assert_png(tmp_path / "levels.png")
    assert_png(tmp_path / "confusion_matrix.png")
    text = (tmp_path / "report.md").read_text()
    assert "## Per level" in text and "![](levels.png)" in text
    for lv in metrics["levels"]:
        assert f"| {lv['level']} | {lv['n_classes']} | {lv['accuracy']:.4f} |" in text


def test_report_multi(tmp_path):
    rng = np.random.default_rng(3)
    classes = [f"tag{i:02d}" for i in range(30)]
    space = LabelSpace("multi", classes)
    y = rng.random((300, 30)) < 0.08
    y[np.arange(300), rng.integers(0, 30, 300)] = True
    proba = np.clip(0.6 * y + rng.normal(0.15, 0.2, y.shape), 0, 1)
    labels = [tuple(classes[j] for j in np.flatnonzero(row)) for row in y]
    metrics = compute_metrics(space, labels, proba)
    write_report(metrics, tmp_path)
    for name in ("confusion_matrix.png", "per_class_f1.png", "precision_coverage.png"):
        assert_png(tmp_path / name)
    text = (tmp_path / "report.md").read_text()
    assert "subset accuracy" in text and f"{metrics['hamming_loss']:.4f}" in text
    assert "## Labels with the most errors" in text


def test_a_multi_label_report_says_at_which_cuts_labels_were_decided():
    # 0.5 and tuned per-label cuts give figures several points apart: the report must say which it shows
    space = LabelSpace("multi", ["a", "b", "c"])
    labels = [("a",), ("b", "c"), ("c",), ("a", "b")]
    proba = np.array([[0.9, 0.2, 0.1], [0.1, 0.4, 0.8], [0.2, 0.1, 0.3], [0.6, 0.45, 0.1]], np.float32)
    tuned = compute_metrics(space, labels, proba, np.array([0.5, 0.35, 0.25], np.float32))
    plain = compute_metrics(space, labels, proba)
    assert (tuned["label_cuts"], plain["label_cuts"]) == ("per label", "0.5")
    assert tuned["macro_f1"] > plain["macro_f1"]
    assert "per-label probability cuts tuned on validation." in render_markdown(tuned)
    assert "decided at probability 0.5: the model had no validation products" in render_markdown(plain)
    with_parts = {**tuned, "components": {"text": {"label_cuts": "per label"}, "combined": {}}}
    assert "(each part of the model at its own)." in render_markdown(with_parts)
    with_parts["components"]["text"]["label_cuts"] = "0.5"
    assert "its parts alone at 0.5" in render_markdown(with_parts)


def test_no_temporary_files_left_and_rewrite_replaces(tmp_path):
    space, labels, proba = synthetic("single", n_classes=8, n=200)
    metrics = compute_metrics(space, labels, proba)
    write_report(metrics, tmp_path)
    write_report(metrics, tmp_path, title="Second")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert (tmp_path / "report.md").read_text().startswith("# Second")


@pytest.mark.parametrize(
    ("raw", "cell"),
    [
        ("a|b", "a\\|b"),
        ("line one\nline two", "line one line two"),
        ("back\\slash", "back\\\\slash"),
        (None, ""),
        (0.5, "0.5"),
        ("$5 *sale* [new] <b>_x_ ~~y~~ `z`", r"\$5 \*sale\* \[new\] \<b>\_x\_ \~\~y\~\~ \`z\`"),
        ("Apparel > Shirts", "Apparel > Shirts"),
    ],
)
def test_escape_cell(raw, cell):
    assert escape_cell(raw) == cell


def test_escape_cell_cuts_long_text():
    assert len(escape_cell("x" * 500, limit=50)) == 50


def test_confident_mistakes_table_is_escaped_and_ordered():
    space = LabelSpace("single", ["A", "B"])
    labels = [("A",), ("A",), ("B",), ("B",)]
    proba = np.array([[0.1, 0.9], [0.4, 0.6], [0.2, 0.8], [0.95, 0.05]])
    metrics = compute_metrics(space, labels, proba)
    examples = pd.DataFrame(
        {
            "text": ["red | blue shirt", "second\nline", "right one", "third"],
            "true": ["A", "A", "B", "B"],
            "predicted": ["B", "B", "B", "A"],
            "confidence": proba.max(axis=1),
        }
    )
    text = render_markdown(metrics, examples=examples)
    section = text.split("## Confident mistakes")[1]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [r.split(" | ")[0] for r in rows] == ["| third", "| red \\| blue shirt", "| second line"]
    for row in rows:
        unescaped = row.replace("\\|", "")
        assert unescaped.count("|") == 5  # 4 columns
    assert "right one" not in section
    assert "To check every product of a catalog, with its ids: `prodcat label-issues`." in section


def test_by_part_table_and_photo_count():
    space = LabelSpace("single", ["A", "B"])
    metrics = compute_metrics(space, [("A",), ("B",)], np.array([[0.9, 0.1], [0.2, 0.8]]))
    metrics["components"] = {
        "tfidf-linear": {"accuracy": 0.9, "macro_f1": 0.85, "weighted_f1": 0.88, "n": 2},
        "image-pretrained": {"accuracy": 0.7, "macro_f1": 0.6, "weighted_f1": 0.65, "n": 2},
        "combined": {"accuracy": 1.0, "macro_f1": 1.0, "weighted_f1": 1.0, "n": 2},
    }
    metrics["images"] = {"with_image": 1, "without_image": 1}
    text = render_markdown(metrics)
    section = text.split("## By part")[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows == [
        "| part | accuracy | macro-F1 | weighted-F1 |",
        "| tfidf-linear | 0.9000 | 0.8500 | 0.8800 |",
        "| image-pretrained | 0.7000 | 0.6000 | 0.6500 |",
        "| combined | 1.0000 | 1.0000 | 1.0000 |",
    ]
    assert "1 of 2 products have a photo reference" in text
    assert text.index("## By part") < text.index("## Weakest")
    plain = compute_metrics(space, [("A",), ("B",)], np.array([[0.9, 0.1], [0.2, 0.8]]))
    assert "By part" not in render_markdown(plain) and "photo" not in render_markdown(plain)


def test_a_multi_label_by_part_table_names_its_accuracy_subset_accuracy():
    space = LabelSpace("multi", ["a", "b"])
    metrics = compute_metrics(space, [("a",), ("a", "b")], np.array([[0.9, 0.1], [0.8, 0.2]]))
    metrics["components"] = {name: {k: metrics[k] for k in ("accuracy", "macro_f1", "weighted_f1", "n")}
                             for name in ("text", "combined")}
    section = render_markdown(metrics).split("## By part")[1]
    assert "| part | subset accuracy | macro-F1 | weighted-F1 |" in section
    assert "| combined | 0.5000 |" in section


def test_report_says_how_many_products_seen_in_training_were_left_out_or_kept():
    space = LabelSpace("single", ["A", "B"])
    metrics = compute_metrics(space, [("A",), ("B",)], np.array([[0.9, 0.1], [0.2, 0.8]]))
    assert "seen in training" not in render_markdown(metrics) and "saw in training" not in render_markdown(metrics)
    left_out = render_markdown({**metrics, "excluded_seen_in_training": 7, "kept_seen_in_training": 0})
    assert "7 products the model saw in training were left out." in left_out
    kept = render_markdown({**metrics, "excluded_seen_in_training": 0, "kept_seen_in_training": 2})
    assert "2 of these products were seen in training and scored anyway (`--keep-seen`)" in kept


@pytest.mark.parametrize("interval, verdict", [
    ([-0.002, 0.057], "not clearly different from its best part: the interval holds 0"),
    ([0.01, 0.05], "better than its best part beyond the noise"),
    ([-0.03, -0.001], "worse than its best part beyond the noise"),
])
def test_versus_best_part_paragraph_says_whether_the_gain_is_beyond_noise(interval, verdict):
    space = LabelSpace("single", ["A", "B"])
    metrics = compute_metrics(space, [("A",), ("B",)], np.array([[0.9, 0.1], [0.2, 0.8]]))
    metrics["versus_best_part"] = {"best_part": "tfidf-linear", "n": 207, "changed": 2, "fixed": 1, "broken": 0,
                                   "headroom": 3, "macro_f1_gain": 0.0427, "gain_interval": interval,
                                   "resamples": 1000}
    text = render_markdown(metrics)
    assert ("Against its best part alone (tfidf-linear): the combined model changes 2 of 207 decisions "
            "(1 fixed, 0 broken)") in text
    assert "another part is right 3 times" in text and "Macro-F1 +0.043" in text
    assert verdict in text


def test_class_names_without_a_glyph_in_the_font_draw_without_warnings(tmp_path):
    import warnings

    space = LabelSpace("single", ["厨房 🍳", "玩具", "靴子"])
    labels = [("厨房 🍳",), ("玩具",), ("靴子",), ("玩具",)]
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.6, 0.2, 0.2], [0.1, 0.2, 0.7]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a Glyph ... missing from font warning fails the test
        write_report(compute_metrics(space, labels, proba), tmp_path / "r")
    assert (tmp_path / "r" / "confusion_matrix.png").is_file() and (tmp_path / "r" / "per_class_f1.png").is_file()


@pytest.mark.parametrize("label_format", ["single", "path", "multi"])
def test_class_names_with_dollar_signs_draw_as_written(tmp_path, label_format):
    # matplotlib reads text between two "$" as TeX: "$$ Deals" raised a ParseException
    # (losing the model train had fitted) and "Gifts $5-$10" was drawn as a formula
    names = ["$$ Deals", "Gifts $5-$10", "Sale $\\frac$ > Under $_{$"]
    classes = [f"Shop > {name}" for name in names] if label_format == "path" else names
    space = LabelSpace(label_format, sorted(classes))
    labels = [tuple(c.split(" > ")) if label_format == "path" else (c,) for c in space.classes] * 2
    proba = np.array([[0.6, 0.3, 0.1], [0.7, 0.2, 0.1], [0.1, 0.3, 0.6]] * 2)
    metrics = compute_metrics(space, labels, proba)
    write_report(metrics, tmp_path / "r")
    for name in ("confusion_matrix.png", "per_class_f1.png", "precision_coverage.png"):
        assert_png(tmp_path / "r" / name)


def test_a_figure_that_cannot_be_drawn_costs_neither_the_report_nor_the_trained_model(tmp_path, monkeypatch, capsys):
    # a plotting error (the "$$ Deals" ParseException was one) ended train with a traceback and
    # no model: the report is written with the model, all or nothing
    from cli_runner import run
    from prodcat import Categorizer
    from prodcat.evaluation import plots
    from tiny_catalogs import tiny_frame

    def broken(metrics, path):
        raise RuntimeError("no font\nfor this")

    monkeypatch.setattr(plots, "plot_per_class_f1", broken)
    data = tmp_path / "shop.csv"
    tiny_frame(8).to_csv(data, index=False)
    code, _, err = run(capsys, "train", "--data", data, "--text-cols", "title", "--label-col", "leaf",
                       "--out", tmp_path / "model")
    assert code == 0, err
    assert "figure per_class_f1.png could not be drawn (RuntimeError: no font for this); the report goes without it" \
        in " ".join(err.split())
    report = tmp_path / "model" / "report"
    assert (report / "confusion_matrix.png").is_file() and not (report / "per_class_f1.png").exists()
    text = (report / "report.md").read_text()
    assert "Not drawn: per_class_f1.png (RuntimeError: no font for this)" in text
    assert "![](per_class_f1.png)" not in text and "![](confusion_matrix.png)" in text
    assert Categorizer.load(tmp_path / "model").predict(["oxford shirt"])
