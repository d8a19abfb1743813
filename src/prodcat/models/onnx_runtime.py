"""`onnx`: a neural model exported by `prodcat export`, run with ONNX Runtime.

An exported model directory is an ordinary model directory whose model is
"onnx". It keeps the source model's preprocessing (vocabulary or tokenizer,
as the source saved it, or a photo model's image size and normalization) and
calibration, and replaces the PyTorch network with its ONNX graph, stored as
one uint8 array in `weights.safetensors`: data, never code. Prediction is the
source model's encode -> collate, then ONNX Runtime instead of PyTorch, then
the same calibration, so the labels are the source model's.

An exported photo model (image-cnn, image-resnet, image-pretrained) runs only
the products with a usable photo through the graph; the others get the
source's learned fallback row (`missing_logits`, saved beside the graph), and
`predict_proba_masked` marks them, as the source does.

    >>> from prodcat import Categorizer
    >>> clf = Categorizer.load("models/lstm-onnx")                  # doctest: +SKIP
    >>> clf.model, clf._fitted.params["source_model"]               # doctest: +SKIP
    ('onnx', 'lstm')
    >>> clf.predict(["slim fit oxford shirt"])                      # doctest: +SKIP
    ['Shirts']

Params (written by `prodcat.export.export_model`, not chosen by hand):
source_model (the registry name of the exported model), source_params (its
settings), quantize (None or "int8") and opset (the ONNX opset of the graph).

The model cannot be trained: `fit` raises ConfigError (train the source model
and export it again). It needs the same libraries as its source model for
preprocessing (torch tensors come out of `collate`) plus onnxruntime.
"""

from __future__ import annotations

import os
from typing import Any, Callable, ClassVar, Iterator

import numpy as np

from prodcat.calibration import apply_calibration, checked_calibration
from prodcat.catalog.products import Products
from prodcat.errors import ConfigError, ModelDirError
from prodcat.labels import LabelSpace
from prodcat.models import EXPORTED_MODEL, get_model_class, register
from prodcat.models.base import CategorizerModel, FitContext

STATE_VERSION = 1
#: name of the array holding the serialized ONNX graph
GRAPH_ARRAY = "onnx_graph"
QUANTIZATIONS = (None, "int8")


