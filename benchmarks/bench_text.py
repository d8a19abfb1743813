"""prodcat `tfidf-linear` against plain fastText on the real catalogs.

    python benchmarks/bench_text.py [--data-root DIR] [--out results.json] [--quick]

By default it compares tfidf-linear with fastText; `--systems` adds prodcat's
neural models (prodcat-bow, -lstm, -cnn, -transformer, -bert), which are also
exported to ONNX with int8 weights and timed that way. A prodcat system may
name settings that differ from the model's defaults, as `prodcat train
--param` takes them, so a setting is compared with the default in one run on
the same splits:

    --systems 'prodcat-lstm,prodcat-lstm[embedding_init=random]'
    --systems 'prodcat-bert[epochs=10;patience=10]'

(settings are separated by ';' since ',' separates systems; values are JSON
where they parse as JSON, text otherwise). `--seeds 0,1,2` picks the seeds;
`--sample N` trains and tests on N rows of each catalog drawn with the split's
seed, to see how a model does on a smaller catalog.

Tasks (catalogs under --data-root, default ../shared/data from the repo root):
  fashion-articleType   fashion/styles.csv, text productDisplayName, label articleType
  fashion-subCategory   fashion/styles.csv, text productDisplayName, label subCategory
  flipkart-level1       flipkart/products.csv, preset flipkart, label_level=1
  flipkart-level2       flipkart/products.csv, preset flipkart, label_level=2

Protocol: for every (task, seed) one split made by prodcat's
`split_catalog(texts, labels, fmt, valid_size=0.1, test_size=0.2, seed=seed)`:
grouped by normalized text (no duplicate title on two sides), stratified, every
class with >= 3 distinct texts present in test. All systems are scored on the
same test rows with `prodcat.evaluation.compute_metrics` (macro-F1 over every
class present in the test truth or the predictions, accuracy).

- prodcat tfidf-linear: default settings through the public facade,
  `Categorizer(..., valid_size=0.1, test_size=0.2, seed=seed).fit(path)`:
  trains on train, calibrates on valid. The worker checks that the split the
  facade made is the one `split_catalog` gives (sizes and test texts/labels).
- fastText: trained on train + valid (it has no calibration step), once with
  a configuration used in practice for product titles and once with fastText's
  supervised defaults (thread=2 in both, seed=seed).

Every (task, system, seed) runs in a fresh subprocess (`--worker`), so peak
memory (ru_maxrss of that process) does not leak between runs. Measured: fit
seconds (wall), products predicted per second (the whole test part in one
batched call), peak RSS. Seeds 0, 1, 2 (`--quick`: seed 0 only); the table
gives mean ± sample std over seeds. Each prodcat run also records its
settings and, for neural models, the trainer's history (per-epoch training
and validation figures) and best epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "bench_text.json"

VALID_SIZE, TEST_SIZE = 0.1, 0.2
SEEDS = (0, 1, 2)

TASKS: dict[str, dict] = {
    "fashion-articleType": {
        "file": "fashion/styles.csv",
        "fields": {"text_cols": ["productDisplayName"], "label_col": "articleType", "label_format": "single"},
    },
    "fashion-subCategory": {
        "file": "fashion/styles.csv",
        "fields": {"text_cols": ["productDisplayName"], "label_col": "subCategory", "label_format": "single"},
    },
    "flipkart-level1": {"file": "flipkart/products.csv", "fields": {"preset": "flipkart", "label_level": 1}},
    "flipkart-level2": {"file": "flipkart/products.csv", "fields": {"preset": "flipkart", "label_level": 2}},
}

# A configuration used in practice for short product titles, and fastText's own
# supervised defaults (lr 0.1, epoch 5, unigrams, no subwords). thread=2: the
# machine's cores; seed is fastText's own (multi-threaded SGD is still not
# bit-reproducible).
FASTTEXT_CONFIGS = {
    "fasttext-tuned": dict(epoch=25, lr=0.5, wordNgrams=2, minn=2, maxn=5, dim=100, loss="softmax"),
    "fasttext-default": dict(),
}
# prodcat's models, each trained with its defaults. Neural ones are also
# exported to ONNX with int8 weights and timed (and checked) that way.
PRODCAT_MODELS = ("tfidf-linear", "bow", "lstm", "cnn", "transformer", "bert")
NEURAL_MODELS = ("bow", "lstm", "cnn", "transformer", "bert")
SYSTEMS = (*(f"prodcat-{m}" for m in PRODCAT_MODELS), *FASTTEXT_CONFIGS)
# A system with settings: "prodcat-lstm[embedding_init=random;lr=0.001]".
SYSTEM_WITH_SETTINGS = re.compile(r"(?P<base>[\w-]+)\[(?P<settings>[^\]]*)\]")
# What a run measures unless --systems says otherwise: issue 2's comparison.
DEFAULT_SYSTEMS = ("prodcat-tfidf-linear", *FASTTEXT_CONFIGS)


def parse_system(system: str) -> tuple[str, dict]:
    """(the base system, its settings) of a --systems entry; raises ValueError on a malformed one."""
    match = SYSTEM_WITH_SETTINGS.fullmatch(system)
    if match is None:
        if "[" in system or "]" in system:
            raise ValueError(f"{system!r}: settings go in one pair of brackets, e.g. prodcat-lstm[lr=0.001]")
        return system, {}
    from prodcat.cli import parse_params
    from prodcat.errors import ConfigError

    base = match["base"]
    if not base.startswith("prodcat-"):
        raise ValueError(f"{system!r}: only prodcat systems take settings")
    try:
        settings = parse_params([part.strip() for part in match["settings"].split(";") if part.strip()],
                                option=f"{system!r}: a setting")
    except ConfigError as error:
        raise ValueError(str(error)) from None
    if not settings:
        raise ValueError(f"{system!r}: empty brackets")
    return base, settings


def _rss_now_mb() -> float | None:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:  # psutil is optional for the worker; ru_maxrss is what is reported
        return None


def _peak_rss_mb() -> float:
    # Linux reports ru_maxrss in KiB (macOS in bytes).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


# --------------------------------------------------------------------- worker
def _load(task: dict, data_root: Path):
    from prodcat import Categorizer
    from prodcat.catalog.load import load_catalog

    path = data_root / task["file"]
    mapping = Categorizer(**task["fields"], quiet=True).resolve_fields()
    return path, mapping, load_catalog(path, mapping)


def _split(catalog, mapping, seed: int):
    from prodcat.catalog.split import split_catalog

    return split_catalog(
        catalog.products.texts, catalog.labels, mapping.label_format,
        valid_size=VALID_SIZE, test_size=TEST_SIZE, seed=seed,
    )


def _scores(space, true_labels, proba) -> dict:
    from prodcat.evaluation import compute_metrics

    m = compute_metrics(space, true_labels, proba)
    return {"macro_f1": m["macro_f1"], "accuracy": m["accuracy"], "weighted_f1": m["weighted_f1"],
            "n_test_classes": len({c for c, s in m["per_class"].items() if s["support"] > 0})}


def run_prodcat(task: dict, data_root: Path, seed: int, model: str = "tfidf-linear",
                settings: dict | None = None) -> dict:
    import numpy as np

    from prodcat import Categorizer
    from prodcat.labels import label_name

    path = data_root / task["file"]
    rss_before = _rss_now_mb()
    started = time.perf_counter()
    clf = Categorizer(model, **task["fields"], params=settings or None, valid_size=VALID_SIZE,
                      test_size=TEST_SIZE, seed=seed, quiet=True).fit(path)
    fit_s = time.perf_counter() - started

    # The same split, made directly: it must be the one the facade made.
    _, mapping, catalog = _load(task, data_root)
    split = _split(catalog, mapping, seed)
    test = catalog.take(split.test)
    facade_test = clf._test_catalog
    fmt = mapping.label_format
    sizes = clf.training_["split"]["sizes"]
    split_agrees = (
        sizes == {"train": len(split.train), "valid": len(split.valid), "test": len(split.test)}
        and facade_test.products.texts == test.products.texts
        and [label_name(x, fmt) for x in facade_test.labels] == [label_name(x, fmt) for x in test.labels]
    )
    if not split_agrees:
        raise SystemExit(f"split made by Categorizer.fit differs from split_catalog(seed={seed})")

    texts = list(test.products.texts)
    started = time.perf_counter()
    proba = clf.predict_proba(texts)
    predict_s = time.perf_counter() - started
    scores = _scores(clf.label_space_, test.labels, proba.to_numpy())
    facade = clf.metrics_["test"]
    # compute_metrics on predict_proba must give what fit reported for its own test split.
    consistent = bool(np.isclose(facade["macro_f1"], scores["macro_f1"]) and np.isclose(facade["accuracy"], scores["accuracy"]))
    extra = _saved_and_exported(clf, texts, proba.to_numpy(), model)
    return {
        **extra,
        **scores,
        "fit_s": fit_s,
        "facade_fit_seconds": clf.training_["fit_seconds"],
        "predict_s": predict_s,
        "n_predicted": len(texts),
        "n_train": len(split.train), "n_valid": len(split.valid), "n_test": len(split.test),
        "n_train_only_classes": len(split.train_only_classes),
        "n_model_classes": len(clf.classes_),
        "split_agrees_with_split_catalog": split_agrees,
        "facade_test_metrics_match": consistent,
        "rss_before_fit_mb": rss_before,
        "settings": clf._fitted.get_params(),
        "best_epoch": getattr(clf._fitted, "best_epoch_", None),
        "batch_size_used": getattr(clf._fitted, "batch_size_", None),
        "history": getattr(clf._fitted, "history_", None),
    }


def _dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def _saved_and_exported(clf, texts: list[str], proba, model: str) -> dict:
    """Model size on disk and, for neural models, the ONNX int8 speed and agreement."""
    from prodcat import Categorizer

    with tempfile.TemporaryDirectory() as tmp:
        saved = clf.save(Path(tmp) / "model")
        result = {"model_mb": _dir_mb(saved)}
        if model not in NEURAL_MODELS:
            return result
        from prodcat.export import export_model

        exported = Categorizer.load(export_model(saved, Path(tmp) / "onnx-int8", format="onnx", quantize="int8", quiet=True),
                                    quiet=True)
        started = time.perf_counter()
        onnx_proba = exported.predict_proba(texts).to_numpy()
        result.update(
            onnx_int8_predict_s=time.perf_counter() - started,
            onnx_int8_label_agreement=float((onnx_proba.argmax(axis=1) == proba.argmax(axis=1)).mean()),
            onnx_int8_model_mb=_dir_mb(Path(tmp) / "onnx-int8"),
        )
        result["onnx_int8_products_per_s"] = len(texts) / max(result["onnx_int8_predict_s"], 1e-9)
        return result


def _ft_label(name: str) -> str:
    return "__label__" + re.sub(r"\s+", "_", name.strip())


def _ft_text(text: str) -> str:
    # fastText reads one example per line and refuses newlines in predict().
    return re.sub(r"[\r\n\v\f\u2028\u2029\x85]+", " ", text).strip()


def run_fasttext(task: dict, data_root: Path, seed: int, config: dict) -> dict:
    import fasttext
    import numpy as np

    from prodcat.labels import LabelSpace, label_name

    rss_before = _rss_now_mb()
    _, mapping, catalog = _load(task, data_root)
    fmt = mapping.label_format
    split = _split(catalog, mapping, seed)
    fit_rows = np.sort(np.concatenate([split.train, split.valid]))
    fit_part, test = catalog.take(fit_rows), catalog.take(split.test)
    names = [label_name(x, fmt) for x in fit_part.labels]
    classes = sorted(set(names))
    to_name = {_ft_label(c): c for c in classes}
    if len(to_name) != len(classes):
        raise SystemExit("two classes map to the same fastText label")

    with tempfile.TemporaryDirectory() as tmp:
        train_file = Path(tmp) / "train.txt"
        started = time.perf_counter()
        with open(train_file, "w", encoding="utf-8") as f:
            for name, text in zip(names, fit_part.products.texts):
                f.write(f"{_ft_label(name)} {_ft_text(text)}\n")
        model = fasttext.train_supervised(input=str(train_file), thread=2, seed=seed, verbose=0, **config)
        fit_s = time.perf_counter() - started

    texts = [_ft_text(t) for t in test.products.texts]
    started = time.perf_counter()
    predicted, _ = model.predict(texts, k=1)
    predict_s = time.perf_counter() - started

    space = LabelSpace(fmt, classes)
    index = space.index()
    proba = np.zeros((len(texts), len(classes)), dtype=np.float32)
    proba[np.arange(len(texts)), [index[to_name[p[0]]] for p in predicted]] = 1.0
    return {
        **_scores(space, test.labels, proba),
        "fit_s": fit_s,
        "predict_s": predict_s,
        "n_predicted": len(texts),
        "n_fit_rows": len(fit_rows), "n_test": len(split.test),
        "n_model_classes": len(classes),
        "fasttext_args": {"thread": 2, "seed": seed, **config},
        "rss_before_fit_mb": rss_before,
    }


def sampled_data_root(task: dict, data_root: Path, tmp: Path, sample: int, seed: int) -> Path:
    """A data root under `tmp` whose copy of the task's file holds `sample` of its rows,
    drawn with the split's seed (all rows if it has no more than that)."""
    from prodcat.catalog.readers import read_table

    frame = read_table(data_root / task["file"])  # prodcat's reader: the rows a user's fit reads
    if sample < len(frame):
        frame = frame.sample(n=sample, random_state=seed)
    out = tmp / task["file"]
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    return tmp


