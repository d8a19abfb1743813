"""ONNX export of photo models and text + photo ensembles: prediction speed and agreement with PyTorch.

    python benchmarks/bench_export_images.py [--data-root DIR] [--task fashion-articleType] [--sample 2000]
        [--systems "image: image-pretrained probe,image: image-resnet,ensemble: tfidf-linear + probe"]
        [--repeats 3] [--out results.json]

For each system (bench_images' systems and tasks; from-scratch photo models get
3 epochs: they are timed, not judged): train through the facade on
bench_images' split (seed 0), save, `export_model` to ONNX (fp32), then in a
fresh process per engine load the model directory and predict the test photos
`--repeats` times after one warm-up; the median time counts (each engine in
a process of its own, so neither's thread pools or memory slow the other). Decoding the JPEGs is
part of prediction, so the same photos are also timed through decoding alone
(the model's own collate: read, resize, normalize) and through the network
alone (PyTorch, ONNX Runtime fp32 and, to show why export refuses it for photo
models, ONNX Runtime with dynamic int8 weights) on the decoded batches.

Reported per system: products/s of prediction with PyTorch and with ONNX
Runtime, the network-only figures (photo models), identical labels on the test
products, the largest probability difference, macro-F1 of both, and model sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_images import DEFAULT_DATA_ROOT, SYSTEMS, TASKS, TEST_SIZE, VALID_SIZE, _catalog_file  # noqa: E402
from bench_text import _dir_mb, machine_info  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "results" / "bench_export_images.json"
#: bench_images' systems, and text + photo with the probe as photo member (its fit is minutes, not an hour)
SYSTEMS = {**SYSTEMS, "ensemble: tfidf-linear + probe": {
    "model": "ensemble", "params": {"members": ["tfidf-linear", "image-pretrained"],
                                    "member_params": {"image-pretrained": {"freeze_layers": -1}}}}}
DEFAULT_SYSTEMS = ("image: image-pretrained probe", "image: image-resnet", "ensemble: tfidf-linear + probe")
#: from-scratch models are timed, not judged: a few epochs give a network of the real size
SHORT_TRAINING = {"image-cnn": {"epochs": 3}, "image-resnet": {"epochs": 3}}


def _median_seconds(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def time_engine(model_dir: Path, products_file: Path, engine: str, repeats: int, out: Path) -> None:
    """In a process of its own: predict the products `repeats` times, then (a photo model
    with PyTorch) time decoding alone and the network alone on the decoded batches."""
    import numpy as np
    import torch

    from prodcat import Categorizer
    from prodcat.catalog.products import Products
    from prodcat.models.onnx_runtime import inference_session

    saved = json.loads(products_file.read_text())
    refs = saved["images"]
    products = Products(texts=saved["texts"], images=refs)
    result: dict = {}
    if not engine.startswith("graph-"):
        clf = Categorizer.load(model_dir)
        proba = clf._proba(products)  # warm-up: first-call allocations, the decoding pool
        result["predict_s"] = _median_seconds(lambda: clf._proba(products), repeats)
        np.save(out.with_suffix(".proba.npy"), proba)
    if engine == "torch" and clf.model != "ensemble":
        source = clf._fitted
        examples = source.encode(products)
        size = int(source.settings["eval_batch_size"])
        batches: list = []
        result["decode_s"] = _median_seconds(
            lambda: batches.__setitem__(slice(None), [source.collate(examples[i : i + size])
                                                      for i in range(0, len(examples), size)]), repeats)
        pixels = [b["pixels"][b["present"]] for b in batches]
        network = source.network.net.eval()

        def torch_network():
            with torch.inference_mode():
                return np.concatenate([network(b).numpy() for b in pixels])

        logits = torch_network()
        result["network_s"] = _median_seconds(torch_network, repeats)
        np.save(out.with_suffix(".pixels.npy"), torch.cat(pixels).numpy())
        np.save(out.with_suffix(".logits.npy"), logits)
    elif engine.startswith("graph-"):  # the network alone, as ONNX Runtime runs a graph file
        from prodcat.export import quantize_int8

        graph = (model_dir / "graph.onnx").read_bytes()
        if engine == "graph-int8":
            graph = quantize_int8(graph)
        session = inference_session(graph)
        pixels = np.load(model_dir / "pixels.npy")
        size = 256
        arrays = [pixels[i : i + size] for i in range(0, len(pixels), size)]

        def onnx_network():
            return np.concatenate([session.run(["logits"], {"pixels": a})[0] for a in arrays])

        logits = onnx_network()
        result["network_s"] = _median_seconds(onnx_network, repeats)
        np.save(out.with_suffix(".logits.npy"), logits)
    out.write_text(json.dumps(result))


def _engine(model_dir: Path, products_file: Path, engine: str, repeats: int, tmp: Path) -> dict:
    out = tmp / f"{engine}.json"
    cmd = [sys.executable, __file__, "--engine", engine, "--model-dir", str(model_dir),
           "--products-file", str(products_file), "--repeats", str(repeats), "--result-file", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"engine {engine} failed")
    return json.loads(out.read_text())


def measure(task_name: str, system_name: str, data_root: Path, sample: int | None, repeats: int) -> dict:
    import numpy as np
    import onnxruntime
    from sklearn.metrics import f1_score

    from prodcat import Categorizer
    from prodcat.export import export_model, onnx_graph

    task, system = TASKS[task_name], SYSTEMS[system_name]
    params = {**SHORT_TRAINING.get(system["model"], {}), **(system.get("params") or {})}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path, fields = _catalog_file(task, data_root, tmp, sample, 0)
        started = time.perf_counter()
        clf = Categorizer(system["model"], params=params, **fields, valid_size=VALID_SIZE, test_size=TEST_SIZE,
                          seed=0, quiet=True).fit(path)
        fit_s = time.perf_counter() - started
        test = clf._test_catalog
        source_dir = clf.save(tmp / "torch")
        started = time.perf_counter()
        onnx_dir = export_model(source_dir, tmp / "onnx", quiet=True)
        export_s = time.perf_counter() - started
        refs = [ref if isinstance(ref, str) else None for ref in test.products.images]
        products_file = tmp / "products.json"
        products_file.write_text(json.dumps({"texts": list(test.products.texts), "images": refs}))

        timed = {"torch": _engine(source_dir, products_file, "torch", repeats, tmp),
                 "onnx": _engine(onnx_dir, products_file, "onnx", repeats, tmp)}
        proba = {name: np.load(tmp / f"{name}.proba.npy") for name in ("torch", "onnx")}
        truth = clf.label_space_.encode(test.labels)
        predicted = {name: p.argmax(axis=1) for name, p in proba.items()}
        predict_s = {name: timed[name]["predict_s"] for name in ("torch", "onnx")}
        result = {
            "task": task_name, "system": system_name, "sample": sample, "params": params,
            "n_test": len(refs), "fit_s": fit_s, "export_s": export_s,
            "predict_s": predict_s,
            "photos_per_s": {name: len(refs) / s for name, s in predict_s.items()},
            "speed_up": predict_s["torch"] / predict_s["onnx"],
            "label_agreement": float((predicted["torch"] == predicted["onnx"]).mean()),
            "max_abs_probability_difference": float(np.abs(proba["torch"] - proba["onnx"]).max()),
            "macro_f1": {name: float(f1_score(truth, p, average="macro", labels=np.unique(truth), zero_division=0))
                         for name, p in predicted.items()},
            "model_mb": {"torch": _dir_mb(source_dir), "onnx": _dir_mb(onnx_dir)},
            "onnxruntime_version": onnxruntime.__version__,
        }
        if clf.model == "ensemble":
            return result

        graph_dir = tmp / "graph"
        graph_dir.mkdir()
        source = Categorizer.load(source_dir)._fitted
        (graph_dir / "graph.onnx").write_bytes(onnx_graph(source, source.encode(test.products)[:8])[0])
        (graph_dir / "pixels.npy").write_bytes((tmp / "torch.pixels.npy").read_bytes())
        for engine in ("graph-fp32", "graph-int8"):
            timed[engine] = _engine(graph_dir, products_file, engine, repeats, tmp)
        logits = {name: np.load(tmp / f"{name}.logits.npy") for name in ("torch", "graph-fp32", "graph-int8")}
        n_photos = len(logits["torch"])
        network_s = {"torch": timed["torch"]["network_s"], "onnx_fp32": timed["graph-fp32"]["network_s"],
                     "onnx_int8": timed["graph-int8"]["network_s"]}
        return {
            **result,
            "n_test_photos_read": n_photos,
            "decode_s": timed["torch"]["decode_s"], "decode_photos_per_s": len(refs) / timed["torch"]["decode_s"],
            "network_s": network_s,
            "network_photos_per_s": {name: n_photos / s for name, s in network_s.items()},
            "int8_label_agreement_network_only": float(
                (logits["graph-int8"].argmax(1) == logits["torch"].argmax(1)).mean()),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--task", default="fashion-articleType", choices=sorted(TASKS))
    parser.add_argument("--systems", default=",".join(DEFAULT_SYSTEMS))
    parser.add_argument("--sample", type=int, default=2000,
                        help="fashion tasks: a random sample of this many products with a photo (CPU time)")
    parser.add_argument("--repeats", type=int, default=3)
    # one engine timed in a process of its own (internal)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--products-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.engine:
        time_engine(args.model_dir, args.products_file, args.engine, args.repeats, args.result_file)
        return 0
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    photo_systems = [name for name, system in SYSTEMS.items() if system["model"].startswith("image-")
                     or "image-pretrained" in (system.get("params") or {}).get("members", [])]
    unknown = [s for s in systems if s not in photo_systems]
    if unknown:
        parser.error(f"not a system with a photo model: {', '.join(unknown)}; known: {', '.join(photo_systems)}")
    started = time.perf_counter()
    runs = []
    for system in systems:
        r = measure(args.task, system, args.data_root.resolve(), args.sample, args.repeats)
        runs.append(r)
        line = (f"{system:32s} torch {r['photos_per_s']['torch']:6.1f}/s  onnx {r['photos_per_s']['onnx']:6.1f}/s  "
                f"x{r['speed_up']:.2f}  same labels {r['label_agreement']:.4f}  "
                f"max diff {r['max_abs_probability_difference']:.1e}")
        if "network_s" in r:
            line += (f"  decode {r['decode_photos_per_s']:6.1f}/s  network torch "
                     f"{r['network_photos_per_s']['torch']:6.1f}/s fp32 {r['network_photos_per_s']['onnx_fp32']:6.1f}/s "
                     f"int8 {r['network_photos_per_s']['onnx_int8']:6.1f}/s")
        print(line, flush=True)
    result = {
        "benchmark": "bench_export_images",
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/bench_export_images.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine_info(),
        "total_seconds": time.perf_counter() - started,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