def _feed_from_collate(source: Any, examples: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """The graph's inputs are exactly the source's `collate` output."""
    return {name: tensor.numpy() for name, tensor in source.collate(examples).items()}


def _image_batch(source: Any, examples: list[dict[str, Any]]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A photo model's graph input (the decoded, normalized pixels of the products with a
    usable photo) and which products those are."""
    batch = source.collate(examples)
    present = batch["present"].numpy().astype(bool)
    return {"pixels": np.ascontiguousarray(batch["pixels"].numpy()[present])}, present


def _feed_padded_bag(source: Any, examples: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Bags of embedding rows as a padded (batch, longest) id matrix and a 0/1 mask.

    PyTorch's EmbeddingBag becomes an ONNX Loop over bags, which ONNX Runtime
    runs one bag at a time; a gather over a padded matrix followed by a masked
    mean gives the same numbers and runs as one vectorized op.
    """
    lengths = np.fromiter((len(e["ids"]) for e in examples), dtype=np.int64, count=len(examples))
    width = max(1, int(lengths.max()) if len(lengths) else 1)
    ids = np.zeros((len(examples), width), dtype=np.int64)
    mask = np.zeros((len(examples), width), dtype=np.float32)
    if lengths.sum():
        rows = np.repeat(np.arange(len(examples)), lengths)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        cols = np.arange(int(lengths.sum())) - np.repeat(starts, lengths)
        ids[rows, cols] = np.concatenate([np.asarray(e["ids"], dtype=np.int64) for e in examples])
        mask[rows, cols] = 1.0
    return {"ids": ids, "mask": mask}


#: How a batch of encoded examples becomes the graph's inputs, by the name
#: saved with the model (`prodcat.export` builds the matching graph).
FEEDS: dict[str, Callable[[Any, list[dict[str, Any]]], dict[str, np.ndarray]]] = {
    "collate": _feed_from_collate,
    "padded_bag": _feed_padded_bag,
    "image": lambda source, examples: _image_batch(source, examples)[0],
}
#: the feed of photo models: their graph is the source's inner network, without
#: the fallback for products that have no usable photo (see `OnnxModel._image_logits`)
IMAGE_FEED = "image"
#: name of the array holding a photo model's fallback logits
MISSING_ARRAY = "missing_logits"
#: Most products per run for a feed: a padded bag materializes (batch,
#: longest, dim) floats, which should stay in the CPU cache (64 was fastest
#: on fashion titles, ~120 n-grams each, against 256 and 1024).
BATCH_CAPS = {"padded_bag": 64}


def _shape_text(dims: list[Any], batch: str) -> str:
    """An input's shape as a message shows it, its first (batch) axis named `batch`."""
    return "(" + ", ".join([batch, *(str(d) for d in dims[1:])]) + ")"


def _graph_tensors(graph: Any) -> Iterator[Any]:
    """Every TensorProto of a GraphProto: initializers, and those in node attributes and subgraphs."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    for node in graph.node:
        yield from _attribute_tensors(node.attribute)


def _attribute_tensors(attributes: Any) -> Iterator[Any]:
    for attribute in attributes:
        if attribute.HasField("t"):
            yield attribute.t
        yield from attribute.tensors
        for sparse in [*([attribute.sparse_tensor] if attribute.HasField("sparse_tensor") else []),
                       *attribute.sparse_tensors]:
            yield from (sparse.values, sparse.indices)
        for subgraph in [*([attribute.g] if attribute.HasField("g") else []), *attribute.graphs]:
            yield from _graph_tensors(subgraph)


def check_no_external_data(graph: bytes) -> None:
    """A ModelDirError unless every tensor of the serialized graph holds its own data.

    A tensor may name an outside file for its data ("../../etc/passwd"), and
    ONNX Runtime before 1.24 read such a file, wherever it was, into the
    weights of a graph loaded from bytes: its contents could then come back in
    the probabilities. An exported graph never has one (`prodcat.export` keeps
    it whole in `weights.safetensors`), so one that does is refused unread.
    """
    from onnx import ModelProto, TensorProto
    from google.protobuf.message import DecodeError

    model = ModelProto()
    try:
        model.ParseFromString(graph)
    except DecodeError as exc:
        raise ModelDirError(f"onnx: the saved ONNX graph cannot be loaded ({exc})") from None
    tensors = [*_graph_tensors(model.graph), *(t for f in model.functions for n in f.node
                                               for t in _attribute_tensors(n.attribute))]
    for tensor in tensors:
        if tensor.data_location == TensorProto.EXTERNAL or len(tensor.external_data):
            where = next((e.value for e in tensor.external_data if e.key == "location"), "")
            raise ModelDirError(f"onnx: the saved ONNX graph takes tensor {tensor.name!r} from an outside file "
                                f"{where!r}; an exported graph holds all its weights, so this one is not loaded")


def default_threads() -> int:
    """Every core this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def inference_session(graph: bytes, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session of a serialized graph, its own warnings silenced."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # never more than the cores: a saved num_threads of 10**6 would start as many threads
    options.intra_op_num_threads = min(threads or default_threads(), default_threads())
    # 3 = errors only: ORT warns about graph rewrites it handles itself.
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


@register(EXPORTED_MODEL)
class OnnxModel(CategorizerModel):
    """A neural model's preprocessing and calibration with its network run by ONNX Runtime.

    Built by `prodcat.export.export_model` (or `prodcat export`); see the
    module docstring.

        >>> OnnxModel().get_params()
        {}
    """

    # An exported model predicts every format its source learned, but learns none.
    label_formats: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.source: Any = None
        self.session: Any = None
        self.feed_name: str = "collate"
        self.calibration: dict[str, Any] = {}
        self.graph: bytes = b""
        self.source_state: dict[str, Any] = {}
        self.export_info: dict[str, Any] = {}
        #: a photo model's logits for products without a usable photo (None: a text model)
        self.missing_logits: np.ndarray | None = None
        #: ImageStats of the last prediction of a photo model
        self.image_stats_: Any = None

    def fit(
        self,
        products: Products,
        y: np.ndarray,
        label_space: LabelSpace,
        valid: tuple[Products, np.ndarray] | None = None,
        *,
        seed: int = 0,
        class_weight: str | None = None,
        context: FitContext | None = None,
    ) -> OnnxModel:
        raise ConfigError(
            "an exported onnx model cannot be trained: train its source model "
            f"({self.params.get('source_model') or 'bow, lstm, cnn, transformer or bert'}) and export it again"
        )

    @classmethod
    def build(
        cls,
        source: Any,
        graph: bytes,
        *,
        feed: str,
        quantize: str | None,
        opset: int,
        export_info: dict[str, Any] | None = None,
    ) -> OnnxModel:
        """An OnnxModel from a fitted TorchModel and its exported graph (used by `prodcat.export`)."""
        state, _ = source.get_state()
        model = cls(source_model=source.name, source_params=source.get_params(), quantize=quantize, opset=opset)
        source_state = {k: state[k] for k in ("preprocessor", "network_config", "n_classes", "calibration")}
        missing = None
        if feed == IMAGE_FEED:
            missing = source.network.missing_logits.detach().cpu().numpy().astype(np.float32)
        model._attach(source, source_state, graph, feed, source.label_space, export_info or {}, missing)
        return model

    def _attach(
        self, source: Any, source_state: dict[str, Any], graph: bytes, feed: str, label_space: LabelSpace,
        export_info: dict[str, Any], missing_logits: np.ndarray | None = None,
    ) -> None:
        if not isinstance(feed, str) or feed not in FEEDS:  # a list would fail the lookup as unhashable
            raise ModelDirError(f"onnx: unknown input layout {feed!r}; this model needs another prodcat")
        reads_images = bool(getattr(source, "reads_images", False))
        if reads_images != (feed == IMAGE_FEED):
            raise ModelDirError(
                f"onnx: input layout {feed!r} does not fit the source model {source.name or type(source).__name__!r}"
            )
        if reads_images:
            if missing_logits is None or missing_logits.shape != (label_space.n_classes,):
                shape = None if missing_logits is None else missing_logits.shape
                raise ModelDirError(
                    f"onnx: the fallback logits of products without a photo must be {label_space.n_classes} "
                    f"numbers, one per class; got shape {shape}"
                )
            if missing_logits.dtype.kind != "f":
                raise ModelDirError(
                    "onnx: the fallback logits of products without a photo must be floating-point numbers, "
                    f"got {missing_logits.dtype}"
                )
            if not np.isfinite(missing_logits).all():
                # every product without a usable photo would get a NaN confidence
                bad = missing_logits[~np.isfinite(missing_logits)][0]
                raise ModelDirError(f"onnx: the fallback logits of products without a photo must be finite, got {bad}")
            self.missing_logits = np.asarray(missing_logits, dtype=np.float32)
        # What the edges ask of a model (which fields to read, whether a photo can be
        # left out) is the source's: an exported photo model reads photos, not texts.
        self.reads_images, self.reads_text = reads_images, bool(getattr(source, "reads_text", True))
        self.source, self.source_state, self.graph, self.feed_name = source, source_state, graph, feed
        self.calibration = dict(source_state["calibration"])
        self.label_space = label_space
        self.export_info = dict(export_info)
        threads = source.settings.get("num_threads") if hasattr(source, "settings") else None
        self.session = inference_session(graph, threads)
        self._inputs = [i.name for i in self.session.get_inputs()]
        self._check_graph_fits(feed, label_space)

    def _check_graph_fits(self, feed: str, label_space: LabelSpace) -> None:
        """Refuse a graph whose inputs the feed does not give (or not in the graph's shape) or whose
        scores are not one per class.

        The graph is stored as bytes: one of another model (a hand-edited
        directory) would otherwise load and fail inside ONNX Runtime on the
        first product.
        """
        given = FEEDS[feed](self.source, self.source.encode(Products.from_texts(["product"])))
        for name in self._inputs:
            if name not in given:
                raise ModelDirError(f"onnx: the graph takes {name!r}, which input layout {feed!r} lacks")
        for graph_input in self.session.get_inputs():
            name, wanted = graph_input.name, list(graph_input.shape)
            # A photo graph's sides are fixed at export: another image_size (a hand edit) would
            # load and fail inside ONNX Runtime on the first photo.
            got = list(given[name].shape)
            if len(wanted) != len(got) or any(isinstance(w, int) and w != g for w, g in zip(wanted[1:], got[1:])):
                raise ModelDirError(
                    f"onnx: the graph takes {name!r} of shape {_shape_text(wanted, 'batch')}, "
                    f"but input layout {feed!r} gives {_shape_text(got, 'n')}"
                )
        outputs = {o.name: o.shape for o in self.session.get_outputs()}
        if "logits" not in outputs:
            raise ModelDirError(f"onnx: the graph has no 'logits' output, only {', '.join(map(repr, outputs))}")
        width = outputs["logits"][-1] if outputs["logits"] else None
        if isinstance(width, int) and width != label_space.n_classes:
            raise ModelDirError(
                f"onnx: the graph gives {width} scores per product, but the labels list {label_space.n_classes} classes"
            )

    # ------------------------------------------------------------- predict
    def decision_function(self, products: Products) -> np.ndarray:
        """Uncalibrated logits (n, n_classes) float32 in input order, from ONNX Runtime.

        Products run sorted by length (less padding) in batches of the source
        model's `eval_batch_size`.
        """
        self._check_loaded()
        if self.feed_name == IMAGE_FEED:
            return self._image_logits(products)[0]
        n_classes = self.label_space.n_classes
        examples = self.source.encode(products)
        out = np.empty((len(examples), n_classes), dtype=np.float32)
        if not examples:
            return out
        lengths = np.fromiter((self.source.example_length(e) for e in examples), dtype=np.int64, count=len(examples))
        order = np.argsort(lengths, kind="stable")
        size = min(int(self.source.settings.get("eval_batch_size", 256)), BATCH_CAPS.get(self.feed_name, 1 << 30))
        feed = FEEDS[self.feed_name]
        for start in range(0, len(order), size):
            idx = order[start : start + size]
            inputs = feed(self.source, [examples[i] for i in idx])
            (logits,) = self.session.run(["logits"], {k: v for k, v in inputs.items() if k in self._inputs})
            out[idx] = logits
        return out

    def _check_loaded(self) -> None:
        if self.session is None or self.label_space is None:
            raise RuntimeError("OnnxModel is not loaded; use Categorizer.load on an exported model directory")

    def _image_logits(self, products: Products) -> tuple[np.ndarray, np.ndarray]:
        """A photo model's logits and which products had a usable photo; counts how reading went.

        Photos are decoded a batch of `eval_batch_size` at a time (as the source does), so
        a catalog's photos are never all held decoded.
        """
        from prodcat.models.image_base import _mask_of, _stats_of

        examples = self.source.encode(products)
        out = np.empty((len(examples), self.label_space.n_classes), dtype=np.float32)
        size = int(self.source.settings.get("eval_batch_size", 256))
        for start in range(0, len(examples), size):
            inputs, present = _image_batch(self.source, examples[start : start + size])
            rows = np.arange(start, start + len(present))
            out[rows[~present]] = self.missing_logits
            if present.any():
                (out[rows[present]],) = self.session.run(["logits"], inputs)
        self.image_stats_ = _stats_of(examples)
        return out, _mask_of(examples)

    def predict_proba(self, products: Products) -> np.ndarray:
        """Calibrated probabilities (n, n_classes) float32, as the source model computes them."""
        logits = self.decision_function(products)
        return apply_calibration(logits, self.calibration, self.label_space.is_multi)

    def predict_proba_masked(self, products: Products) -> tuple[np.ndarray, np.ndarray | None]:
        """As the source model: a photo model marks False the products without a usable photo."""
        if self.feed_name != IMAGE_FEED:
            return self.predict_proba(products), None
        self._check_loaded()
        logits, mask = self._image_logits(products)
        return apply_calibration(logits, self.calibration, self.label_space.is_multi), mask

    def image_stats(self) -> Any:
        """How reading photos went in the last prediction (None: an exported text model)."""
        return self.image_stats_ if self.feed_name == IMAGE_FEED else None

    # --------------------------------------------------------- persistence
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        if self.session is None:
            raise RuntimeError("OnnxModel is not loaded; nothing to save")
        state = {
            "version": STATE_VERSION,
            "feed": self.feed_name,
            "source": self.source_state,
            "export": self.export_info,
        }
        arrays = {GRAPH_ARRAY: np.frombuffer(self.graph, dtype=np.uint8)}
        if self.missing_logits is not None:
            arrays[MISSING_ARRAY] = self.missing_logits
        return state, arrays

    @classmethod
    def from_state(
        cls, params: dict[str, Any], state: dict[str, Any], arrays: dict[str, np.ndarray], label_space: LabelSpace
    ) -> OnnxModel:
        model = cls(**params)
        try:
            if state.get("version") != STATE_VERSION:
                raise ModelDirError(f"onnx: state version {state.get('version')!r} is not {STATE_VERSION}")
            if params.get("quantize") not in QUANTIZATIONS:
                raise ModelDirError(f"onnx: unknown quantization {params.get('quantize')!r}")
            source_state = dict(state["source"])
            if int(source_state["n_classes"]) != label_space.n_classes:
                raise ModelDirError(
                    f"onnx: the graph has {source_state['n_classes']} outputs but the labels list "
                    f"{label_space.n_classes} classes"
                )
            source_cls = get_model_class(params["source_model"])
            if not hasattr(source_cls, "load_preprocessor"):
                raise ModelDirError(f"onnx: {params['source_model']!r} is not a neural model that can be exported")
            # The source's preprocessing without its network: the graph replaces it.
            source = source_cls(**params["source_params"])
            source.label_space, source.n_classes = label_space, label_space.n_classes
            source.network_config_ = dict(source_state.get("network_config") or {})
            source_state["calibration"] = checked_calibration(source_state["calibration"], label_space.is_multi)
            source.calibration = dict(source_state["calibration"])
            source.load_preprocessor(source_state["preprocessor"])
            graph = np.asarray(arrays[GRAPH_ARRAY], dtype=np.uint8).tobytes()
            check_no_external_data(graph)
            feed = state.get("feed", "collate")
            missing = np.asarray(arrays[MISSING_ARRAY]) if feed == IMAGE_FEED else None
        except KeyError as exc:
            raise ModelDirError(f"onnx: saved model lacks {exc.args[0]!r}") from None
        except ConfigError as exc:
            raise ModelDirError(f"onnx: the source model cannot be rebuilt ({exc})") from None
        try:
            model._attach(source, source_state, graph, feed, label_space, state.get("export") or {}, missing)
        except ModelDirError:
            raise
        except Exception as exc:  # onnxruntime raises its own exception types for a damaged graph
            raise ModelDirError(f"onnx: the saved ONNX graph cannot be loaded ({str(exc).splitlines()[0]})") from None
        return model
