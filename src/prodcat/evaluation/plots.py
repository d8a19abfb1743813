"""Figures for an evaluation report, drawn from a `compute_metrics` dict.

Each function takes the metrics and a file path, writes one PNG and closes
its figure. They are built to stay readable with hundreds of classes: they
show the classes that matter (the most confused, the weakest and strongest)
rather than all of them.

    >>> plot_per_class_f1(metrics, "per_class_f1.png")   # doctest: +SKIP
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

#: per-class F1 chart: with more classes than WEAKEST + STRONGEST, only these are shown
WEAKEST = 40
STRONGEST = 10
_LABEL_CHARS = 42


def short_name(name: str, limit: int = _LABEL_CHARS) -> str:
    """A class name cut to fit a tick label; a path keeps its last levels."""
    if len(name) <= limit:
        return name
    parts = name.split(" > ")
    if len(parts) > 1:
        tail = parts[-1]
        for part in reversed(parts[:-1]):
            if len(part) + 3 + len(tail) + 4 > limit:
                break
            tail = f"{part} > {tail}"
        name = f"… > {tail}"
        if len(name) <= limit:
            return name
    return name[: limit - 1] + "…"


def _names_as_written(draw):
    """Draw with matplotlib's mathtext off, so class names show as written.

    Matplotlib reads text between two "$" as TeX: a class named "$$ Deals"
    raised a ParseException, which lost the model `train` had just fitted
    (its report is written with it), and "Gifts $5-$10" was drawn as a formula.
    """

    @functools.wraps(draw)
    def draw_as_written(metrics: dict, path: str | Path) -> None:
        # Texts read the setting when they are made, so the whole figure is drawn inside.
        with plt.rc_context({"text.parse_math": False}):
            draw(metrics, path)

    return draw_as_written


def _save(fig, path: str | Path) -> None:
    try:
        with warnings.catch_warnings():
            # Class names in CJK or emoji have no glyph in the default font:
            # they are drawn as boxes, and a warning per glyph on every train
            # and evaluate would bury the output while telling the user nothing
            # they can act on (the names themselves are right in the report).
            warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)
            # An explicit format, so a temporary name without .png still works.
            fig.savefig(path, format="png", dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)


def _message(path: str | Path, title: str, text: str) -> None:
    fig, ax = plt.subplots(figsize=(6, 2.2))
    ax.set_title(title)
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=11)
    ax.set_axis_off()
    _save(fig, path)


@_names_as_written
def plot_confusions(metrics: dict, path: str | Path) -> None:
    """Single/path: a row-normalized confusion matrix among the most confused
    classes (a row's cells are shares of that true class's products, so the
    diagonal is its recall). Multi-label: false positives and false negatives
    of the labels with the most errors."""
    if metrics.get("label_format") == "multi":
        _plot_label_errors(metrics, path)
        return
    n_total = len(metrics.get("per_class", {}))
    focus = metrics.get("confusion_focus") or _focus_from_confusions(metrics)
    classes = list(focus["classes"])
    if not classes:
        _message(path, "Confusions", f"No confusions: every product of the {n_total} classes is predicted right.")
        return
    # Sorted by name, so the siblings of a path sit next to each other and
    # confusions inside one branch land near the diagonal.
    order = sorted(range(len(classes)), key=lambda i: classes[i])
    classes = [classes[i] for i in order]
    counts = np.asarray(focus["counts"], dtype=float)[np.ix_(order, order)]
    support = np.asarray(focus["support"], dtype=float)[order]
    shares = counts / np.clip(support, 1, None)[:, None]
    k = len(classes)
    labels = [short_name(c) for c in classes]

    side = max(5.0, 0.42 * k + 3.0)
    fig, ax = plt.subplots(figsize=(side + 1.5, side))
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=max(shares.max(), 1e-9))
    ax.set_xticks(range(k), labels, rotation=60, ha="right", rotation_mode="anchor", fontsize=8)
    ax.set_yticks(range(k), [f"{lab} (n={int(s)})" for lab, s in zip(labels, support)], fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class (support)")
    ax.set_title(
        f"Most confused classes: {k} of {n_total}\n"
        "cells: % of the true class's products predicted as each class (diagonal = recall)",
        fontsize=10,
    )
    threshold = shares.max() / 2
    for i in range(k):
        for j in range(k):
            if counts[i, j] > 0:
                pct = 100 * shares[i, j]
                text = "<1" if pct < 0.5 else f"{pct:.0f}"
                color = "white" if shares[i, j] > threshold else "black"
                ax.text(j, i, text, ha="center", va="center", fontsize=6.5, color=color)
    cbar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    cbar.ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    _save(fig, path)


def _focus_from_confusions(metrics: dict) -> dict:
    """A focus matrix rebuilt from the confusion list, for metrics without one."""
    per_class = metrics.get("per_class", {})
    classes: list[str] = []
    for row in metrics.get("confusions", []):
        for name in (row["true"], row["predicted"]):
            if name not in classes and len(classes) < 25:
                classes.append(name)
    index = {c: i for i, c in enumerate(classes)}
    counts = np.zeros((len(classes), len(classes)))
    support = [per_class.get(c, {}).get("support", 0) for c in classes]
    for i, c in enumerate(classes):
        counts[i, i] = per_class.get(c, {}).get("recall", 0.0) * support[i]
    for row in metrics.get("confusions", []):
        if row["true"] in index and row["predicted"] in index:
            counts[index[row["true"]], index[row["predicted"]]] = row["count"]
    return {"classes": classes, "support": support, "counts": counts.tolist()}


def _plot_label_errors(metrics: dict, path: str | Path) -> None:
    rows = metrics.get("label_errors", [])
    if not rows:
        _message(path, "Label errors", "No label errors.")
        return
    rows = rows[::-1]  # most errors at the top
    y = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(9, 1.5 + 0.3 * len(rows)))
    fp = np.array([r["fp"] for r in rows])
    fn = np.array([r["fn"] for r in rows])
    ax.barh(y, fp, color="tab:orange", label="false positive (predicted, not true)")
    ax.barh(y, fn, left=fp, color="tab:blue", label="false negative (true, missed)")
    ax.set_yticks(y, [f"{short_name(r['label'])} (n={r['support']})" for r in rows], fontsize=8)
    ax.set_xlabel("products")
    ax.set_title(f"Labels with the most errors: {len(rows)} of {len(metrics.get('per_class', {}))}", fontsize=10, pad=24)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False)
    _save(fig, path)


@_names_as_written
def plot_per_class_f1(metrics: dict, path: str | Path) -> None:
    """F1 per class, weakest at the top; with many classes only the weakest
    40 and the strongest 10, with a marker where the others are left out."""
    per_class = metrics.get("per_class", {})
    # A class predicted but never true has F1 0 by convention; it says nothing
    # about how well a real class is found, so it is counted, not drawn.
    predicted_only = sum(1 for row in per_class.values() if row["support"] == 0)
    items = sorted(
        ((name, row) for name, row in per_class.items() if row["support"] > 0),
        key=lambda kv: (kv[1]["f1"], -kv[1]["support"], kv[0]),
    )
    n_total = len(items)
    if not items:
        _message(path, "F1 per class", "No classes with support to show.")
        return
    omitted = 0
    if n_total > WEAKEST + STRONGEST:
        omitted = n_total - WEAKEST - STRONGEST
        shown = items[:WEAKEST] + [None] + items[-STRONGEST:]
    else:
        shown = items
    shown = shown[::-1]  # barh draws bottom-up; keep the weakest on top
    y = np.arange(len(shown))
    f1 = [row[1]["f1"] if row else 0.0 for row in shown]
    labels = [f"{short_name(row[0])} (n={row[1]['support']})" if row else f"··· {omitted} classes left out ···"
              for row in shown]
    colors = ["lightgray" if row is None else plt.cm.RdYlGn(0.15 + 0.7 * v) for row, v in zip(shown, f1)]

    fig, ax = plt.subplots(figsize=(9, 1.4 + 0.24 * len(shown)))
    ax.barh(y, f1, color=colors, height=0.75)
    ax.set_yticks(y, labels, fontsize=8)
    for i, row in enumerate(shown):
        if row is None:
            ax.axhline(i, color="gray", linestyle=":", linewidth=1)
            ax.get_yticklabels()[i].set_color("gray")
        else:
            ax.text(f1[i] + 0.01, i, f"{f1[i]:.2f}", va="center", fontsize=7)
    ax.set_xlim(0, 1.08)
    ax.set_ylim(-0.7, len(shown) - 0.3)
    macro = metrics.get("macro_f1")
    if macro is not None:
        ax.axvline(macro, color="black", linestyle="--", linewidth=0.8)
    ax.set_xlabel("F1" if macro is None else f"F1 (dashed line: macro F1 = {macro:.3f})")
    scope = (f"the weakest {WEAKEST} and strongest {STRONGEST} of {n_total} classes"
             if omitted else f"all {n_total} classes")
    note = f"; {predicted_only} predicted-only classes (no true products) not shown" if predicted_only else ""
    ax.set_title(f"F1 per class: {scope} with support (n = support){note}", fontsize=10)
    _save(fig, path)


@_names_as_written
def plot_levels(metrics: dict, path: str | Path) -> None:
    """Path labels: accuracy and macro F1 at each level of the hierarchy."""
    levels = metrics.get("levels") or []
    if not levels:
        _message(path, "Scores per level", "Not a path label: no levels.")
        return
    x = np.arange(len(levels))
    width = 0.38
    acc = [lv["accuracy"] for lv in levels]
    f1 = [lv["macro_f1"] for lv in levels]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.4 * len(levels) + 2), 4))
    bars_a = ax.bar(x - width / 2, acc, width, label="accuracy", color="tab:blue")
    bars_f = ax.bar(x + width / 2, f1, width, label="macro F1", color="tab:orange")
    for bars in (bars_a, bars_f):
        ax.bar_label(bars, fmt="%.3f", fontsize=8, padding=2)
    ax.set_xticks(x, [f"level {lv['level']}\n({lv['n_classes']} classes)" for lv in levels], fontsize=9)
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("score")
    ax.set_title("Scores per level of the category path", fontsize=10)
    ax.legend(loc="lower left", fontsize=8)
    _save(fig, path)


@_names_as_written
def plot_precision_coverage(metrics: dict, path: str | Path) -> None:
    """Precision against coverage as the confidence threshold rises."""
    points = metrics.get("precision_coverage") or []
    if not points:
        _message(path, "Precision / coverage", "No points.")
        return
    cov = [p["coverage"] for p in points]
    prec = [p["precision"] for p in points]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.plot(cov, prec, marker=".", color="tab:blue")
    for row in metrics.get("coverage_at_precision", []):
        if row.get("threshold") is not None:
            ax.plot(row["coverage"], row["precision"], "o", color="tab:red", markersize=5)
            ax.annotate(
                f"≥{row['target']:.2f}: {row['coverage']:.0%} kept (t={row['threshold']:.2f})",
                (row["coverage"], row["precision"]), textcoords="offset points", xytext=(-6, -12),
                ha="right", fontsize=7, color="tab:red",
            )
    ax.set_xlim(0, 1.02)
    low = min(prec)
    ax.set_ylim(max(0.0, low - 0.05), 1.01)
    ax.set_xlabel("coverage (share of products kept)")
    ax.set_ylabel("precision of the kept decisions")
    what = "min confidence of the chosen labels" if metrics.get("label_format") == "multi" else "top-1 confidence"
    ax.set_title(f"Precision vs coverage, thresholding the {what}", fontsize=10)
    ax.grid(alpha=0.3)
    _save(fig, path)
