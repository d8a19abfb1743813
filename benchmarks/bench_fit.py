"""Wall time and peak memory of `prodcat train` (tfidf-linear) on short titles and long descriptions.

    python benchmarks/bench_fit.py [--data-root DIR] [--long-rows 10000] [--src SRC_DIR ...] [--out results.json]

Tasks:
- fashion articleType: 44k titles of ~40 characters, 141 classes
  (`--text-cols productDisplayName --label-col articleType`);
- flipkart level 2: 1,050 products, name + description (`--preset flipkart --label-level 2`);
- long descriptions: a synthetic catalog made in a temporary folder (never in
  the repo), --long-rows products of ~800 characters (120 words drawn from
  20,000, plus 3 words of one of 200 classes), as shops with long
  descriptions have. Its words give the class away: it measures speed, not
  accuracy.

Each task runs `prodcat train` as a subprocess, once per --src folder (a
checkout's `src`, e.g. of an earlier commit through `git worktree add`;
default: this checkout's), and records wall seconds, peak RSS (/usr/bin/time
where it exists: the train process alone), the peak summed RSS of its process
tree (worker processes included; polled every 50 ms) and the test figures it prints.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import psutil

from bench_text import machine_info  # noqa: E402  (same folder: the script's own)

REPO = Path(__file__).resolve().parents[1]


def long_catalog(path: Path, rows: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    common = [f"w{i}" for i in range(20_000)]
    records = []
    for i in range(rows):
        c = rng.randrange(200)
        words = rng.choices(common, k=120) + [f"c{c}x{rng.randrange(5)}" for _ in range(3)]
        rng.shuffle(words)
        records.append({"id": i, "title": " ".join(words[:8]), "description": " ".join(words),
                        "category": f"class {c}"})
    pd.DataFrame(records).to_csv(path, index=False)


def tasks(data_root: Path, folder: Path, long_rows: int) -> dict[str, list[str]]:
    long_csv = folder / "long.csv"
    long_catalog(long_csv, long_rows)
    return {
        "fashion-articleType": ["--data", str(data_root / "fashion" / "styles.csv"), "--text-cols",
                                "productDisplayName", "--label-col", "articleType"],
        "flipkart-level2": ["--data", str(data_root / "flipkart" / "products.csv"), "--preset", "flipkart",
                            "--label-level", "2"],
        f"long-descriptions-{long_rows}": ["--data", str(long_csv), "--text-cols", "title,description",
                                           "--label-col", "category"],
    }


def _poll_tree_rss(process: subprocess.Popen, every: float = 0.05) -> int:
    """The highest summed RSS of the process and all its descendants (worker
    processes included, which /usr/bin/time does not count), polled until it ends."""
    root = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
        try:
            members = [root, *root.children(recursive=True)]
            peak = max(peak, sum(m.memory_info().rss for m in members if m.is_running()))
        except psutil.Error:  # a member ended between listing and reading
            pass
        time.sleep(every)
    return peak


def run_train(src: Path, args: list[str], out: Path) -> dict:
    command = [sys.executable, "-m", "prodcat", "train", *args, "--out", str(out), "-q"]
    if Path("/usr/bin/time").exists():
        command = ["/usr/bin/time", "-f", "PEAK_KB %M", *command]
    env = {**os.environ, "PYTHONPATH": str(src)}
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    tree_peak = _poll_tree_rss(process)
    stdout, stderr = process.communicate()
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"prodcat train failed ({src}): {stderr.strip()[-500:]}")
    result = {"src": str(src), "wall_s": round(seconds, 1), "peak_tree_rss_mb": round(tree_peak / 2**20)}
    peak = re.search(r"PEAK_KB (\d+)", stderr)
    if peak:
        result["peak_rss_mb"] = round(int(peak.group(1)) / 1024)
    test = re.search(r"test: n=(\d+)\s+accuracy=([\d.]+)\s+macro_f1=([\d.]+)", stdout)
    if test:
        result.update(test_n=int(test.group(1)), accuracy=float(test.group(2)), macro_f1=float(test.group(3)))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--long-rows", type=int, default=10_000)
    parser.add_argument("--src", type=Path, action="append", help="a checkout's src folder (repeatable)")
    parser.add_argument("--tasks", help="comma-separated task names (default: all)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    sources = args.src or [REPO / "src"]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-fit-") as tmp:
        folder = Path(tmp)
        chosen = tasks(args.data_root, folder, args.long_rows)
        names = args.tasks.split(",") if args.tasks else list(chosen)
        for name in names:
            for i, src in enumerate(sources):
                row = {"task": name, **run_train(src.resolve(), chosen[name], folder / f"model-{i}")}
                print(json.dumps(row), flush=True)
                results.append(row)
    if args.out:
        args.out.write_text(json.dumps({"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                        "machine": machine_info(), "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
