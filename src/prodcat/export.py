"""Export a neural model to ONNX: a model directory that ONNX Runtime runs on CPU.

The exported directory is itself a model directory (model "onnx", see
`prodcat.models.onnx_runtime`): `Categorizer.load`, `prodcat predict`,
`prodcat evaluate`, the server and the web app take it as they take the
source. It keeps the source's field mapping, labels, thresholds, review
threshold, metrics and report; only the network changes, from PyTorch weights
to an ONNX graph (stored in `weights.safetensors` as bytes, never pickled).

    >>> from prodcat.export import export_model
    >>> export_model("models/lstm", "models/lstm-onnx")                       # doctest: +SKIP
    PosixPath('models/lstm-onnx')
    >>> export_model("models/lstm", "models/lstm-int8", quantize="int8")      # doctest: +SKIP
    PosixPath('models/lstm-int8')

Every export is checked before it is saved: the source (PyTorch) and the
exported model predict the same products, and the probabilities' largest
difference and the share of identical labels are recorded in the manifest
(`training.export.check`). An fp32 graph must match within 1e-4, or the export
fails; int8 quantization moves logits by about 0.02, so its label agreement is
reported, not enforced: below 99% identical labels the export is still saved,
with a warning. Check products are synthetic texts built from the
model's own vocabulary (or common product words), unless `check_texts` are given;
a photo model (image-cnn, image-resnet, image-pretrained) is checked on synthetic
photos of several sizes and shapes, with a missing and a broken one.

Photo models export in fp32 only: ONNX Runtime's dynamic int8 quantization turns
their convolutions into ConvInteger, which ran EfficientNet-Lite0 slower than fp32
on CPU (docs/benchmarks.md, "ONNX export of photo models and ensembles").

An ensemble exports its neural members (a text + photo ensemble's photo model,
a bow or bert member) and keeps the others (tfidf-linear), its weights or
meta-model: the exported directory is still an ensemble, and its report still
shows text alone, photo alone and combined. int8 applies to its text members.
"""

from __future__ import annotations

import copy
import io
import math
import os
import sys
import tempfile
import warnings
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from prodcat.artifacts import check_model_dir_target, check_no_interrupted_run, user_path
from prodcat.errors import ConfigError
from prodcat.models import EXPORTED_MODEL

FORMATS = ("onnx",)
QUANTIZATIONS = ("int8",)
#: ONNX opset of exported graphs: supported by onnxruntime 1.16+ and by
#: torch.onnx's TorchScript exporter for every prodcat network.
OPSET = 17
#: the opsets export takes: cnn's padding exports from 13 on (lstm's sort from 11),
#: and 20 is the last the TorchScript exporter was seen to take for every network
OPSETS = range(13, 21)
#: an fp32 graph whose probabilities differ more than this from PyTorch is a failed export
FP32_TOLERANCE = 1e-4
#: a quantized export agreeing with PyTorch on fewer check labels than this gets a warning
QUANTIZED_AGREEMENT_WARNING = 0.99
#: synthetic products the export is checked on
CHECK_PRODUCTS = 512
#: synthetic photos a photo model's export is checked on (a network of photos is slower)
CHECK_PHOTOS = 64
#: products of the batch traced into the graph (dynamic axes make any size work later)
TRACE_PRODUCTS = 8

# Common catalog words: check texts for models with no word vocabulary of their
# own (bow hashes n-grams; bert's word pieces cover any word).
PRODUCT_WORDS = (
    "men women kids unisex boys girls baby shirt tshirt top dress skirt jeans trousers shorts jacket coat "
    "sweater hoodie socks shoes sneakers boots sandals heels bag backpack wallet belt watch sunglasses "
    "cap hat scarf gloves cotton linen wool leather denim silk polyester blue black white red green grey "
    "navy pink brown beige yellow slim regular fit casual formal sports running printed striped solid "
    "phone case charger cable laptop headphones speaker kitchen knife pan pot kettle mug plate bowl "
    "towel pillow duvet sheet blanket lamp chair table sofa shelf perfume lipstick cream serum shampoo "
    "soap sunscreen ring necklace earrings bracelet pack set of 2 3 100 ml xl large small"
).split()