def worker(args) -> None:
    task = TASKS[args.task]
    system, settings = parse_system(args.system)
    with tempfile.TemporaryDirectory() as tmp:
        data_root = args.data_root
        if args.sample is not None:
            data_root = sampled_data_root(task, data_root, Path(tmp), args.sample, args.seed)
        if system.startswith("prodcat-"):
            result = run_prodcat(task, data_root, args.seed, system[len("prodcat-"):], settings)
        else:
            result = run_fasttext(task, data_root, args.seed, FASTTEXT_CONFIGS[system])
    result.update(task=args.task, system=args.system, seed=args.seed, sample=args.sample,
                  products_per_s=result["n_predicted"] / max(result["predict_s"], 1e-9),
                  peak_rss_mb=_peak_rss_mb())
    Path(args.result_file).write_text(json.dumps(result))


# ----------------------------------------------------------------------- main
def machine_info() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import psutil

        ram_gb = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        ram_gb = None
    os_name = platform.platform()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = f"{line.split('=', 1)[1].strip(chr(34))} ({platform.release()})"
    except OSError:
        pass
    from importlib.metadata import PackageNotFoundError, version

    libs = {}
    for dist in ("prodcat", "scikit-learn", "fasttext-numpy2", "numpy", "scipy", "pandas", "psutil",
                 "torch", "transformers", "onnxruntime"):
        try:
            libs[dist] = version(dist)
        except PackageNotFoundError:
            libs[dist] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gb": ram_gb, "os": os_name,
            "python": platform.python_version(), "libraries": libs, "code": code_state(),
            "load_average": os.getloadavg()}


