"""Write an evaluation report: metrics.json, report.md and its figures.

    >>> from prodcat.evaluation import compute_metrics, write_report
    >>> metrics = compute_metrics(space, true_labels, proba)        # doctest: +SKIP
    >>> write_report(metrics, "runs/eval", title="tfidf-linear on fashion")   # doctest: +SKIP
    PosixPath('runs/eval/report.md')

Each file is written to a temporary name in the same folder and then renamed,
so a reader never sees half a file.
"""

from __future__ import annotations

import json
import numbers
import os
import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import pandas as pd

#: how many rows the weakest-classes, confusions and mistakes tables show
N_WEAKEST = 10
N_CONFUSED = 10
N_MISTAKES = 20
_CELL_CHARS = 160

#: every file write_report may write; a folder holding only these is a report
#: that `evaluate --out` may replace (see `prodcat.artifacts.check_report_dir_target`)
REPORT_FILES = ("metrics.json", "report.md", "confusion_matrix.png", "per_class_f1.png", "levels.png",
                "precision_coverage.png")


def write_report(
    metrics: dict,
    out_dir: str | Path,
    *,
    title: str = "Evaluation report",
    examples: pd.DataFrame | None = None,
    warn: Callable[[str], None] | None = None,
) -> Path:
    """Write metrics.json, report.md, confusion_matrix.png, per_class_f1.png
    (and levels.png for paths, precision_coverage.png when there is a curve)
    into `out_dir`, creating it. Returns the path of report.md.

    A figure that cannot be drawn is left out: report.md says which and why,
    and `warn` (e.g. a Reporter's) is told. The figures are views of
    metrics already written, and `train` writes the report with the model it
    has just fitted: a plotting error must cost neither.

    `examples`: optional products with columns `true`, `predicted`,
    `confidence` (and e.g. `text`, `id`); the most confident wrong ones are
    listed as probably mislabeled or hard. Leave out the products of classes
    the model never learned (`unseen_classes`): the report lists those apart.
    """
    from prodcat.evaluation import plots

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    _atomic(out / "metrics.json", lambda tmp: tmp.write_text(
        json.dumps(metrics, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8"))

    figures = {
        "confusion_matrix.png": plots.plot_confusions,
        "per_class_f1.png": plots.plot_per_class_f1,
    }
    if metrics.get("levels"):
        figures["levels.png"] = plots.plot_levels
    if metrics.get("precision_coverage"):
        figures["precision_coverage.png"] = plots.plot_precision_coverage
    drawn, not_drawn = [], {}
    for name, draw in figures.items():
        try:
            _atomic(out / name, lambda tmp, draw=draw: draw(metrics, tmp))
        except Exception as exc:  # matplotlib's own errors, of any type
            not_drawn[name] = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
            if warn is not None:
                warn(f"figure {name} could not be drawn ({not_drawn[name]}); the report goes without it")
        else:
            drawn.append(name)

    text = render_markdown(metrics, title=title, examples=examples, figures=drawn, not_drawn=not_drawn)
    report = out / "report.md"
    _atomic(report, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return report


def _atomic(path: Path, write: Callable[[Path], object]) -> None:
    # A hidden name in the same folder, so os.replace is a rename on one
    # file system; made with open() rather than mkstemp to keep the usual
    # permissions (mkstemp's files are private to their owner).
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --- markdown -----------------------------------------------------------------


# What Markdown reads inside a line (GitHub's: $ starts math): a label such as
# "*sale*" or "[new] shirts" must show as written.
_MARKDOWN_INLINE = re.compile(r"([\\|`*_\[\]<~$])")


def escape_cell(value: object, limit: int = _CELL_CHARS) -> str:
    """A value as one markdown table cell: one line, Markdown escaped, cut to `limit`."""
    text = "" if value is None else str(value)
    text = " ".join(text.split())  # newlines and tabs would break the row
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return _MARKDOWN_INLINE.sub(r"\\\1", text)


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(escape_cell(h) for h in header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(escape_cell(c) for c in row) + " |" for row in rows]
    return lines


def _num(value: object, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        return f"{value:.{digits}f}"
    return str(value)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def render_markdown(
    metrics: dict,
    *,
    title: str = "Evaluation report",
    examples: pd.DataFrame | None = None,
    figures: list[str] | None = None,
    not_drawn: dict[str, str] | None = None,
) -> str:
    """The text of report.md (figures: the PNG file names to link; not_drawn: those
    that could not be drawn, with why)."""
    fmt = metrics.get("label_format", "single")
    multi = fmt == "multi"
    top_key = next((k for k in metrics if k.startswith("top") and k.endswith("_accuracy")), None)
    lines = [f"# {escape_cell(title)}", ""]
    lines.append(
        f"{metrics['n']} products, label format `{fmt}`, {metrics['n_classes']} classes known to the model."
    )
    if metrics.get("level"):
        lines.append("")
        lines.append(
            f"Scored at level {metrics['level']}: true labels and predicted paths are cut to their first "
            f"{metrics['level']} level(s)."
        )
    if metrics.get("train_only_classes"):
        lines.append("")
        lines.append(
            f"{metrics['train_only_classes']} of the model's {metrics['n_classes']} classes had too few distinct "
            "texts to split: kept in training only, they have no test products, and these figures do not cover them."
        )
    if metrics.get("kept_seen_in_training"):
        lines.append("")
        lines.append(
            f"{metrics['kept_seen_in_training']} of these products were seen in training and scored anyway "
            "(`--keep-seen`): the figures flatter the model, and a mislabeled product it learned by heart is "
            "not among its mistakes."
        )
    elif metrics.get("excluded_seen_in_training"):
        lines.append("")
        lines.append(f"{metrics['excluded_seen_in_training']} products the model saw in training were left out.")
    if multi and metrics.get("label_cuts"):
        lines.append("")
        lines.append(
            "Labels are decided at per-label probability cuts tuned on validation" + _parts_cuts(metrics)
            if metrics["label_cuts"] == "per label" else
            "Labels are decided at probability 0.5: the model had no validation products to tune per-label cuts on."
        )
    images = metrics.get("images")
    if images:
        lines.append("")
        total = images["with_image"] + images["without_image"]
        line = f"{images['with_image']} of {total} products have a photo reference"
        if "usable" in images:
            failed = [f"{images[k]} {k.replace('_', ' ')}" for k in ("missing", "unreadable", "too_large") if images[k]]
            line += f"; {images['usable']} of them could be used by the model"
            lines.append(line + (f" ({', '.join(failed)})." if failed else "."))
        else:
            lines.append(line + " (whether each photo could be read: `prodcat inspect`).")
    lines.append("")

    lines += ["## Headline", ""]
    rows = [["products (n)", metrics["n"]]]
    rows.append(["subset accuracy (all labels right)" if multi else "accuracy", _num(metrics["accuracy"])])
    rows += [
        ["macro F1", _num(metrics["macro_f1"])],
        ["weighted F1", _num(metrics["weighted_f1"])],
        ["micro F1", _num(metrics["micro_f1"])],
    ]
    if top_key:
        k = top_key[3:-len("_accuracy")]
        label = f"top-{k} accuracy" + (f" (a true label among the top {k})" if multi else "")
        rows.append([label, _num(metrics[top_key])])
    if multi:
        rows += [["samples F1", _num(metrics.get("samples_f1"))], ["Hamming loss", _num(metrics.get("hamming_loss"))]]
    else:
        unseen = sum((metrics.get("unseen_classes") or {}).values())
        # a class the model never learned has no probability to score: 0.0000 read as "perfect" there
        loss = "log loss" + (f" (the {metrics['n'] - unseen:,} products of classes the model knows)" if unseen else "")
        rows += [["ECE (15 bins)", _num(metrics.get("ece"))], [loss, _num(metrics.get("log_loss"))]]
    lines += _table(["metric", "value"], rows) + [""]

    if metrics.get("levels"):
        lines += ["## Per level", ""]
        lines += _table(
            ["level", "classes", "accuracy", "macro F1", "weighted F1", "micro F1"],
            [
                [lv["level"], lv["n_classes"], _num(lv["accuracy"]), _num(lv["macro_f1"]),
                 _num(lv["weighted_f1"]), _num(lv["micro_f1"])]
                for lv in metrics["levels"]
            ],
        )
        lines += [""]

    if metrics.get("components"):
        lines += _by_part(metrics["components"], multi=multi)
    if metrics.get("versus_best_part"):
        lines += [versus_best_part_text(metrics["versus_best_part"]), ""]

    per_class = metrics.get("per_class", {})
    weakest = sorted(
        ((name, row) for name, row in per_class.items() if row["support"] >= 1),
        key=lambda kv: (kv[1]["f1"], -kv[1]["support"], kv[0]),
    )[:N_WEAKEST]
    lines += [f"## Weakest {len(weakest)} {'labels' if multi else 'classes'} (by F1, support ≥ 1)", ""]
    lines += _table(
        ["class", "precision", "recall", "F1", "support"],
        [[name, _num(r["precision"], 3), _num(r["recall"], 3), _num(r["f1"], 3), r["support"]] for name, r in weakest],
    )
    lines += [""]

    if multi:
        errors = metrics.get("label_errors", [])[:N_CONFUSED]
        lines += [f"## Labels with the most errors ({len(errors)})", ""]
        if errors:
            lines += _table(
                ["label", "false positives", "false negatives", "support"],
                [[e["label"], e["fp"], e["fn"], e["support"]] for e in errors],
            )
        else:
            lines += ["No label errors."]
        lines += [""]
    else:
        confusions = metrics.get("confusions", [])[:N_CONFUSED]
        lines += [f"## Most confused pairs ({len(confusions)})", ""]
        if confusions:
            lines += _table(
                ["true", "predicted", "count", "share of true class"],
                [[c["true"], c["predicted"], c["count"], _pct(c["rate"])] for c in confusions],
            )
        else:
            lines += ["No confusions."]
        lines += [""]

    unseen = metrics.get("unseen_classes") or {}
    if unseen:
        total = sum(unseen.values())
        lines += [f"## True classes the model never learned ({len(unseen)}, {total} products, all counted as errors)", ""]
        lines += _table(["class", "products"], [[name, count] for name, count in list(unseen.items())[:50]])
        if len(unseen) > 50:
            lines += ["", f"… and {len(unseen) - 50} more (see metrics.json)."]
        lines += [""]

    if metrics.get("coverage_at_precision"):
        what = "the lowest probability among the chosen labels" if multi else "the top-1 probability"
        lines += ["## Precision / coverage", ""]
        lines += [
            f"Keep only decisions whose confidence ({what}) reaches a threshold; "
            "the rest go to a person. Most coverage that keeps each precision:",
            "",
        ]
        lines += _table(
            ["target precision", "coverage", "threshold", "precision reached"],
            [
                [f"{r['target']:.2f}", _pct(r["coverage"]), _num(r["threshold"], 3), _num(r["precision"])]
                for r in metrics["coverage_at_precision"]
            ],
        )
        lines += [""]

    placed = metrics.get("confident_paths")
    if placed and placed.get("products"):
        lines += ["## Confident paths", ""]
        lines += [
            "A product whose leaf is not confident enough may be at a coarser level: each level has its own "
            "review threshold, chosen on validation for the same target precision. Where the test products "
            "were placed (the `confident_path` column of predictions) and how often that path starts the true one:",
            "",
        ]
        rows = [[str(r["level"]), f"{r['products']:,}", _pct(r["products"] / placed["products"]), _num(r["precision"])]
                for r in placed["levels"]]
        rows.append(["not placed", f"{placed['not_placed']:,}", _pct(placed["not_placed"] / placed["products"]), "—"])
        lines += _table(["level", "products", "share", "precision"], rows)
        lines += [""]

    if figures:
        captions = {
            "confusion_matrix.png": "Label errors" if multi else "Most confused classes",
            "per_class_f1.png": "F1 per class",
            "levels.png": "Scores per level",
            "precision_coverage.png": "Precision vs coverage",
        }
        lines += ["## Figures", ""]
        for name in figures:
            lines += [f"### {captions.get(name, name)}", "", f"![]({name})", ""]
    if not_drawn:
        lines += ["Not drawn: " + "; ".join(f"{name} ({escape_cell(why)})" for name, why in not_drawn.items()), ""]

    if examples is not None:
        lines += _mistakes(examples, unseen=bool(unseen))

    return "\n".join(lines).rstrip() + "\n"


def _parts_cuts(metrics: dict) -> str:
    """How a multi-label model's parts were decided, to end the sentence on its cuts."""
    parts = [part for name, part in (metrics.get("components") or {}).items() if name != "combined"]
    if not parts:
        return "."
    if all(part.get("label_cuts") == "per label" for part in parts):
        return " (each part of the model at its own)."
    # a model saved before its parts' cuts were kept
    return "; its parts alone at 0.5, which flatters the combination."


def _by_part(components: dict, *, multi: bool = False) -> list[str]:
    """The table of each part of a model (an ensemble's members) alone, and combined."""
    lines = ["## By part", ""]
    lines += [
        "Each part of the model scored alone on the same products, then the combined model. "
        "A part that cannot read a product (an image model without its photo) gives its fallback there.",
        "",
    ]
    rows = [
        [name, _num(part.get("accuracy")), _num(part.get("macro_f1")), _num(part.get("weighted_f1"))]
        for name, part in components.items()
    ]
    accuracy = "subset accuracy" if multi else "accuracy"
    return lines + _table(["part", accuracy, "macro-F1", "weighted-F1"], rows) + [""]


def versus_best_part_text(v: dict) -> str:
    """One paragraph: did combining the parts change enough decisions to trust the gain?"""
    lo, hi = v["gain_interval"]
    if lo > 0:
        verdict = "better than its best part beyond the noise of which products were drawn"
    elif hi < 0:
        verdict = "worse than its best part beyond the noise of which products were drawn"
    else:
        verdict = "not clearly different from its best part: the interval holds 0"
    return (
        f"Against its best part alone ({v['best_part']}): the combined model changes {v['changed']:,} of "
        f"{v['n']:,} decisions ({v['fixed']:,} fixed, {v['broken']:,} broken). The best part is wrong on products "
        f"where another part is right {v['headroom']:,} times: the most a combination could fix. "
        f"Macro-F1 {v['macro_f1_gain']:+.3f}, 95% bootstrap interval [{lo:+.3f}, {hi:+.3f}] over these products "
        f"({v['resamples']:,} resamples): {verdict}."
    )


def _mistakes(examples: pd.DataFrame, *, unseen: bool = False) -> list[str]:
    needed = {"true", "predicted"}
    if not needed <= set(examples.columns):
        return ["## Confident mistakes", "", "Examples given without `true` and `predicted` columns; none listed.", ""]
    wrong = examples[examples["true"].astype(str) != examples["predicted"].astype(str)]
    if "confidence" in wrong.columns:
        wrong = wrong.sort_values("confidence", ascending=False, kind="stable")
    wrong = wrong.head(N_MISTAKES)
    lines = [f"## Confident mistakes: probably mislabeled or hard ({len(wrong)})", "",
             "The test products the model gets wrong most confidently. To check every product of a catalog, "
             "with its ids: `prodcat label-issues`.", ""]
    if unseen:
        lines += ["Products of classes the model never learned are not listed here: they are wrong whatever it "
                  "predicts (see above).", ""]
    if wrong.empty:
        return lines + ["No wrong predictions among the examples.", ""]
    first = [c for c in ("id", "text") if c in wrong.columns]
    rest = [c for c in wrong.columns if c not in first and c not in ("true", "predicted", "confidence")]
    columns = first + ["true", "predicted"] + (["confidence"] if "confidence" in wrong.columns else []) + rest
    rows = []
    for _, row in wrong[columns].iterrows():
        rows.append([_num(row[c], 3) if c == "confidence" else row[c] for c in columns])
    return lines + _table(columns, rows) + [""]
