"""Image models, the best text model and text + image ensembles on the real catalogs.

    python benchmarks/bench_images.py [--data-root DIR] [--tasks ...] [--systems ...] [--seeds 0,1,2] [--out results.json]

Tasks (catalogs under --data-root, default ../shared/data from the repo root):
  fashion-subCategory   fashion/styles.csv, the products that have images/<id>.jpg (8,237), label subCategory
  fashion-articleType   the same products, label articleType
  flipkart-level1       flipkart/products.csv (preset flipkart: name + description, images/<image>), level 1
  flipkart-level2       the same, level 2

Systems: text (tfidf-linear, the best text model of bench_text), image-cnn,
image-resnet, image-pretrained (EfficientNet-Lite0 ImageNet weights), its
linear probe (`image-pretrained probe`: freeze_layers=-1, the head fitted in
closed form), the two ensembles of tfidf-linear + image-pretrained
(average, stacking), the ensemble's default of two text models (`text
average`: tfidf-linear + bow) and three members averaged (`text + cnn +
probe`: tfidf-linear + cnn + the probe). Every system is trained through the public facade,
`Categorizer(...).fit(path)`, with its default settings (the probe: that one), on the same grouped split (valid 0.1, test 0.2,
seed 0, or each of `--seeds`), and scored on the same test products.
Images/second is the whole test part predicted in one call (decoding
included). For the ensembles the per-part figures (text alone, image alone,
combined) come from the facade's `evaluate()` on the same test products.

Each (task, system, seed) runs in a fresh subprocess (`--worker`) so peak
memory is its own. An ensemble trains its members itself with the same
settings, seed and split as their single-model runs, so its per-part figures
are those runs' figures: with several seeds, `ensemble: average` alone gives
the text, the photo and the combination on each split.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_text import _dir_mb, _peak_rss_mb, add_worker_options, machine_info, parse_seeds  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "bench_images.json"
VALID_SIZE, TEST_SIZE, SEEDS = 0.1, 0.2, (0,)

# The fashion preset (title; image id -> images/<id>.jpg) with one category column as a flat label.
FASHION_FIELDS = {"preset": "fashion", "label_format": "single"}
TASKS: dict[str, dict] = {
    "fashion-subCategory": {"file": "fashion/styles.csv", "with_images_only": True,
                            "fields": {**FASHION_FIELDS, "label_col": "subCategory"}},
    "fashion-articleType": {"file": "fashion/styles.csv", "with_images_only": True,
                            "fields": {**FASHION_FIELDS, "label_col": "articleType"}},
    "flipkart-level1": {"file": "flipkart/products.csv", "fields": {"preset": "flipkart", "label_level": 1}},
    "flipkart-level2": {"file": "flipkart/products.csv", "fields": {"preset": "flipkart", "label_level": 2}},
}

SYSTEMS: dict[str, dict] = {
    "text: tfidf-linear": {"model": "tfidf-linear"},
    "image: image-cnn": {"model": "image-cnn"},
    "image: image-resnet": {"model": "image-resnet"},
    "image: image-pretrained": {"model": "image-pretrained"},
    # the whole backbone frozen: the head fitted in closed form (a linear probe), no SGD
    "image: image-pretrained probe": {"model": "image-pretrained", "params": {"freeze_layers": -1}},
    "ensemble: average": {"model": "ensemble",
                          "params": {"members": ["tfidf-linear", "image-pretrained"], "method": "average"}},
    "ensemble: stacking": {"model": "ensemble",
                           "params": {"members": ["tfidf-linear", "image-pretrained"], "method": "stacking"}},
    # the ensemble's default members, two text models: does a second text model add what the photo cannot?
    "ensemble: text average": {"model": "ensemble", "params": {"members": ["tfidf-linear", "bow"]}},
    # a word-sequence text model beside TF-IDF, and the photo's probe
    "ensemble: text + cnn + probe": {"model": "ensemble",
                                   "params": {"members": ["tfidf-linear", "cnn", "image-pretrained"],
                                              "member_params": {"image-pretrained": {"freeze_layers": -1}}}},
}


def _catalog_file(task: dict, data_root: Path, tmp: Path, sample: int | None = None,
                  seed: int = 0) -> tuple[Path, dict]:
    """The catalog to train on and its field options (fashion: only the products with a photo,
    optionally a random sample of them drawn with the split's seed)."""
    path = data_root / task["file"]
    fields = dict(task["fields"])
    if not task.get("with_images_only"):
        return path, fields
    from prodcat.catalog.readers import read_table

    frame = read_table(path)  # prodcat's reader: the same rows a user's fit reads
    images = path.parent / "images"
    have = {p.stem for p in images.glob("*.jpg")}
    subset = frame[frame["id"].isin(have)]
    if sample is not None and sample < len(subset):
        subset = subset.sample(n=sample, random_state=seed)
    out = tmp / f"{path.stem}-with-images.csv"
    subset.to_csv(out, index=False)
    fields["image_root"] = str(images)
    return out, fields


def worker(args) -> None:
    import numpy as np

    from prodcat import Categorizer

    task, system = TASKS[args.task], SYSTEMS[args.system]
    with tempfile.TemporaryDirectory() as tmp:
        path, fields = _catalog_file(task, args.data_root, Path(tmp), args.sample, args.seed)
        started = time.perf_counter()
        clf = Categorizer(system["model"], params=system.get("params"), **fields, valid_size=VALID_SIZE,
                          test_size=TEST_SIZE, seed=args.seed, quiet=True).fit(path)
        fit_s = time.perf_counter() - started
        test = clf._test_catalog
        started = time.perf_counter()
        proba = clf._proba(test.products)
        predict_s = time.perf_counter() - started
        metrics = clf.evaluate()
        saved = clf.save(Path(tmp) / "model")
        model_mb = _dir_mb(saved)
    with_image = metrics.get("images", {}).get("with_image")
    result = {
        "task": args.task, "system": args.system, "seed": args.seed, "sample": args.sample if task.get("with_images_only") else None,
        "macro_f1": metrics["macro_f1"], "accuracy": metrics["accuracy"], "weighted_f1": metrics["weighted_f1"],
        "components": metrics.get("components"),
        # decisions changed against the best part, headroom, bootstrap interval of the gain
        "versus_best_part": metrics.get("versus_best_part"),
        # an ensemble's weights (average) or members' out-of-fold scores (stacking): why it scored what it did
        "fit_report": getattr(clf._fitted, "fit_report_", None),
        "images": metrics.get("images"),
        "fit_s": fit_s, "predict_s": predict_s, "n_test": len(test), "n_test_with_image": with_image,
        "products_per_s": len(test) / max(predict_s, 1e-9),
        "n_train": clf.training_["split"]["sizes"]["train"], "n_valid": clf.training_["split"]["sizes"]["valid"],
        "n_classes": len(clf.classes_),
        "model_mb": model_mb, "peak_rss_mb": _peak_rss_mb(),
        "proba_rows_finite": bool(np.isfinite(proba).all()),
    }
    Path(args.result_file).write_text(json.dumps(result))


def merge_runs(previous: list[dict], runs: list[dict]) -> list[dict]:
    """The results file's runs after this run: a partial rerun (some tasks or systems) replaces
    the (task, system, seed) runs it measured again and keeps the others, in table order."""
    fresh = {(r["task"], r["system"], r["seed"]) for r in runs}
    merged = [r for r in previous if (r["task"], r["system"], r["seed"]) not in fresh] + runs
    order = {t: i for i, t in enumerate(TASKS)}, {s: i for i, s in enumerate(SYSTEMS)}
    merged.sort(key=lambda r: (order[0].get(r["task"], 99), r["seed"], order[1].get(r["system"], 99)))
    return merged


def markdown_table(runs: list[dict]) -> str:
    out = ["| task | seed | products | system | macro-F1 | accuracy | fit s | products/s (predict, decoding included) | model MB |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        n = r["n_train"] + r.get("n_valid", 0) + r["n_test"]
        out.append(f"| {r['task']} | {r['seed']} | {n:,} | {r['system']} | {r['macro_f1']:.3f} | {r['accuracy']:.3f} | {r['fit_s']:.0f} | "
                   f"{r['products_per_s']:,.0f} | {r['model_mb']:.1f} |")
    parts = [r for r in runs if r.get("components")]
    if parts:
        out += ["", "| task | seed | ensemble | part | macro-F1 | accuracy |", "|---|---|---|---|---|---|"]
        for r in parts:
            for name, m in r["components"].items():
                out.append(f"| {r['task']} | {r['seed']} | {r['system']} | {name} | {m['macro_f1']:.3f} | {m['accuracy']:.3f} |")
    versus = [r for r in runs if r.get("versus_best_part")]
    if versus:
        out += ["", "| task | seed | ensemble | best part | changed | fixed | broken | headroom | macro-F1 gain | 95% interval |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for r in versus:
            v = r["versus_best_part"]
            lo, hi = v["gain_interval"]
            out.append(f"| {r['task']} | {r['seed']} | {r['system']} | {v['best_part']} | {v['changed']} | {v['fixed']} | "
                       f"{v['broken']} | {v['headroom']} | {v['macro_f1_gain']:+.3f} | [{lo:+.3f}, {hi:+.3f}] |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated subset of tasks")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated subset of: {', '.join(SYSTEMS)}")
    parser.add_argument("--sample", type=int, default=None,
                        help="fashion tasks: a random sample of this many products with a photo, "
                             "drawn with each split seed (CPU time)")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)),
                        help=f"comma-separated split seeds (default {','.join(map(str, SEEDS))})")
    add_worker_options(parser, seed=True)
    args = parser.parse_args(argv)
    args.data_root = args.data_root.resolve()
    if args.worker:
        worker(args)
        return 0

    tasks = [t for t in args.tasks.split(",") if t]
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [t for t in tasks if t not in TASKS] + [s for s in systems if s not in SYSTEMS]
    if unknown:
        parser.error(f"unknown task/system: {', '.join(unknown)}")
    seeds = parse_seeds(parser, args.seeds)
    previous = json.loads(args.out.read_text())["runs"] if args.out.is_file() else []
    runs, started = [], time.perf_counter()

    def write_results() -> str:
        merged = merge_runs(previous, runs)
        table = markdown_table(merged)
        result = {
            "benchmark": "bench_images",
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(["python", "benchmarks/bench_images.py", *(argv if argv is not None else sys.argv[1:])]),
            "machine": machine_info(),
            "protocol": {"split": "grouped by normalized text, stratified", "valid_size": VALID_SIZE,
                         "test_size": TEST_SIZE, "seeds": sorted({r["seed"] for r in merged}),
                         "settings": "defaults of each model"},
            "total_seconds_this_run": time.perf_counter() - started,
            "runs": merged,
            "markdown": table,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
        return table

    table = ""
    with tempfile.TemporaryDirectory() as tmp:
        for task, seed, system in itertools.product(tasks, seeds, systems):
            result_file = Path(tmp) / "result.json"
            cmd = [sys.executable, __file__, "--worker", "--task", task, "--system", system, "--seed", str(seed),
                   "--data-root", str(args.data_root), "--result-file", str(result_file)]
            if args.sample is not None:
                cmd += ["--sample", str(args.sample)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
                raise SystemExit(f"worker failed: {task} {system} seed {seed}")
            r = json.loads(result_file.read_text())
            runs.append(r)
            print(f"{task:20s} {seed:>3} {system:24s} macro-F1 {r['macro_f1']:.4f} acc {r['accuracy']:.4f} "
                  f"fit {r['fit_s']:7.1f}s {r['products_per_s']:>8,.0f}/s", flush=True)
            table = write_results()  # after every run: an interrupted benchmark keeps what it measured
    print()
    print(table)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