def code_state() -> dict:
    """The commit and the uncommitted source files measured (read-only git calls)."""
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                                  check=True).stdout.rstrip()
        except (OSError, subprocess.CalledProcessError):
            return None

    status = git("status", "--porcelain", "--", "src")
    return {"commit": git("rev-parse", "HEAD"),
            "uncommitted_src": status.splitlines() if status else ([] if status is not None else None)}


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarize(runs: list[dict]) -> list[dict]:
    rows = []
    systems = list(dict.fromkeys(r["system"] for r in runs))  # in the order they ran
    for task in TASKS:
        for system in systems:
            mine = [r for r in runs if r["task"] == task and r["system"] == system]
            if not mine:
                continue
            row = {"task": task, "system": system, "seeds": [r["seed"] for r in mine]}
            for key in ("macro_f1", "accuracy", "fit_s", "products_per_s", "peak_rss_mb"):
                row[key], row[key + "_std"] = _mean_std([r[key] for r in mine])
            for key in ("model_mb", "onnx_int8_products_per_s", "onnx_int8_label_agreement"):
                values = [r[key] for r in mine if r.get(key) is not None]
                row[key] = statistics.fmean(values) if values else None
            rows.append(row)
    return rows


def markdown_table(rows: list[dict]) -> str:
    def pm(row, key, fmt):
        return f"{format(row[key], fmt)} ± {format(row[key + '_std'], fmt)}"

    out = ["| task | system | macro-F1 | accuracy | fit s | products/s (predict) | peak RSS MB "
           "| model MB | ONNX int8 products/s | ONNX int8 label agreement |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        def opt(key, fmt):
            return format(r[key], fmt) if r.get(key) is not None else "–"
        out.append(
            f"| {r['task']} | {r['system']} | {pm(r, 'macro_f1', '.3f')} | {pm(r, 'accuracy', '.3f')} | "
            f"{pm(r, 'fit_s', '.1f')} | {r['products_per_s']:,.0f} | {r['peak_rss_mb']:,.0f} | "
            f"{opt('model_mb', '.1f')} | {opt('onnx_int8_products_per_s', ',.0f')} | {opt('onnx_int8_label_agreement', '.3f')} |"
        )
    return "\n".join(out)


def add_worker_options(parser: argparse.ArgumentParser, *, seed: bool) -> None:
    """The hidden options by which a benchmark runs each measurement in a worker subprocess."""
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--task", help=argparse.SUPPRESS)
    parser.add_argument("--system", help=argparse.SUPPRESS)
    if seed:
        parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)


