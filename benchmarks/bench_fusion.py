"""Is early fusion worth building? Text + photo in one linear model, measured before writing it.

    python benchmarks/bench_fusion.py [--tasks ...] [--seeds 0,1,2] [--data-root DIR] [--out results.json]

On bench_images' tasks and splits (fashion articleType / subCategory on all
8,237 photos, flipkart level 2), against tfidf-linear trained through the
facade on the same split:
  - linear probe: a logistic regression on frozen ImageNet EfficientNet-Lite0
    features (1280-d, 160 px, prediction-time preprocessing), z-scored with
    training statistics and L2-normalized; C chosen on validation macro-F1;
  - early fusion: tfidf-linear's LinearSVC on [TF-IDF | alpha * those
    features], alpha chosen on validation macro-F1 (every alpha is printed);
  - averaging with the probe: tfidf-linear's probabilities averaged with the
    probe's, the weight chosen by validation Brier score as
    `ensemble --method average` chooses it.
Decisions changed / fixed / broken against the text alone, and the 95%
bootstrap interval of the gain (`versus_best_part`). Frozen features are
cached under --cache (one pass over the photos). A measurement, not a model:
it reaches into the facade's fitted parts (`_fitted`, `_test_catalog`) and
wraps TfidfLinear.fit to see the train and validation parts it was given.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import numpy as np
import scipy.sparse as sp
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.svm import LinearSVC

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_images import DEFAULT_DATA_ROOT, TASKS, TEST_SIZE, VALID_SIZE, _catalog_file  # noqa: E402
from bench_text import machine_info  # noqa: E402

from prodcat import Categorizer  # noqa: E402
from prodcat.evaluation.compare import versus_best_part  # noqa: E402
from prodcat.evaluation.metrics import compute_metrics  # noqa: E402
from prodcat.images.decode import DEFAULT_MAX_PIXELS, load_image  # noqa: E402
from prodcat.images.transforms import resize_center_crop, to_tensor  # noqa: E402
from prodcat.models import efficientnet_lite  # noqa: E402
from prodcat.models.ensemble import average_proba, tune_weights  # noqa: E402
from prodcat.models.linear import TfidfLinear  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "results" / "bench_fusion.json"
CACHE = Path(os.environ.get("PRODCAT_BENCH_CACHE", "/tmp/prodcat-bench-fusion"))
DATA = DEFAULT_DATA_ROOT
WEIGHTS = np.round(np.arange(0, 1.0001, 0.05), 2)  # averaging's grid (prodcat.models.ensemble)
SIZE = 160  # image-pretrained's DEFAULT_IMAGE_SIZE for EfficientNet-Lite0
ALPHAS = (0.0, 0.25, 0.5, 1.0, 2.0)
PROBE_CS = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
warnings.simplefilter("ignore", ConvergenceWarning)

# --- capture the train / valid parts that Categorizer.fit hands to TfidfLinear.fit -------------
_CAPTURED: dict = {}
_orig_fit = TfidfLinear.fit


def _capturing_fit(self, products, y, label_space, valid=None, **kw):
    _CAPTURED.update(train=products, y_train=np.asarray(y), valid=valid, kw=kw, model=self)
    return _orig_fit(self, products, y, label_space, valid, **kw)


TfidfLinear.fit = _capturing_fit


# --- frozen embeddings ---------------------------------------------------------------------------
_NET = None


def _net():
    global _NET
    if _NET is None:
        _NET = efficientnet_lite.pretrained().eval()
    return _NET


def _prepare(ref):
    """Prediction-time preprocessing of image-pretrained (ImageTorchModel._batch with seed=None)."""
    if ref is None:
        return None
    result = load_image(ref, max_pixels=DEFAULT_MAX_PIXELS, target_size=SIZE)
    if result.image is None:
        return None
    return resize_center_crop(result.image, SIZE)


def embeddings(name: str, refs: list) -> tuple[np.ndarray, np.ndarray, dict]:
    """(n, 1280) float32 pooled features and a present mask, cached by image reference."""
    keys = [str(r) if r is not None else "" for r in refs]
    CACHE.mkdir(parents=True, exist_ok=True)
    cache_x, cache_k = CACHE / f"emb_{name}.npy", CACHE / f"emb_{name}.keys.json"
    table: dict[str, int] = {}
    store = np.zeros((0, efficientnet_lite.FEATURE_DIM), np.float32)
    present_store = np.zeros(0, bool)
    info = {"cached": True}
    if cache_x.is_file():
        saved = json.loads(cache_k.read_text())
        table = {k: i for i, k in enumerate(saved["keys"])}
        store = np.load(cache_x)
        present_store = np.array(saved["present"], bool)
    todo = sorted({k for k in keys if k not in table})
    if todo:
        info = {"cached": False}
        net, mean, std = _net(), efficientnet_lite.MEAN, efficientnet_lite.STD
        feats = np.zeros((len(todo), efficientnet_lite.FEATURE_DIM), np.float32)
        ok = np.zeros(len(todo), bool)
        started = time.perf_counter()
        pool = ThreadPoolExecutor(2)
        batch = 64
        for s in range(0, len(todo), batch):
            chunk = todo[s:s + batch]
            arrays = list(pool.map(lambda k: _prepare(k or None), chunk))
            idx = [i for i, a in enumerate(arrays) if a is not None]
            if idx:
                x = to_tensor([arrays[i] for i in idx], mean, std)
                with torch.inference_mode():
                    f = net.features(x).numpy()
                feats[[s + i for i in idx]] = f
                ok[[s + i for i in idx]] = True
            if (s // batch) % 20 == 0:
                el = time.perf_counter() - started
                print(f"  embeddings {name}: {s + len(chunk)}/{len(todo)} {(s + len(chunk)) / el:.1f} img/s", flush=True)
        seconds = time.perf_counter() - started
        info.update(n=len(todo), seconds=seconds, images_per_s=len(todo) / seconds, unreadable_or_absent=int((~ok).sum()))
        base = len(table)
        for i, k in enumerate(todo):
            table[k] = base + i
        store = np.concatenate([store, feats])
        present_store = np.concatenate([present_store, ok])
        np.save(cache_x, store)
        cache_k.write_text(json.dumps({"keys": sorted(table, key=table.get),
                                       "present": present_store.tolist(), "extraction": info}))
        print(f"  embeddings {name}: {len(todo)} in {seconds:.0f}s = {info['images_per_s']:.1f} img/s, "
              f"{info['unreadable_or_absent']} without a readable photo", flush=True)
    else:
        info.update(json.loads(cache_k.read_text()).get("extraction", {}))
    rows = np.array([table[k] for k in keys])
    return store[rows], present_store[rows], info


def scale_embeddings(train_e, train_p, *parts):
    """z-score with train statistics (photos present only), then L2 normalize; no photo -> zeros."""
    mu = train_e[train_p].mean(0)
    sd = train_e[train_p].std(0) + 1e-6
    out = []
    for e, p in parts:
        z = (e - mu) / sd
        z /= np.linalg.norm(z, axis=1, keepdims=True) + 1e-12
        z[~p] = 0.0
        out.append(z.astype(np.float32))
    return out


# --- scoring -------------------------------------------------------------------------------------
def onehot(decided: np.ndarray, k: int) -> np.ndarray:
    p = np.zeros((len(decided), k), np.float32)
    p[np.arange(len(decided)), decided] = 1.0
    return p


def test_scores(clf, test, decided):
    m = compute_metrics(clf.label_space_, test.labels, onehot(decided, clf.label_space_.n_classes), clf.thresholds_)
    return {"macro_f1": m["macro_f1"], "accuracy": m["accuracy"]}


def versus(text_dec, dec, y_test):
    changed = text_dec != dec
    return {"changed": int(changed.sum()),
            "fixed": int((changed & (dec == y_test)).sum()),
            "broken": int((changed & (text_dec == y_test)).sum())}


def svm_fit_predict(x_tr, y_tr, x_list, seed):
    # tfidf-linear's learner: LinearSVC(C=1, max_iter=5000, dual="auto"), class_weight as the Categorizer passes it
    svm = LinearSVC(C=1.0, class_weight="balanced", max_iter=5000, random_state=seed, dual="auto").fit(x_tr, y_tr)
    return [svm.classes_[np.asarray(svm.decision_function(x)).argmax(1)] for x in x_list]


def run(task_name: str, seed: int) -> dict:
    task = TASKS[task_name]
    res = {"task": task_name, "seed": seed}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path, fields = _catalog_file(task, DATA, Path(tmp), None, seed)
        _CAPTURED.clear()
        started = time.perf_counter()
        clf = Categorizer("tfidf-linear", **fields, valid_size=VALID_SIZE, test_size=TEST_SIZE, seed=seed,
                          quiet=True).fit(path)
        res["categorizer_fit_s"] = time.perf_counter() - started
        metrics = clf.evaluate()
    res["text_categorizer"] = {"macro_f1": metrics["macro_f1"], "accuracy": metrics["accuracy"]}
    model: TfidfLinear = _CAPTURED["model"]
    assert model is clf._fitted and _CAPTURED["kw"].get("class_weight") == "balanced"
    space = clf.label_space_
    train, y_tr = _CAPTURED["train"], _CAPTURED["y_train"]
    valid, y_va = _CAPTURED["valid"]
    test = clf._test_catalog
    y_te = space.encode(test.labels)
    res["sizes"] = {"train": len(train), "valid": len(valid), "test": len(test), "classes": space.n_classes,
                    "test_unknown_class": int((y_te < 0).sum())}
    text_dec = clf._test_proba.argmax(1)

    feats = model._features
    x_tr, x_va, x_te = (feats.transform(list(p.texts)) for p in (train, valid, test.products))
    res["tfidf_features"] = int(x_tr.shape[1])

    name = task["file"].split("/")[0]
    refs = [list(p.images) for p in (train, valid, test.products)]
    e_all, p_all, info = embeddings(name, refs[0] + refs[1] + refs[2])  # one pass over the catalog
    cut = np.cumsum([len(r) for r in refs])[:2]
    (e_tr, e_va, e_te), (p_tr, p_va, p_te) = np.split(e_all, cut), np.split(p_all, cut)
    res["extraction"] = info
    res["no_photo"] = {"train": int((~p_tr).sum()), "valid": int((~p_va).sum()), "test": int((~p_te).sum())}
    z_tr, z_va, z_te = scale_embeddings(e_tr, p_tr, (e_tr, p_tr), (e_va, p_va), (e_te, p_te))

    # linear probe: multinomial logistic regression, balanced, C on validation macro-F1
    started = time.perf_counter()
    probe = []
    for c in PROBE_CS:
        lr = LogisticRegression(C=c, class_weight="balanced", max_iter=500).fit(z_tr, y_tr)
        dv, dt = lr.classes_[lr.predict_proba(z_va).argmax(1)], lr.classes_[lr.predict_proba(z_te).argmax(1)]
        probe.append({"C": c, "valid_macro_f1": f1_score(y_va, dv, average="macro", zero_division=0),
                      **test_scores(clf, test, dt), "_dec": dt, "_model": lr})
    best = max(probe, key=lambda r: r["valid_macro_f1"])
    probe_dec, probe_model = best.pop("_dec"), best.pop("_model")
    for r in probe:
        r.pop("_dec", None)
        r.pop("_model", None)
    res["probe"] = {"chosen_C": best["C"], "macro_f1": best["macro_f1"], "accuracy": best["accuracy"],
                    "grid": probe, "seconds": time.perf_counter() - started}

    # averaging with the probe as the photo member, weights as `ensemble --method average` chooses them
    def probe_proba(z):
        out = np.zeros((len(z), space.n_classes), np.float32)
        out[:, probe_model.classes_] = probe_model.predict_proba(z)
        return out

    text_va = clf._fitted.predict_proba(valid)
    known = y_va >= 0
    weights = tune_weights([text_va[known], probe_proba(z_va)[known]], [None, p_va[known]], y_va[known], multi=False)
    averaged = average_proba([clf._test_proba, probe_proba(z_te)], [None, p_te], weights, multi=False)
    avg_dec = averaged.argmax(1)
    vb = versus_best_part(space, test.labels, {"text": clf._test_proba, "probe": probe_proba(z_te)}, averaged,
                          clf.thresholds_, seed=seed)
    res["average_with_probe"] = {"photo_weight": float(weights[1]), **test_scores(clf, test, avg_dec),
                                 **versus(text_dec, avg_dec, y_te), "headroom": vb["headroom"],
                                 "gain": vb["macro_f1_gain"], "gain_interval": vb["gain_interval"]}

    # early fusion: [tfidf | alpha * embedding] with tfidf-linear's LinearSVC
    fusion = []
    for alpha in ALPHAS:
        started = time.perf_counter()
        if alpha == 0:
            parts = (x_tr, x_va, x_te)
        else:
            parts = tuple(sp.hstack([x, sp.csr_matrix(alpha * z)], format="csr", dtype=np.float32)
                          for x, z in ((x_tr, z_tr), (x_va, z_va), (x_te, z_te)))
        dv, dt = svm_fit_predict(parts[0], y_tr, parts[1:], seed)
        row = {"alpha": alpha, "valid_macro_f1": f1_score(y_va, dv, average="macro", zero_division=0),
               "valid_accuracy": float((dv == y_va).mean()), **test_scores(clf, test, dt),
               **versus(text_dec, dt, y_te), "fit_s": time.perf_counter() - started}
        # prodcat's own comparison: parts = text alone (the Categorizer's) and the probe; headroom =
        # products text gets wrong and the probe gets right; paired bootstrap interval of the gain
        vb = versus_best_part(space, test.labels, {"text": clf._test_proba, "probe": onehot(probe_dec, space.n_classes)},
                              onehot(dt, space.n_classes), clf.thresholds_, seed=seed)
        row.update(best_part=vb["best_part"], headroom=vb["headroom"], gain=vb["macro_f1_gain"],
                   gain_interval=vb["gain_interval"])
        fusion.append(row)
        print(f"  alpha {alpha:<5} valid F1 {row['valid_macro_f1']:.4f} test F1 {row['macro_f1']:.4f} "
              f"acc {row['accuracy']:.4f} changed {row['changed']} fixed {row['fixed']} broken {row['broken']} "
              f"gain {row['gain']:+.4f} [{row['gain_interval'][0]:+.3f}, {row['gain_interval'][1]:+.3f}] ({row['fit_s']:.0f}s)", flush=True)
    best = max(fusion, key=lambda r: (r["valid_macro_f1"], -r["alpha"]))  # ties: the smaller alpha
    res["fusion"] = {"chosen_alpha": best["alpha"], **{k: best[k] for k in
                     ("macro_f1", "accuracy", "changed", "fixed", "broken")}, "grid": fusion}
    res["seconds"] = time.perf_counter() - t0
    return res


def table(r: dict) -> str:
    t, p, f = r["text_categorizer"], r["probe"], r["fusion"]
    lines = [f"== {r['task']} seed {r['seed']}  (train {r['sizes']['train']}, valid {r['sizes']['valid']}, "
             f"test {r['sizes']['test']}, {r['sizes']['classes']} classes; no photo test {r['no_photo']['test']})",
             f"  text alone (Categorizer tfidf-linear) macro-F1 {t['macro_f1']:.4f} acc {t['accuracy']:.4f}",
             f"  linear probe (C={p['chosen_C']})              macro-F1 {p['macro_f1']:.4f} acc {p['accuracy']:.4f}",
             f"  early fusion (alpha={f['chosen_alpha']})          macro-F1 {f['macro_f1']:.4f} acc {f['accuracy']:.4f}"
             f"  changed {f['changed']} fixed {f['fixed']} broken {f['broken']}",
             f"  headroom (text wrong, probe right): {f['grid'][0]['headroom']}",
             "  average with the probe (photo weight {photo_weight}): macro-F1 {macro_f1:.4f} acc {accuracy:.4f}"
             "  changed {changed} fixed {fixed} broken {broken}".format(**r["average_with_probe"]),
             "  alpha | valid F1 | test F1 | test acc | changed/fixed/broken | gain [95% bootstrap]"]
    for g in f["grid"]:
        lines.append(f"  {g['alpha']:<5} | {g['valid_macro_f1']:.4f} | {g['macro_f1']:.4f} | {g['accuracy']:.4f} | "
                     f"{g['changed']}/{g['fixed']}/{g['broken']} | {g['gain']:+.4f} [{g['gain_interval'][0]:+.3f}, {g['gain_interval'][1]:+.3f}]")
    return "\n".join(lines)


def main() -> None:
    global DATA
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", default="fashion-articleType,fashion-subCategory,flipkart-level2")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    DATA = args.data_root
    torch.set_num_threads(os.cpu_count() or 1)
    results = json.loads(args.out.read_text()) if args.out.is_file() else {"runs": []}
    results["machine"] = machine_info()
    results.setdefault("commands", []).append(" ".join(["python", *sys.argv]))
    for seed in [int(s) for s in args.seeds.split(",")]:
        for task in args.tasks.split(","):
            print(f"--- {task} seed {seed}", flush=True)
            r = run(task, seed)
            results["runs"] = [x for x in results["runs"] if (x["task"], x["seed"]) != (task, seed)] + [r]
            args.out.write_text(json.dumps(results, indent=1, default=float))
            print(table(r), f"\n  ({r['seconds']:.0f}s)", flush=True)


if __name__ == "__main__":
    main()
