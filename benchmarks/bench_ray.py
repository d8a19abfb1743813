"""Local engine vs Ray (1 and 2 workers) on the same 200,000-row catalog file.

    python benchmarks/bench_ray.py [--data-root DIR] [--rows 200000] [--workers 1,2] [--out results.json]

1. Trains a fashion articleType model on ../shared/data/fashion/styles.csv
   (productDisplayName -> articleType, id column `id`), default tfidf-linear.
2. Builds BIG.csv in a temporary folder (never in the repo): fashion titles
   sampled with replacement to --rows rows, with a shuffled unique `id`.
3. Predicts BIG.csv into Parquet with the local engine (`predict_file`), then
   with `predict_with_ray` for each worker count. Every Ray run starts its own
   local Ray and stops it, so its wall time includes Ray's start-up and
   shut-down; the time after start-up is reported too.
4. Checks that every Ray output equals the local one, column for column and
   row for row, and reports the peak RSS of each prediction actor (polled
   every 100 ms with psutil).

Prints a Markdown table for docs/scale.md; --out also writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data"
POLL_S = 0.1


def build_big_csv(styles: Path, rows: int, path: Path, seed: int = 0) -> None:
    """Titles sampled with replacement, plus a shuffled unique id."""
    titles = pd.read_csv(styles, usecols=["productDisplayName"], dtype=str, keep_default_na=False,
                         on_bad_lines="skip")["productDisplayName"]
    titles = titles[titles.str.strip() != ""].to_numpy(dtype=object)
    rng = np.random.default_rng(seed)
    ids = rng.permutation(rows).astype(np.int64) + 1_000_000
    pd.DataFrame({"id": ids, "productDisplayName": titles[rng.integers(0, len(titles), rows)]}).to_csv(path, index=False)


class ActorMemory:
    """Peak RSS of each Ray prediction actor process while a run lasts."""

    def __init__(self):
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> ActorMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        while not self._stop.is_set():
            for proc in psutil.process_iter(["pid", "cmdline"]):
                try:
                    if "CategorizerPredictor" in " ".join(proc.info["cmdline"] or ()):
                        rss = proc.memory_info().rss
                        self.peaks[proc.pid] = max(self.peaks.get(proc.pid, 0), rss)
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
            self._stop.wait(POLL_S)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--workers", default="1,2", help="Ray worker counts to run, comma-separated")
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    styles = (args.data_root / "fashion" / "styles.csv").resolve()
    if not styles.is_file():
        parser.error(f"{styles} not found (use --data-root)")

    from prodcat import Categorizer
    from prodcat.scale.ray_predict import predict_with_ray

    tmp = Path(tempfile.mkdtemp(prefix="prodcat-bench-ray-"))
    runs = []
    model_mb = None
    try:
        model = tmp / "model"
        started = time.perf_counter()
        Categorizer(text_cols=["productDisplayName"], label_col="articleType", id_cols=["id"], quiet=True) \
            .fit(styles).save(model)
        model_mb = sum(f.stat().st_size for f in model.rglob("*") if f.is_file() and "report" not in f.parts) / 2**20
        print(f"trained {model} in {time.perf_counter() - started:.1f} s ({model_mb:.1f} MB without its report)",
              flush=True)
        big = tmp / "BIG.csv"
        build_big_csv(styles, args.rows, big)
        print(f"built {big.name}: {args.rows:,} rows, {big.stat().st_size / 2**20:.1f} MB", flush=True)

        load = os.getloadavg()[0]
        started = time.perf_counter()
        local = Categorizer.load(model, quiet=True).predict_file(big, tmp / "local.parquet", chunk_size=args.batch_size)
        wall = time.perf_counter() - started
        runs.append({"engine": "local", "workers": 1, "wall_s": wall, "startup_s": 0.0,
                     "rows_per_s": args.rows / wall, "after_startup_rows_per_s": args.rows / wall,
                     "peak_actor_rss_mb": None, "load_1min_before": load})
        print(f"local: {wall:.1f} s ({args.rows / wall:,.0f} products/s)", flush=True)
        expected = pd.read_parquet(tmp / "local.parquet")
        assert len(expected) == local["rows"] == args.rows

        for workers in [int(w) for w in args.workers.split(",") if w]:
            out = tmp / f"ray{workers}.parquet"
            load = os.getloadavg()[0]
            started = time.perf_counter()
            with ActorMemory() as memory:
                summary = predict_with_ray(model, big, out, quiet=True, num_workers=workers, batch_size=args.batch_size)
            wall = time.perf_counter() - started
            pd.testing.assert_frame_equal(pd.read_parquet(out), expected)
            predicting = summary["seconds"] - summary["startup_seconds"]
            peaks = [rss / 2**20 for rss in memory.peaks.values()]
            runs.append({"engine": "ray", "workers": workers, "wall_s": wall, "startup_s": summary["startup_seconds"],
                         "rows_per_s": args.rows / wall, "after_startup_rows_per_s": args.rows / predicting,
                         "peak_actor_rss_mb": max(peaks) if peaks else None, "actors_seen": len(peaks),
                         "load_1min_before": load})
            print(f"ray x{workers}: {wall:.1f} s wall, Ray start {summary['startup_seconds']:.1f} s, "
                  f"{args.rows / wall:,.0f} products/s overall, {args.rows / predicting:,.0f} after start-up; "
                  f"{len(peaks)} actor(s), peak RSS {max(peaks) if peaks else float('nan'):.0f} MB each at most; same output as local", flush=True)
            out.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print("| engine | workers | wall (s) | of which start-up (s) | products/s (wall) | products/s after start-up "
          "| peak RSS per actor (MB) |")
    print("|---|---|---|---|---|---|---|")
    for r in runs:
        rss = f"{r['peak_actor_rss_mb']:.0f}" if r["peak_actor_rss_mb"] else "-"
        print(f"| {r['engine']} | {r['workers']} | {r['wall_s']:.1f} | {r['startup_s']:.1f} | {r['rows_per_s']:,.0f} "
              f"| {r['after_startup_rows_per_s']:,.0f} | {rss} |")
    machine = {"python": platform.python_version(), "cpus": os.cpu_count(),
               "memory_gb": round(psutil.virtual_memory().total / 2**30, 1), "platform": platform.platform()}
    loads = ", ".join(f"{r['load_1min_before']:.1f}" for r in runs)
    print(f"\nmachine: {machine}; 1-minute load average before each run: {loads}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "benchmark": "bench_ray", "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "rows": args.rows, "batch_size": args.batch_size, "model_mb": model_mb, "machine": machine, "runs": runs,
        }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
