"""What the web app's model page shows, read from a model directory.

The report under `MODEL_DIR/report/` (metrics.json and its figures) comes
from the held-out test split at training time; `MODEL_DIR/tensorboard/`
holds the training curves of models trained in epochs. Either may be absent,
and the page says so rather than failing.

    >>> from prodcat.app.model_report import curve_charts, read_report, training_curves
    >>> report = read_report("models/demo")                # doctest: +SKIP
    >>> report.headline()["accuracy"], report.figures.keys()  # doctest: +SKIP
    (0.98, dict_keys(['confusion_matrix', 'per_class_f1', 'levels', 'precision_coverage']))
    >>> training_curves("models/bert")["train/loss"].head(2)  # doctest: +SKIP
    >>> curve_charts(training_curves("models/bert"))["loss"]   # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from prodcat.artifacts import model_dir_entry

#: figures write_report may leave, in the order the page shows them
FIGURES = ("confusion_matrix", "per_class_f1", "levels", "precision_coverage")
#: headline figures worth a tile, with their display names
HEADLINE_NAMES = {
    "accuracy": "Accuracy",
    "macro_f1": "Macro-F1",
    "weighted_f1": "Weighted F1",
    "top3_accuracy": "Top-3 accuracy",
    "micro_f1": "Micro-F1",
    "samples_f1": "Samples F1",
    "subset_accuracy": "Subset accuracy",
    "hamming_loss": "Hamming loss",
    "ece": "Calibration error (ECE)",
}


@dataclass
class ModelReport:
    """The test-split report of a model directory.

    metrics: the parsed metrics.json, or None when there is none.
    figures: name (see FIGURES) -> PNG path, for those present.
    problem: why there is no metrics.json (or why it cannot be read).
    """

    directory: Path
    metrics: dict | None = None
    figures: dict[str, Path] = field(default_factory=dict)
    problem: str | None = None

    def headline(self) -> dict[str, float]:
        if not self.metrics:
            return {}
        # Micro-F1 of a single-label (or path) model is its accuracy again.
        skip = set() if self.metrics.get("label_format") == "multi" else {"micro_f1"}
        return {k: self.metrics[k] for k in HEADLINE_NAMES
                if k not in skip and isinstance(self.metrics.get(k), (int, float))}

    def per_class(self) -> pd.DataFrame:
        """One row per class, weakest F1 first."""
        rows = (self.metrics or {}).get("per_class") or {}
        frame = pd.DataFrame([{"class": name, **scores} for name, scores in rows.items()])
        if frame.empty:
            return frame
        return frame.sort_values(["f1", "support"], ascending=[True, False], kind="stable").reset_index(drop=True)

    def confusions(self) -> pd.DataFrame:
        """The most frequent (true, predicted) mistakes, with their count and rate."""
        return pd.DataFrame((self.metrics or {}).get("confusions") or [], columns=["true", "predicted", "count", "rate"])

    def levels(self) -> pd.DataFrame:
        """Scores at each level of a category path (empty for flat labels)."""
        rows = [
            {k: level.get(k) for k in ("level", "n_classes", "accuracy", "macro_f1", "weighted_f1")}
            for level in (self.metrics or {}).get("levels") or []
        ]
        return pd.DataFrame(rows)

    def parts(self) -> pd.DataFrame:
        """An ensemble's members scored alone on the test products, then combined (empty for other models)."""
        rows = [
            {"part": name, **{k: scores.get(k) for k in ("accuracy", "macro_f1", "weighted_f1", "n")}}
            for name, scores in ((self.metrics or {}).get("components") or {}).items()
        ]
        return pd.DataFrame(rows)