# --- graphs ONNX Runtime runs well -----------------------------------------------


def _padded_mean_bag(network: Any) -> Any:
    """bow's BagNetwork over a padded id matrix and mask (see onnx_runtime's "padded_bag" feed)."""
    import torch

    class PaddedMeanBag(torch.nn.Module):
        def __init__(self, bag: Any):
            super().__init__()
            self.bag = bag

        def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            bag = self.bag
            vectors = torch.nn.functional.embedding(ids, bag.embedding.weight)
            # The masked sum as a batched matrix product: ONNX Runtime runs it
            # twice as fast as a multiply and a reduce. An empty bag averages
            # to zeros, as EmbeddingBag's mean does.
            x = torch.bmm(mask.unsqueeze(1), vectors).squeeze(1) / mask.sum(dim=1, keepdim=True).clamp(min=1.0)
            if bag.hidden is not None:
                x = torch.relu(bag.hidden(x))
            return bag.output(x)

    return PaddedMeanBag(network).eval()


def _traceable(network: Any) -> Any:
    """The network, or a copy whose nn.MultiheadAttention layers trace with a dynamic sequence length.

    PyTorch's attention function turns the traced batch's sequence length into
    a constant of the ONNX graph (any other length then fails in a Reshape);
    the same attention written with reshape(-1) stays dynamic. The weights are
    the same tensors' copies, so the numbers are the same.
    """
    import copy

    import torch

    class TraceableSelfAttention(torch.nn.MultiheadAttention):
        def forward(self, query, key, value, key_padding_mask=None, need_weights=False, attn_mask=None,
                    average_attn_weights=True, is_causal=False):
            x = query if self.batch_first else query.transpose(0, 1)
            heads, width = self.num_heads, self.embed_dim
            q, k, v = torch.nn.functional.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
            q, k, v = (t.reshape(x.shape[0], -1, heads, width // heads).transpose(1, 2) for t in (q, k, v))
            scores = q @ k.transpose(-1, -2) / math.sqrt(width // heads)
            if attn_mask is not None:
                scores = scores + attn_mask if attn_mask.is_floating_point() else scores.masked_fill(attn_mask, float("-inf"))
            if key_padding_mask is not None:
                scores = scores.masked_fill(key_padding_mask[:, None, None, :].to(torch.bool), float("-inf"))
            context = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(x.shape[0], -1, width)
            out = self.out_proj(context)
            return (out if self.batch_first else out.transpose(0, 1)), None

    def plain(module: Any) -> bool:
        return type(module) is torch.nn.MultiheadAttention and module._qkv_same_embed_dim and module.in_proj_bias is not None

    if not any(plain(m) for m in network.modules()):
        return network
    network = copy.deepcopy(network)
    for module in network.modules():
        if plain(module):
            module.__class__ = TraceableSelfAttention
    return network.eval()


#: source model -> (input layout of `prodcat.models.onnx_runtime.FEEDS`, the
#: module to export); models not listed export their network as it is.
EXPORT_FORMS = {"bow": ("padded_bag", _padded_mean_bag)}


def _export_form(source: Any) -> tuple[str, Any]:
    """(feed name, network -> module to export) of a fitted model."""
    from prodcat.models.onnx_runtime import IMAGE_FEED

    if getattr(source, "reads_images", False):
        # The inner network alone: which products have a usable photo is known only after
        # decoding, so the fallback for the others stays outside the graph (onnx_runtime).
        return IMAGE_FEED, lambda network: network.net
    return EXPORT_FORMS.get(source.name, ("collate", lambda network: network))


@contextmanager
def _captured_stderr() -> Iterator[None]:
    """Hold back what C++ code writes to stderr (torch.onnx's shape-inference
    notes on packed LSTMs); show it only if the block fails."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def onnx_graph(source: Any, examples: list[dict[str, Any]], *, opset: int = OPSET) -> tuple[bytes, str]:
    """Trace a fitted TorchModel's network into a serialized ONNX graph.

    examples: a few encoded products (`source.encode(...)`) to trace with;
    every axis of every input is dynamic. Returns (graph bytes, feed name).
    """
    import torch

    from prodcat.models.onnx_runtime import FEEDS

    from prodcat.models.onnx_runtime import IMAGE_FEED

    feed_name, wrap = _export_form(source)
    module = wrap(_traceable(source.network)).eval()
    inputs = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in FEEDS[feed_name](source, examples).items()}
    # A photo batch's channels and sides are fixed by the model (image_size); only texts vary in length.
    dynamic = 1 if feed_name == IMAGE_FEED else 2
    axes = {name: {d: ("batch", "sequence")[d] for d in range(min(t.dim(), dynamic))} for name, t in inputs.items()}
    buffer = io.BytesIO()
    # Not under no_grad: PyTorch would take its fused inference path for
    # Transformer layers, which has no ONNX form.
    with warnings.catch_warnings(), _captured_stderr():
        # TracerWarnings about Python-side shape checks: those shapes stay dynamic
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, args=(), kwargs=inputs, f=buffer,
            input_names=list(inputs), output_names=["logits"],
            dynamic_axes={**axes, "logits": {0: "batch"}},
            opset_version=opset, dynamo=False,
        )
    return buffer.getvalue(), feed_name


def quantize_int8(graph: bytes) -> bytes:
    """Dynamic int8 quantization of a graph's weights (onnxruntime.quantization)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="prodcat-quantize-") as tmp:
        source, target = Path(tmp) / "model.onnx", Path(tmp) / "model.int8.onnx"
        source.write_bytes(graph)
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # the quantizer logs advice about pre-processing to the root logger
        try:
            quantize_dynamic(source, target, weight_type=QuantType.QInt8)
        finally:
            root.setLevel(level)
        return target.read_bytes()


def synthetic_texts(source: Any, n: int = CHECK_PRODUCTS, seed: int = 0) -> list[str]:
    """Texts of 1 to 16 words drawn from the model's vocabulary (or PRODUCT_WORDS),
    plus edge cases a graph must get right: an empty text, one of unknown
    words, and one longer than any model's max_length (it gets truncated)."""
    vocabulary = getattr(source, "vocabulary", None)
    words = [w for w in getattr(vocabulary, "tokens", [])[2:2002] if w] or list(PRODUCT_WORDS)
    rng = np.random.default_rng(seed)
    texts = ["", "qzxv wkpj", " ".join(words[i] for i in rng.integers(0, len(words), 600))]
    while len(texts) < n:
        size = int(rng.integers(1, 17))
        texts.append(" ".join(words[i] for i in rng.integers(0, len(words), size)))
    return texts


def synthetic_photos(n: int = CHECK_PHOTOS, seed: int = 0) -> list[bytes | None]:
    """Encoded photos for checking a photo model's export: gradients, blocks and noise
    at several sizes and aspect ratios (so resizing and cropping are exercised), in
    RGB, grey and RGBA, plus a missing photo and bytes that are not an image (both
    take the model's no-photo fallback)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    photos: list[bytes | None] = [None, b"not an image"]
    while len(photos) < n:
        height, width = (int(v) for v in rng.integers(20, 300, size=2))
        ramp = np.linspace(0, 1, width)[None, :, None] * rng.uniform(0, 255, size=(1, 1, 3))
        pixels = np.broadcast_to(ramp, (height, width, 3)) + rng.uniform(0, 255, size=(1, 1, 3)) * 0.5
        pixels = pixels.copy()
        top, left = int(rng.integers(0, height)), int(rng.integers(0, width))
        pixels[top : top + height // 3, left : left + width // 3] = rng.uniform(0, 255, size=3)
        pixels += rng.normal(scale=rng.uniform(0, 40), size=pixels.shape)
        image = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
        mode = ("RGB", "L", "RGBA")[len(photos) % 3]
        buffer = io.BytesIO()
        image.convert(mode).save(buffer, format="PNG")
        photos.append(buffer.getvalue())
    return photos


def agreement(
    reference: np.ndarray, exported: np.ndarray, label_space: Any, thresholds: np.ndarray | None
) -> dict[str, Any]:
    """How close two models' probabilities and decisions are on the same products."""
    same = label_space.decide(reference, thresholds) == label_space.decide(exported, thresholds)
    if same.ndim > 1:
        same = same.all(axis=1)
    return {
        "products": int(len(reference)),
        "label_agreement": round(float(same.mean()) if len(same) else 1.0, 6),
        "max_abs_probability_difference": float(np.abs(reference - exported).max()) if len(reference) else 0.0,
    }


#: the models export is for, as the refusals name them
EXPORTABLE = "bow, lstm, cnn, transformer, bert, image-cnn, image-resnet and image-pretrained"


def _a_model(name: str) -> str:
    return f"{'an' if name[:1] in 'aeiou' else 'a'} {name} model"


def _has_network(model: Any) -> bool:
    """Whether a fitted model is a PyTorch network export can trace (not tfidf-linear, not an export)."""
    return hasattr(model, "network") and hasattr(model, "load_preprocessor") and model.name != EXPORTED_MODEL


def _refusal(name: str, source: Any) -> str | None:
    """Why a fitted single model cannot be exported (e.g. "a tfidf-linear model, which has
    no neural network to export"), or None when it can."""
    if not _has_network(source):
        # tfidf-linear: sparse features and one matrix product; ONNX would add nothing
        return f"{_a_model(name)}, which has no neural network to export: it is already fast on CPU"
    return None


def export_model(
    model_dir: str | Path,
    out: str | Path,
    *,
    format: str = "onnx",
    quantize: str | None = None,
    opset: int = OPSET,
    check_texts: Sequence[str] | None = None,
    quiet: bool = False,
) -> Path:
    """Export the neural model in `model_dir` (a text or a photo model, or an ensemble's neural
    members) to an ONNX model directory `out`.

    quantize: None (fp32, same probabilities within 1e-4) or "int8" (dynamic
    int8 weights: smaller and faster, labels may change for a few products;
    text models and an ensemble's text members only).
    check_texts: products to compare PyTorch and ONNX on (default: synthetic;
    a photo model is checked on synthetic photos).
    Refuses a tfidf-linear model (already fast on CPU, no network), an ensemble
    without a neural member, an already exported model, `out` equal to, inside or holding `model_dir`, and an `out` folder
    that is not a model directory. Returns `out`.
    """
    from prodcat.catalog.products import Products
    from prodcat.categorizer import Categorizer
    from prodcat.console import Reporter
    from prodcat.models.onnx_runtime import OnnxModel

    model_dir, out = user_path(model_dir, "the model directory"), user_path(out, "--out")
    if isinstance(check_texts, (str, bytes)):
        # list() would check the export on the text's letters, one product each
        raise ConfigError("check_texts must be a list of product texts, not one text: pass [text]")
    if check_texts is not None:
        check_texts = list(check_texts)
        if not check_texts or not all(isinstance(text, str) for text in check_texts):
            # none: an export said to be checked on no product; None or a number failed inside tracing
            raise ConfigError(f"check_texts must be a non-empty list of product texts, got {check_texts[:3]!r}")
    if isinstance(opset, bool) or not isinstance(opset, int) or opset not in OPSETS:
        # "17" failed inside torch with a TypeError; 5 exported a graph onnxruntime cannot run
        raise ConfigError(f"opset must be a whole number from {OPSETS.start} to {OPSETS.stop - 1}, got {opset!r}")
    if format not in FORMATS:
        raise ConfigError(f"unknown export format {format!r}; formats: {', '.join(FORMATS)}")
    if quantize in ("none", ""):
        quantize = None
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ConfigError(f"unknown quantization {quantize!r}; use int8 or leave --quantize out")
    source_dir, target = model_dir.resolve(), out.resolve()
    if target == source_dir or source_dir in target.parents or target in source_dir.parents:
        # Saving replaces --out whole, and retraining the source replaces it whole:
        # either would silently delete the other model.
        raise ConfigError(
            f"--out must be another directory than the model being exported ({model_dir}), "
            f"neither inside it nor holding it; got {out}"
        )
    check_model_dir_target(out)  # before the tracing and the check, which saving would otherwise waste
    check_no_interrupted_run(out)

    say = Reporter(quiet)
    clf = Categorizer.load(model_dir, quiet=quiet)
    source = clf._fitted
    if clf.model == EXPORTED_MODEL:
        raise ConfigError(f"{model_dir} is already an exported ONNX model; export its source model directory instead")
    ensemble = clf.model == "ensemble"
    if ensemble:
        keys = list(source.member_keys)
        networks = [i for i, member in enumerate(source.members_) if _has_network(member)]
        if not networks:
            done = any(member.name == EXPORTED_MODEL for member in source.members_)
            raise ConfigError(
                f"{model_dir} holds {_a_model(clf.model)} ({', '.join(keys)}), "
                + ("whose neural members are already exported; export its source model directory instead" if done
                   else f"none of whose members has a neural network to export; ONNX export is for {EXPORTABLE}")
            )
    else:
        refusal = _refusal(clf.model, source)
        if refusal:
            raise ConfigError(f"{model_dir} holds {refusal}; ONNX export is for the neural models {EXPORTABLE}")
        keys, networks = [clf.model], [0]
    members = list(source.members_) if ensemble else [source]
    to_export, exported_keys = [members[i] for i in networks], [keys[i] for i in networks]
    # Photo networks export in fp32: dynamic int8 convolutions are slower than fp32 on CPU.
    quantized = [quantize if quantize is not None and not m.reads_images else None for m in to_export]
    if quantize is not None and not any(quantized):
        what = (f"{_a_model(clf.model)} whose neural members ({', '.join(exported_keys)}) read photos"
                if ensemble else f"{_a_model(clf.model)}, which reads photos")
        raise ConfigError(
            f"{model_dir} holds {what}: export it without --quantize. "
            f"ONNX Runtime's {quantize} convolutions run slower than fp32 on CPU"
        )
    photos, text = bool(source.reads_images), bool(source.reads_text)
    if not text and check_texts is not None:
        raise ConfigError(f"{model_dir} holds {_a_model(clf.model)}, which reads photos, not texts: "
                          "it is checked on synthetic photos; leave check_texts out")

    # Check products: what the model reads. A model of texts and photos gets both on
    # each product (and, among the photos, a missing and a broken one).
    images = synthetic_photos() if photos else None
    if check_texts is not None:
        texts = list(check_texts)
    elif text:
        vocabulary_of = next((m for m in to_export if getattr(m, "vocabulary", None) is not None), to_export[0])
        texts = synthetic_texts(vocabulary_of, n=len(images) if images else CHECK_PRODUCTS)
    else:
        texts = [""] * len(images)
    if images is not None and len(images) != len(texts):
        images = (images * (len(texts) // len(images) + 1))[: len(texts)]
    products = Products(texts=[str(t) for t in texts], images=images)
    if check_texts is not None or not photos:
        what = f"{len(texts):,} products"
    else:
        what = f"{len(texts):,} synthetic {'products with photos' if text else 'photos'}"

    # Traced with real photos (the check's first two are a missing and a broken one) or texts
    # of several lengths, so the graph sees real pixels or real padding.
    traced_photos = (Products(texts=[""] * TRACE_PRODUCTS, images=images[2 : 2 + TRACE_PRODUCTS])
                     if images is not None else None)
    traced_texts = Products.from_texts(_trace_texts(texts))
    exported_members = []
    for member, key, member_quantize in zip(to_export, exported_keys, quantized):
        traced = traced_photos if member.reads_images else traced_texts
        with say.step(f"exporting {key} to ONNX (opset {opset})"):
            graph, feed = onnx_graph(member, member.encode(traced), opset=opset)
        if member_quantize == "int8":
            with say.step(f"quantizing {key}'s weights to int8"):
                graph = quantize_int8(graph)
        exported_member = OnnxModel.build(member, graph, feed=feed, quantize=member_quantize, opset=opset)
        exported_member.export_info = {"source_model": member.name, "quantize": member_quantize,
                                       "graph_bytes": len(graph)}
        exported_members.append(exported_member)
    if ensemble and quantize is not None and any(q is None for q in quantized):
        in_fp32 = [key for key, q in zip(exported_keys, quantized) if q is None]
        say.note(f"{', '.join(in_fp32)} read{'s' if len(in_fp32) == 1 else ''} photos: "
                 f"exported in fp32 ({quantize} convolutions are slower on CPU)")

    if ensemble:
        exported = copy.copy(source)
        exported.members_ = list(source.members_)
        for i, member in zip(networks, exported_members):
            exported.members_[i] = member
    else:
        exported = exported_members[0]
    with say.step(f"checking the export against PyTorch on {what}"):
        reference, reference_parts = source.predict_proba_with_components(products)
        got, got_parts = exported.predict_proba_with_components(products)
        check = agreement(reference, got, clf.label_space_, clf.thresholds_)
    # Each member on its own: one the ensemble weighs little would pass the ensemble's check broken.
    for key, member in zip(exported_keys if ensemble else [], exported_members):
        difference = float(np.abs(reference_parts[key] - got_parts[key]).max()) if len(products) else 0.0
        member.export_info["max_abs_probability_difference"] = difference
        if member.export_info["quantize"] is None and difference > FP32_TOLERANCE:
            raise RuntimeError(
                f"the ONNX graph of member {key} does not reproduce PyTorch: probabilities differ by up to "
                f"{difference:.2g} (tolerance {FP32_TOLERANCE}); this is a bug in prodcat's exporter"
            )
    if photos:
        check["photos"] = "synthetic"
    if text:
        check["texts"] = "given" if check_texts is not None else "synthetic"
    if not any(quantized) and check["max_abs_probability_difference"] > FP32_TOLERANCE:
        raise RuntimeError(
            f"the ONNX graph of {clf.model} does not reproduce PyTorch: probabilities differ by up to "
            f"{check['max_abs_probability_difference']:.2g} (tolerance {FP32_TOLERANCE}); this is a bug in prodcat's exporter"
        )
    say.note(
        f"ONNX vs PyTorch: {check['label_agreement']:.2%} identical labels, "
        f"largest probability difference {check['max_abs_probability_difference']:.2g}"
    )
    if any(quantized) and check["label_agreement"] < QUANTIZED_AGREEMENT_WARNING:
        # Saved anyway: the user asked for int8 and may accept the trade; a small
        # network (a tiny BERT) can lose a sixth of its labels, which must not pass as a note.
        say.warn(
            f"{quantize} quantization changed the label of {1 - check['label_agreement']:.2%} of the "
            f"{check['products']:,} check products (largest probability difference "
            f"{check['max_abs_probability_difference']:.2g}); export without --quantize to keep PyTorch's labels"
        )

    export_info = {
        "format": format,
        "source_dir": str(model_dir),
        "source_model": clf.model,
        "opset": opset,
        "quantize": quantize if any(quantized) else None,
        "graph_bytes": sum(m.export_info["graph_bytes"] for m in exported_members),
        "check": check,
        "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "libraries": _export_libraries(),
    }
    if ensemble:
        # The ensemble stays an ensemble (its settings, weights or meta-model); its
        # neural members now run their graphs.
        export_info["members"] = {keys[i]: m.export_info for i, m in zip(networks, exported_members)}
        clf._fitted = exported
    else:
        exported.export_info = export_info
        clf._fitted, clf.model, clf.params = exported, EXPORTED_MODEL, exported.get_params()
    # Training info stays the source's; the export is recorded beside it, so the
    # manifest tells where the model came from and how far it was checked.
    clf.training_ = {**getattr(clf, "training_", {}), "export": export_info}
    clf.save(out)  # with the source's test report: the export is that model
    return out


def _trace_texts(texts: list[str]) -> list[str]:
    """A few texts of different lengths, so the traced batch has real padding."""
    by_length = sorted((t for t in texts if t.strip()), key=len)
    if not by_length:
        return ["product"]
    picks = np.linspace(0, len(by_length) - 1, num=min(TRACE_PRODUCTS, len(by_length))).round().astype(int)
    return [by_length[i] for i in picks]


def _export_libraries() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("torch", "onnx", "onnxruntime"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            pass
    return versions
