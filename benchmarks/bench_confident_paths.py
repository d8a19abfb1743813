"""Where path models place the test products they are unsure of, on the real catalogs.

    python benchmarks/bench_confident_paths.py [--data-root DIR] [--tasks ...] [--seeds 0]
                                               [--model tfidf-linear] [--target-precisions 0.95,0.99]
                                               [--out results.json]

Protocol, per (task, seed): `Categorizer(model, path labels, seed=seed).fit(catalog)`
with the default grouped split (10% validation, 10% test). Each level of the
path gets its own review threshold on validation, for each target precision
given (0.95 is the default of train); every test product is placed at the deepest level of its
predicted path that reaches its level's threshold (`confident_path`). For
each level: how many test products were placed there, and how often the
placed path starts the true one; then the leaf-only review queue (products
under the leaf's threshold) against the products placed nowhere.

Tasks: fashion (masterCategory > subCategory > articleType, the titles),
flipkart (the first three levels of product_category_tree, name +
description).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from prodcat import Categorizer  # noqa: E402

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"

TASKS = {
    "fashion": dict(path="fashion/styles.csv", preset="fashion"),
    "flipkart-level3": dict(path="flipkart/products.csv", preset="flipkart", label_level=3),
}


def run(task: str, root: Path, seed: int, model: str, target: float) -> dict:
    spec = dict(TASKS[task])
    data = root / spec.pop("path")
    preset = spec.pop("preset")
    clf = Categorizer(model=model, preset=preset, seed=seed, target_precision=target, quiet=True, **spec)
    started = time.perf_counter()
    clf.fit(data)
    fit_s = time.perf_counter() - started
    test = clf.test_metrics_
    placed = test["confident_paths"]
    table = clf.predict_table(clf._test_catalog.frame)
    return {
        "task": task, "seed": seed, "model": model, "target_precision": target, "fit_s": round(fit_s, 1),
        "test_products": test["n"], "depth": clf.label_space_.depth,
        "leaf_accuracy": round(test["accuracy"], 4), "leaf_macro_f1": round(test["macro_f1"], 4),
        "leaf_threshold": clf.review_["threshold"],
        "level_thresholds": [level["threshold"] for level in clf.review_["levels"]],
        "needs_review_at_leaf": int(table["needs_review"].sum()),
        "placed": placed,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--model", default="tfidf-linear")
    parser.add_argument("--target-precisions", default="0.95,0.99")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    results = []
    for task in args.tasks.split(","):
        for seed, target in ((int(s), float(t)) for s in args.seeds.split(",")
                             for t in args.target_precisions.split(",")):
            result = run(task, args.data_root, seed, args.model, target)
            results.append(result)
            placed = result["placed"]
            print(f"\n{task} seed {seed}, target precision {target} ({args.model}): {result['test_products']} "
                  f"test products, leaf accuracy "
                  f"{result['leaf_accuracy']}, macro-F1 {result['leaf_macro_f1']}, fit {result['fit_s']} s")
            print(f"  thresholds: leaf {result['leaf_threshold']}, levels {result['level_thresholds']}")
            print(f"  needing review at the leaf: {result['needs_review_at_leaf']}; placed nowhere: "
                  f"{placed['not_placed']}")
            for level in placed["levels"]:
                print(f"  level {level['level']}: {level['products']} placed, precision {level['precision']}")
    if args.out:
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        args.out.write_text(json.dumps({"run": stamp, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