def read_report(model_dir: str | Path) -> ModelReport:
    """The report of a model directory, with a plain reason when it is missing."""
    directory = Path(model_dir) / "report"
    report = ModelReport(directory=directory)
    # A symbolic link (to the report or a file in it) is not followed: it could show any file of this machine.
    figures = {name: model_dir_entry(model_dir, "report", f"{name}.png") for name in FIGURES}
    report.figures = {name: path for name, path in figures.items() if path is not None and path.is_file()}
    metrics_file = model_dir_entry(model_dir, "report", "metrics.json")
    if metrics_file is None:
        report.problem = f"{directory / 'metrics.json'} is (or lies in) a symbolic link, which the app does not follow"
        return report
    if not metrics_file.is_file():
        report.problem = (
            f"{metrics_file} is absent: the model was saved without a held-out test split, "
            "so there are no test metrics to show"
        )
        return report
    try:
        report.metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        report.problem = f"{metrics_file} cannot be read ({exc})"
    return report


def split_metrics(manifest: dict) -> pd.DataFrame:
    """Headline metrics of the train / validation / test parts, one row each."""
    rows = []
    for part, scores in (manifest.get("metrics") or {}).items():
        row = {"split": part}
        row.update({k: v for k, v in scores.items() if isinstance(v, (int, float))})
        rows.append(row)
    return pd.DataFrame(rows)


def event_runs(model_dir: str | Path) -> list[Path]:
    """Folders under MODEL_DIR/tensorboard that hold TensorBoard event files."""
    root = model_dir_entry(model_dir, "tensorboard")
    if root is None or not root.is_dir():
        return []
    # rglob enters no linked folder; a run holding a linked event file is left out whole, since
    # TensorBoard reads every event file of its folder.
    found = [path for path in root.rglob("events.out.tfevents.*") if path.is_file() or path.is_symlink()]
    linked = {path.parent for path in found if path.is_symlink()}
    return sorted({path.parent for path in found} - linked)


def training_curves(model_dir: str | Path) -> dict[str, pd.DataFrame]:
    """Every scalar TensorBoard logged for the model, by tag.

    Each frame is indexed by step with one column per run (a run is a folder
    of event files; most models have one). Empty when nothing was logged.
    """
    runs = event_runs(model_dir)
    if not runs:
        return {}
    # Imported here: tensorboard is slow to import and most models have no curves.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    root = Path(model_dir) / "tensorboard"
    series: dict[str, list[pd.Series]] = {}
    for run in runs:
        # size_guidance 0 keeps every point: the accumulator otherwise samples 1,000 per tag.
        accumulator = EventAccumulator(str(run), size_guidance={"scalars": 0})
        accumulator.Reload()
        name = run.relative_to(root).as_posix() if run != root else "run"
        for tag in accumulator.Tags().get("scalars", []):
            events = accumulator.Scalars(tag)
            points = pd.Series([e.value for e in events], index=[e.step for e in events], name=name, dtype=float)
            # A resumed run logs some steps twice; the later value is the one that counts.
            series.setdefault(tag, []).append(points[~points.index.duplicated(keep="last")])
    curves = {}
    for tag in sorted(series):
        frame = pd.concat(series[tag], axis=1).sort_index()
        frame.index.name = "step"
        curves[tag] = frame
    return curves


def curve_charts(curves: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """One chart per quantity, in long form (step, value, series), ready to plot.

    Tags that differ only in their first part share a chart, so train/loss
    and val/loss are read side by side: the gap between them is over-fitting.
    Long form keeps series logged at different steps (per step, per epoch)
    as continuous lines.

    >>> import pandas as pd
    >>> curves = {"train/loss": pd.DataFrame({"run": [1.0, 0.5]}, index=[1, 2]),
    ...           "val/loss": pd.DataFrame({"run": [0.7]}, index=[2])}
    >>> curve_charts(curves)["loss"].values.tolist()
    [[1, 1.0, 'train'], [2, 0.5, 'train'], [2, 0.7, 'val']]
    """
    charts: dict[str, list[pd.DataFrame]] = {}
    for tag, frame in curves.items():
        part, _, quantity = tag.rpartition("/")
        for run in frame.columns:
            series = part or quantity
            if len(frame.columns) > 1:
                series = f"{series} ({run})"
            points = frame[run].dropna()
            charts.setdefault(quantity, []).append(
                pd.DataFrame({"step": points.index.astype(int), "value": points.to_numpy(), "series": series})
            )
    return {quantity: pd.concat(parts, ignore_index=True) for quantity, parts in sorted(charts.items())}
