"""Products per second of a saved tfidf-linear model's `predict_table` and `predict_file`, per checkout.

    python benchmarks/bench_predict_speed.py [--data-root DIR] [--src SRC ...] [--repeats 3] [--out results.json]

Trains two models once, with this checkout, into a temporary folder (never the repo):
- flipkart level 2: 1,050 products, name + ~250-word description (`preset="flipkart", label_level=2`);
- fashion articleType: 5,000 titles drawn from styles.csv (seed 0), ~6 words each.

Then, for each --src folder (a checkout's `src`, e.g. of an earlier commit
through `git worktree add`; default: this checkout's), a fresh process loads
the same saved models, warms up once, and times `predict_table(Path)` and
`predict_file(Path, out.csv)` on the catalog each was trained on, --repeats
times; the median is reported. Every --src must give exactly the same
probabilities and the same predictions file (checked; exit 1 otherwise):
a change made for speed must not change an answer.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from bench_text import machine_info  # noqa: E402  (same folder: the script's own)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "bench_predict_speed.json"

# Run in a fresh process per --src, so each times its own prodcat.
TIMER = r"""
import hashlib, json, statistics, sys, time
from pathlib import Path
import numpy as np
from prodcat import Categorizer
tasks, repeats, tmp = json.loads(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
results = {}
for name, (model_dir, data) in tasks.items():
    model, data, out = Categorizer.load(model_dir, quiet=True), Path(data), tmp / f"{name}.csv"
    proba = model.predict_proba(data).to_numpy()
    model.predict_file(data, out)
    runs = {"predict_table": [], "predict_file": []}
    for _ in range(repeats):
        for what, call in (("predict_table", lambda: model.predict_table(data)),
                           ("predict_file", lambda: model.predict_file(data, out))):
            started = time.perf_counter()
            call()
            runs[what].append(time.perf_counter() - started)
    results[name] = {"rows": len(proba), "proba_sha256": hashlib.sha256(proba.tobytes()).hexdigest(),
                     "file_sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
                     **{what: {"seconds": secs, "median_s": statistics.median(secs),
                               "rows_per_s": len(proba) / statistics.median(secs)} for what, secs in runs.items()}}
print(json.dumps(results))
"""


def train_models(data_root: Path, tmp: Path) -> dict[str, tuple[str, str]]:
    sys.path.insert(0, str(REPO / "src"))
    from prodcat import Categorizer

    flipkart = data_root / "flipkart" / "products.csv"
    fashion = tmp / "fashion5000.csv"
    styles = pd.read_csv(data_root / "fashion" / "styles.csv", on_bad_lines="skip")
    styles.sample(5000, random_state=0).to_csv(fashion, index=False)
    Categorizer(preset="flipkart", label_level=2, quiet=True).fit(flipkart).save(tmp / "flipkart_model")
    Categorizer(text_cols="productDisplayName", label_col="articleType", id_cols="id",
                quiet=True).fit(fashion).save(tmp / "fashion_model")
    return {"flipkart_level2": (str(tmp / "flipkart_model"), str(flipkart)),
            "fashion_5000_titles": (str(tmp / "fashion_model"), str(fashion))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--src", type=Path, action="append", help="a checkout's src folder (repeatable)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON file for the results")
    args = parser.parse_args(argv)
    srcs = [s.resolve() for s in (args.src or [REPO / "src"])]
    load_at_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="prodcat-bench-") as folder:
        tmp = Path(folder)
        print("training the two models ...", flush=True)
        tasks = train_models(args.data_root.resolve(), tmp)
        by_src = {}
        for src in srcs:
            env = {**os.environ, "PYTHONPATH": str(src)}
            done = subprocess.run([sys.executable, "-c", TIMER, json.dumps(tasks), str(args.repeats), folder],
                                  env=env, capture_output=True, text=True)
            if done.returncode != 0:
                sys.stderr.write(done.stderr)
                raise SystemExit(f"timing with {src} failed")
            by_src[str(src)] = json.loads(done.stdout.strip().splitlines()[-1])
            for name, r in by_src[str(src)].items():
                print(f"{src}: {name}: predict_table {r['predict_table']['rows_per_s']:,.0f} products/s, "
                      f"predict_file {r['predict_file']['rows_per_s']:,.0f} products/s "
                      f"(median of {args.repeats})", flush=True)
    same = all(len({(r[name]["proba_sha256"], r[name]["file_sha256"]) for r in by_src.values()}) == 1
               for name in tasks)
    result = {
        "benchmark": "bench_predict_speed",
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "load_average_at_start": load_at_start,
        "load_average_at_end": os.getloadavg(),
        "repeats": args.repeats,
        "same_outputs_for_every_src": same,
        "results": by_src,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"load average {load_at_start[0]:.2f} at start, {result['load_average_at_end'][0]:.2f} at end; "
          f"results in {args.out}")
    if not same:
        print("FAIL: the checkouts gave different probabilities or predictions files", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