def parse_seeds(parser: argparse.ArgumentParser, text: str) -> tuple[int, ...]:
    """The split seeds of a `--seeds 0,1,2` option; a malformed list is a usage error."""
    try:
        seeds = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        parser.error(f"--seeds takes comma-separated integers, got {text!r}")
    if not seeds:
        parser.error("--seeds is empty")
    if len(set(seeds)) != len(seeds):
        parser.error(f"--seeds names a seed twice: {text!r}")
    return seeds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT,
                        help="folder holding fashion/styles.csv and flipkart/products.csv (default ../shared/data)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON file for all raw numbers")
    parser.add_argument("--quick", action="store_true", help="seed 0 only")
    parser.add_argument("--sample", type=int, default=None,
                        help="train and test on a random sample of this many rows of each catalog, "
                             "drawn with the split's seed (how a model does on a smaller catalog)")
    parser.add_argument("--seeds", help="comma-separated split seeds (default 0,1,2; --quick: 0)")
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated subset of tasks")
    parser.add_argument("--systems", default=",".join(DEFAULT_SYSTEMS),
                        help=f"comma-separated subset of: {', '.join(SYSTEMS)}; a prodcat system may "
                             "take settings in brackets, e.g. 'prodcat-lstm[embedding_init=random;lr=0.001]'")
    add_worker_options(parser, seed=True)
    args = parser.parse_args(argv)
    args.data_root = args.data_root.resolve()

    if args.worker:
        worker(args)
        return 0

    tasks = [t for t in args.tasks.split(",") if t]
    systems = [s for s in args.systems.split(",") if s]
    try:
        parsed = [parse_system(s) for s in systems]
    except ValueError as error:
        parser.error(str(error))
    unknown = [t for t in tasks if t not in TASKS] + [base for base, _ in parsed if base not in SYSTEMS]
    if unknown:
        parser.error(f"unknown task/system: {', '.join(unknown)}")
    if len(set(systems)) != len(systems):
        parser.error("a system is named twice")
    from prodcat.errors import ConfigError
    from prodcat.models import create_model

    for system, (base, settings) in zip(systems, parsed):
        if settings:
            try:  # a misspelt setting fails here, not after an hour of other runs
                create_model(base[len("prodcat-"):], **settings)
            except ConfigError as error:
                parser.error(f"{system}: {error}")
    for task in tasks:
        if not (args.data_root / TASKS[task]["file"]).is_file():
            parser.error(f"{args.data_root / TASKS[task]['file']} not found (use --data-root)")
    seeds = parse_seeds(parser, args.seeds) if args.seeds is not None else (SEEDS[:1] if args.quick else SEEDS)
    if args.sample is not None and args.sample < 1:
        parser.error(f"--sample must be a positive number of rows, got {args.sample}")

    runs, started = [], time.perf_counter()
    load_at_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        for task in tasks:
            for seed in seeds:
                for system in systems:
                    result_file = Path(tmp) / f"{task}.{systems.index(system)}.{seed}.json"
                    cmd = [sys.executable, __file__, "--worker", "--task", task, "--system", system,
                           "--seed", str(seed), "--data-root", str(args.data_root), "--result-file", str(result_file)]
                    if args.sample is not None:
                        cmd += ["--sample", str(args.sample)]
                    t0 = time.perf_counter()
                    proc = subprocess.run(cmd, capture_output=True, text=True)
                    if proc.returncode != 0:
                        sys.stderr.write(proc.stdout + proc.stderr)
                        raise SystemExit(f"worker failed: {task} {system} seed {seed}")
                    r = json.loads(result_file.read_text())
                    r["process_s"] = time.perf_counter() - t0
                    runs.append(r)
                    print(f"{task:20s} {system:22s} seed {seed}: macro-F1 {r['macro_f1']:.4f} "
                          f"acc {r['accuracy']:.4f} fit {r['fit_s']:6.1f}s "
                          f"{r['products_per_s']:>9,.0f}/s peak {r['peak_rss_mb']:6.0f} MB", flush=True)

    rows = summarize(runs)
    table = markdown_table(rows)
    result = {
        "benchmark": "bench_text",
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, "benchmarks/bench_text.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine_info(),
        "load_average_at_start": load_at_start,
        "protocol": {"split": "prodcat.catalog.split.split_catalog (grouped by normalized text, stratified)",
                     "valid_size": VALID_SIZE, "test_size": TEST_SIZE, "seeds": list(seeds),
                     "sample": args.sample,
                     "fasttext_fits_on": "train + valid", "prodcat_fits_on": "train (valid: calibration)"},
        "fasttext_configs": FASTTEXT_CONFIGS,
        "total_seconds": time.perf_counter() - started,
        "summary": rows,
        "runs": runs,
        "markdown": table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print()
    print(table)
    print(f"\n{len(runs)} runs in {result['total_seconds']:.0f} s; raw numbers in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
