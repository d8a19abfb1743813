"""How well `find_label_issues` finds labels made wrong on purpose, on the real catalogs.

    python benchmarks/bench_label_issues.py [--data-root DIR] [--tasks ...] [--noise 0.02] [--seeds 0]
                                            [--folds 5] [--out results.json]

Protocol, per (task, seed): the catalog as read by prodcat (`read_table`),
then `--noise` of its rows (seeded) get the label cell of a random row of
another class: the mistake a catalog team makes when a product is filed
under a neighbour's category. `Categorizer(..., seed=seed)` with the model's
defaults (tfidf-linear) runs `find_label_issues(frame, folds=--folds)`, and
the flagged products are compared with the flipped ones:

- precision: share of the flagged products that were flipped. The catalogs
  have label mistakes of their own, so this is a floor: a flagged product
  that was not flipped may still be mislabeled (see `clean_issues` and the
  examples, from a run of the untouched catalog);
- recall: share of the flipped products flagged (a flipped product whose new
  class is too small to be judged counts as missed);
- precision at k: of the k = number flipped products with the lowest label
  quality, the share flipped (the ranking alone, whatever the cut-off);
- precision of new flags: of the products flagged after flipping that were
  not flagged in the untouched catalog, the share flipped (the catalog's own
  suspects set aside).

Confident learning is also run with cleanlab's other main filter
(`confident_learning`: every product off the confident joint's diagonal)
on the same out-of-fold probabilities, to show what the default
(`prune_by_noise_rate`) trades.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_text import machine_info  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "bench_label_issues.json"

TASKS: dict[str, dict] = {
    "fashion-articleType": {"file": "fashion/styles.csv",
                            "fields": {"text_cols": ["productDisplayName"], "label_col": "articleType",
                                       "label_format": "single", "id_cols": ["id"]}},
    "flipkart-level2": {"file": "flipkart/products.csv", "fields": {"preset": "flipkart", "label_level": 2}},
}


def flip_labels(frame, catalog_labels: list[str], column: str, rate: float, seed: int):
    """A copy of frame where `rate` of the rows carry the label cell of a random row of another class."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(catalog_labels, dtype=object)
    flipped = np.sort(rng.choice(len(frame), size=round(rate * len(frame)), replace=False))
    noisy = frame.copy()
    cells = frame[column].to_numpy(dtype=object)
    for row in flipped:
        donors = np.flatnonzero(labels != labels[row])
        noisy.iloc[row, noisy.columns.get_loc(column)] = cells[rng.choice(donors)]
    return noisy, flipped


def scores(flagged: np.ndarray, quality: np.ndarray, flipped: np.ndarray) -> dict:
    truth = np.zeros(len(flagged), bool)
    truth[flipped] = True
    hits = int((flagged & truth).sum())
    ranked = np.argsort(np.where(np.isnan(quality), np.inf, quality), kind="stable")[: len(flipped)]
    return {
        "flagged": int(flagged.sum()),
        "precision": round(hits / max(int(flagged.sum()), 1), 4),
        "recall": round(hits / max(len(flipped), 1), 4),
        "precision_at_k": round(float(truth[ranked].mean()), 4) if len(flipped) else None,
    }


def run(task_name: str, data_root: Path, rate: float, seed: int, folds: int) -> dict:
    from prodcat import Categorizer
    from prodcat.catalog.load import load_catalog
    from prodcat.catalog.readers import read_table
    from prodcat.console import Reporter
    from prodcat.label_issues import confident_learning, out_of_fold_proba
    from prodcat.labels import LabelSpace, label_name

    task = TASKS[task_name]
    fields = dict(task["fields"])
    preset = fields.pop("preset", None)
    clf = Categorizer(preset=preset, **fields, seed=seed, quiet=True)
    mapping = clf.resolve_fields()
    frame = read_table(data_root / task["file"])
    catalog = load_catalog(frame, mapping)
    names = [label_name(label, mapping.label_format) for label in catalog.labels]
    # the rows load_catalog keeps are the frame's rows, in order (empty labels are refused, not dropped)
    assert len(catalog) == len(frame), (len(catalog), len(frame))
    noisy, flipped = flip_labels(frame, names, mapping.label_cols[0], rate, seed)

    # the steps of clf.find_label_issues, so that both filters read the same out-of-fold probabilities
    noisy_catalog = load_catalog(noisy, mapping)
    space = LabelSpace.from_labels(noisy_catalog.labels, mapping.label_format)
    started = time.perf_counter()
    oof = out_of_fold_proba(clf, noisy_catalog, space, folds=folds, class_weight="balanced", say=Reporter(True))
    result = {"task": task_name, "seed": seed, "noise": rate, "folds": folds, "rows": len(frame),
              "classes": len(set(names)), "flipped": len(flipped),
              "out_of_fold_seconds": round(time.perf_counter() - started, 1),
              "not_judged": int((~oof.judged).sum()), "flipped_not_judged": int((~oof.judged)[flipped].sum())}
    y = space.encode(noisy_catalog.labels)
    for filter_by in ("prune_by_noise_rate", "confident_learning"):
        issue, quality = confident_learning(space, y, oof, filter_by=filter_by)
        result[filter_by] = scores(issue, quality, flipped)

    # the untouched catalog: the products flagged there are the catalog's own doubtful labels
    clean = clf.find_label_issues(frame, folds=folds)
    worst = clean[clean["label_issue"]].sort_values("label_quality").head(10)
    result["clean_issues"] = int(clean["label_issue"].sum())
    # the catalog's own suspects set aside: of the products flagged after flipping and not before, the share flipped
    suspects = clean["label_issue"].to_numpy()
    for filter_by in ("prune_by_noise_rate", "confident_learning"):
        issue, _ = confident_learning(space, y, oof, filter_by=filter_by)
        new = issue & ~suspects
        flipped_mask = np.zeros(len(issue), bool)
        flipped_mask[flipped] = True
        result[filter_by]["new_flags"] = int(new.sum())
        result[filter_by]["precision_of_new_flags"] = round(float(flipped_mask[new].mean()), 4) if new.any() else None
    result["clean_examples"] = worst[["row", "text", "label", "suggested", "label_quality"]].to_dict("records")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--noise", type=float, default=0.02)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    runs = []
    for task in args.tasks.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            result = run(task, args.data_root, args.noise, seed, args.folds)
            runs.append(result)
            print(json.dumps({k: v for k, v in result.items() if k != "clean_examples"}), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine_info(), "when": datetime.now(timezone.utc).isoformat(
        timespec="seconds"), "runs": runs}, indent=1, ensure_ascii=False))
    print("| task | seed | rows | flipped | flagged untouched | filter | flagged | precision | recall | precision at k "
          "| precision of new flags |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        for name in ("prune_by_noise_rate", "confident_learning"):
            s = r[name]
            new = "–" if s["precision_of_new_flags"] is None else f"{s['precision_of_new_flags']:.3f}"
            print(f"| {r['task']} | {r['seed']} | {r['rows']:,} | {r['flipped']:,} | {r['clean_issues']:,} | {name} "
                  f"| {s['flagged']:,} | {s['precision']:.3f} | {s['recall']:.3f} | {s['precision_at_k']:.3f} "
                  f"| {new} ({s['new_flags']:,}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
