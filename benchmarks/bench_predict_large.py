"""Peak memory and speed of `prodcat predict` (the CLI) on a 400,000-row catalog.

    python benchmarks/bench_predict_large.py [--data-root DIR] [--rows 400000] [--out results.json]

1. Trains a fashion articleType model with the CLI
   (`prodcat train --data styles.csv --text-cols productDisplayName --label-col articleType --id-cols id`).
2. Builds BIG.csv in a temporary folder (never in the repo): fashion titles
   sampled with replacement to --rows rows, plus a unique `id` column holding a
   shuffled permutation, so the output's row order can be checked.
3. Runs `prodcat predict MODEL --data BIG.csv --out OUT.parquet` and then
   `--out OUT.csv` as subprocesses, measuring wall time and peak RSS: the
   process tree's RSS polled with psutil every 50 ms, and, where
   /usr/bin/time exists, its exact "Maximum resident set size" of the predict
   process.
4. Checks each output has --rows rows and the input's ids in the input's order.

Fails (exit 1) when a check fails or the peak exceeds --limit-mb (1536 MB = 1.5 GiB).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from bench_text import machine_info  # noqa: E402  (same folder: the script's own)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "bench_predict_large.json"
POLL_S = 0.05


def prodcat_exe() -> str:
    here = Path(sys.executable).parent / "prodcat"
    found = str(here) if here.exists() else shutil.which("prodcat")
    if not found:
        raise SystemExit("the prodcat command is not installed next to this Python nor on PATH")
    return found


def run_measured(cmd: list[str]) -> dict:
    """Run cmd; wall seconds, peak RSS of the process tree (psutil, 50 ms polls)
    and, through /usr/bin/time -v when present, the kernel's high-water mark."""
    gnu_time = Path("/usr/bin/time")
    full = [str(gnu_time), "-v", *cmd] if gnu_time.exists() else cmd
    started = time.perf_counter()
    proc = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    top = psutil.Process(proc.pid)
    peak, samples = 0, 0
    while proc.poll() is None:
        try:
            tree = [top, *top.children(recursive=True)]
            # /usr/bin/time itself is ~2 MB; counting it keeps the figure conservative.
            rss = 0
            for p in tree:
                try:
                    rss += p.memory_info().rss
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
            peak, samples = max(peak, rss), samples + 1
        except psutil.NoSuchProcess:
            pass
        time.sleep(POLL_S)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - started
    result = {"cmd": cmd, "returncode": proc.returncode, "wall_s": wall,
              "peak_rss_mb_psutil": peak / 2**20, "psutil_samples": samples,
              "stdout": stdout.strip()[-2000:]}
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    if match:
        result["peak_rss_mb_time"] = int(match.group(1)) / 1024
        stderr = stderr[: stderr.rfind("\tCommand being timed")]
    result["stderr"] = stderr.strip()[-2000:]
    if proc.returncode != 0:
        sys.stderr.write(stdout + stderr)
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}")
    return result


def build_big_csv(styles: Path, rows: int, path: Path, seed: int = 0) -> np.ndarray:
    """Titles sampled with replacement + a shuffled unique id; returns the ids in file order."""
    from prodcat.catalog.fields import FieldMapping
    from prodcat.catalog.load import load_catalog

    titles = [t for t in load_catalog(styles, FieldMapping(text_cols=("productDisplayName",)),
                                      with_labels=False).products.texts if t]
    rng = np.random.default_rng(seed)
    ids = rng.permutation(rows).astype(np.int64) + 1_000_000
    frame = pd.DataFrame({"id": ids, "productDisplayName": np.asarray(titles, dtype=object)[rng.integers(0, len(titles), rows)]})
    frame.to_csv(path, index=False)
    return ids


def check_output(path: Path, ids: np.ndarray) -> dict:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path, columns=["id", "prediction"])
        got_ids, preds = table.column("id").to_pylist(), table.column("prediction").to_pylist()
    else:
        frame = pd.read_csv(path, usecols=["id", "prediction"], dtype=str, keep_default_na=False)
        got_ids, preds = frame["id"].tolist(), frame["prediction"].tolist()
    expected = [str(i) for i in ids]
    got = [str(i) for i in got_ids]
    ok_rows = len(got) == len(expected)
    ok_order = ok_rows and got == expected
    empty = sum(1 for p in preds if p in (None, ""))
    if not ok_rows:
        raise SystemExit(f"{path}: {len(got):,} rows, expected {len(expected):,}")
    if not ok_order:
        first = next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b)
        raise SystemExit(f"{path}: ids differ from the input's from row {first + 1} ({got[first]} != {expected[first]})")
    if empty:
        raise SystemExit(f"{path}: {empty} rows without a prediction")
    return {"rows": len(got), "ids_in_input_order": ok_order, "empty_predictions": empty,
            "size_mb": path.stat().st_size / 2**20}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON file for the results")
    parser.add_argument("--limit-mb", type=float, default=1536.0, help="fail above this peak RSS (MB)")
    parser.add_argument("--formats", default="parquet,csv", help="prediction formats to run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    args = parser.parse_args(argv)
    styles = (args.data_root / "fashion" / "styles.csv").resolve()
    if not styles.is_file():
        parser.error(f"{styles} not found (use --data-root)")
    exe = prodcat_exe()
    load_at_start = os.getloadavg()

    tmp = Path(tempfile.mkdtemp(prefix="prodcat-bench-"))
    try:
        model = tmp / "model"
        print(f"training a fashion articleType model into {model} ...", flush=True)
        train = run_measured([exe, "train", "--data", str(styles), "--text-cols", "productDisplayName",
                              "--label-col", "articleType", "--id-cols", "id", "--out", str(model), "--quiet"])
        print(f"  trained in {train['wall_s']:.1f} s", flush=True)

        big = tmp / "BIG.csv"
        ids = build_big_csv(styles, args.rows, big)
        print(f"built {big} ({args.rows:,} rows, {big.stat().st_size / 2**20:.1f} MB)", flush=True)

        runs = []
        for fmt in [f for f in args.formats.split(",") if f]:
            out = tmp / f"OUT.{fmt}"
            r = run_measured([exe, "predict", str(model), "--data", str(big), "--out", str(out)])
            r["format"] = fmt
            r["rows_per_s"] = args.rows / r["wall_s"]
            r["peak_rss_mb"] = max(r["peak_rss_mb_psutil"], r.get("peak_rss_mb_time", 0.0))
            r["check"] = check_output(out, ids)
            r["under_limit"] = r["peak_rss_mb"] <= args.limit_mb
            runs.append(r)
            print(f"predict -> {out.name}: {r['wall_s']:.1f} s wall ({r['rows_per_s']:,.0f} rows/s incl. start-up), "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB (time -v: {r.get('peak_rss_mb_time', float('nan')):.0f}, "
                  f"psutil: {r['peak_rss_mb_psutil']:.0f}); {r['check']['rows']:,} rows, ids in order", flush=True)
            out.unlink()
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    result = {
        "benchmark": "bench_predict_large",
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "rows": args.rows,
        "limit_mb": args.limit_mb,
        "machine": machine_info(),
        "load_average_at_start": load_at_start,
        "train": {k: train[k] for k in ("cmd", "wall_s", "peak_rss_mb_psutil") if k in train}
        | {"peak_rss_mb_time": train.get("peak_rss_mb_time")},
        "predict": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    print(f"results in {args.out}")
    over = [r["format"] for r in runs if not r["under_limit"]]
    if over:
        print(f"FAIL: peak RSS above {args.limit_mb:.0f} MB for {', '.join(over)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
