"""Load test of `prodcat serve` (the HTTP API) with a tfidf-linear model, on loopback.

    python benchmarks/bench_serve.py [--data fashion|demo] [--requests 2000] [--seconds 30] [--out results.json]

1. Trains tfidf-linear with the CLI into a temporary folder: on the fashion
   catalog (`--text-cols productDisplayName --label-col articleType`, from
   ../shared/data, the default when present) or on examples/demo_catalog.csv.
2. Starts `prodcat serve MODEL --host 127.0.0.1 --port FREE` as a subprocess
   (one worker, default settings: 2 ms batching window, access log on) and
   waits for /health.
3. Sends real catalog titles with httpx.AsyncClient: one-product requests at
   concurrency 1, 4, 16 and 32, then 100-product requests at concurrency 1
   and 4. Each scenario is bounded by --requests (100-product ones by a tenth
   of it) and --seconds, after 50 warm-up requests. Latency is measured per
   request on the client (send to last byte of the response).
4. Prints a Markdown table (req/s, products/s, p50/p95/p99 latency, errors)
   and writes the figures to --out. Stops the server by itself.

The client runs on the same machine and takes its share of the CPU, so the
figures are what one box serving and loading itself sustains.
Exits 1 when any request fails or one-product p95 at concurrency 16 exceeds
--p95-goal-ms (50).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pandas as pd
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_text import machine_info  # noqa: E402  (same folder: the script's own)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "bench_serve.json"
WARMUP = 50
SINGLE_CONCURRENCY = (1, 4, 16, 32)
BATCH_CONCURRENCY = (1, 4)
BATCH_SIZE = 100

DATASETS = {
    "fashion": {
        "file": lambda root: root / "fashion" / "styles.csv",
        "train": ["--text-cols", "productDisplayName", "--label-col", "articleType", "--id-cols", "id"],
        "text_col": "productDisplayName",
    },
    "demo": {
        "file": lambda root: REPO / "examples" / "demo_catalog.csv",
        "train": ["--text-cols", "title,description", "--label-col", "category", "--label-format", "path",
                  "--id-cols", "sku"],
        "text_col": "title",
    },
}


def prodcat_command() -> list[str]:
    return [sys.executable, "-m", "prodcat.cli"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


async def run_scenario(url: str, products: list[dict], *, concurrency: int, per_request: int,
                       requests: int, seconds: float, server: psutil.Process) -> dict:
    """`requests` POST /v1/predict of `per_request` products from `concurrency` loops, or fewer if
    `seconds` run out. Also the CPU time the server and this client spent per request: on a busy
    machine latency is shared out, CPU time is not."""
    latencies: list[float] = []
    errors: list[str] = []
    issued = 0
    rng = random.Random(concurrency * 1000 + per_request)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(10.0), limits=limits) as client:
        async def one() -> None:
            body = rng.sample(products, per_request)
            started = time.perf_counter()
            try:
                response = await client.post("/v1/predict", json=body)
                ok = response.status_code == 200 and len(response.json()["predictions"]) == per_request
                if not ok:
                    errors.append(f"{response.status_code}: {response.text[:120]}")
            except httpx.HTTPError as exc:
                errors.append(repr(exc))
            latencies.append(time.perf_counter() - started)

        async def loop(deadline: float, quota: int) -> None:
            nonlocal issued
            while issued < quota and time.perf_counter() < deadline:
                issued += 1
                await one()

        warm_deadline = time.perf_counter() + seconds
        await asyncio.gather(*(loop(warm_deadline, min(WARMUP, requests)) for _ in range(concurrency)))
        latencies.clear()
        errors.clear()
        issued = 0
        server_cpu, client_cpu = sum(server.cpu_times()[:2]), sum(psutil.Process().cpu_times()[:2])
        started = time.perf_counter()
        await asyncio.gather(*(loop(started + seconds, requests) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        server_cpu = sum(server.cpu_times()[:2]) - server_cpu
        client_cpu = sum(psutil.Process().cpu_times()[:2]) - client_cpu
    done = len(latencies)
    return {
        "concurrency": concurrency,
        "products_per_request": per_request,
        "requests": done,
        "errors": len(errors),
        "error_examples": errors[:3],
        "seconds": round(elapsed, 2),
        "requests_per_second": round(done / elapsed, 1),
        "products_per_second": round(done * per_request / elapsed),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p95_ms": round(percentile(latencies, 95) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1) if latencies else None,
        "server_cpu_ms_per_request": round(server_cpu / max(done, 1) * 1000, 2),
        "client_cpu_ms_per_request": round(client_cpu / max(done, 1) * 1000, 2),
    }


def wait_for_health(url: str, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"prodcat serve exited with {process.returncode}")
        try:
            if httpx.get(url + "/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"prodcat serve did not answer /health within {seconds} s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| products/request | concurrency | requests | errors | req/s | products/s | p50 ms | p95 ms | p99 ms "
        "| server CPU ms/req |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['products_per_request']} | {r['concurrency']} | {r['requests']} | {r['errors']} | "
            f"{r['requests_per_second']:,} | {r['products_per_second']:,} | {r['p50_ms']} | {r['p95_ms']} | "
            f"{r['p99_ms']} | {r['server_cpu_ms_per_request']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", choices=sorted(DATASETS), default=None,
                        help="catalog to train on (default: fashion when ../shared/data has it, else demo)")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--requests", type=int, default=2000, help="one-product requests per scenario")
    parser.add_argument("--seconds", type=float, default=30.0, help="time limit per scenario")
    parser.add_argument("--p95-goal-ms", type=float, default=50.0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if args.data is None:
        args.data = "fashion" if DATASETS["fashion"]["file"](args.data_root).is_file() else "demo"
    dataset = DATASETS[args.data]
    catalog = dataset["file"](args.data_root)

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        model_dir = Path(tmp) / "model"
        started = time.perf_counter()
        subprocess.run([*prodcat_command(), "train", "--data", str(catalog), *dataset["train"],
                        "--out", str(model_dir), "--quiet"], check=True, env=env, stdout=subprocess.DEVNULL)
        train_seconds = time.perf_counter() - started
        texts = pd.read_csv(catalog, usecols=[dataset["text_col"]], dtype=str, on_bad_lines="skip")
        products = [{dataset["text_col"]: t} for t in texts[dataset["text_col"]].dropna().drop_duplicates()]

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        command = [*prodcat_command(), "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port)]
        server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        server_process = psutil.Process(server.pid)
        rows = []
        try:
            started = time.perf_counter()
            wait_for_health(url, server)
            startup_seconds = time.perf_counter() - started
            for concurrency in SINGLE_CONCURRENCY:
                rows.append(asyncio.run(run_scenario(url, products, concurrency=concurrency, per_request=1,
                                                     requests=args.requests, seconds=args.seconds,
                                                     server=server_process)))
                print(markdown_table(rows[-1:]).splitlines()[-1], flush=True)
            for concurrency in BATCH_CONCURRENCY:
                rows.append(asyncio.run(run_scenario(url, products, concurrency=concurrency,
                                                     per_request=BATCH_SIZE, requests=max(1, args.requests // 10),
                                                     seconds=args.seconds, server=server_process)))
                print(markdown_table(rows[-1:]).splitlines()[-1], flush=True)
        finally:
            stop(server)

    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "load_average_at_end": os.getloadavg(),
        "data": args.data,
        "catalog": str(catalog),
        "distinct_texts": len(products),
        "train_seconds": round(train_seconds, 1),
        "server_startup_seconds": round(startup_seconds, 1),
        "command": " ".join(["python", "benchmarks/bench_serve.py", *sys.argv[1:]]),
        "scenarios": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(markdown_table(rows))
    print(f"\ndata={args.data} ({len(products)} distinct texts), train {train_seconds:.1f} s, "
          f"server up in {startup_seconds:.1f} s, load average {os.getloadavg()[0]:.1f}; written to {args.out}")
    failed = [r for r in rows if r["errors"]]
    c16 = next(r for r in rows if r["concurrency"] == 16 and r["products_per_request"] == 1)
    if failed:
        print(f"FAILED: errors in {len(failed)} scenario(s): {failed[0]['error_examples']}")
    if c16["p95_ms"] > args.p95_goal_ms:
        print(f"FAILED: p95 at concurrency 16 is {c16['p95_ms']} ms, over the goal of {args.p95_goal_ms} ms")
    if failed or c16["p95_ms"] > args.p95_goal_ms:
        sys.exit(1)


if __name__ == "__main__":
    main()
