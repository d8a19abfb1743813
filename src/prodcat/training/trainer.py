"""The one training loop every PyTorch model shares.

Mini-batches with dynamic padding and length bucketing, AdamW (SparseAdam for
embeddings built with sparse=True), linear warm-up then linear or cosine
decay, gradient clipping, early stopping on validation macro-F1 that keeps
the best weights, a seeded and resumable batch order, mixed precision on a
GPU, a progress bar, TensorBoard, and checkpoints without pickle.

    >>> import numpy as np, torch
    >>> class Net(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.linear = torch.nn.Linear(2, 2)
    ...     def forward(self, x):
    ...         return self.linear(x)
    >>> def collate(examples):
    ...     return {"x": torch.tensor(np.array([e["x"] for e in examples]), dtype=torch.float32)}
    >>> points = np.random.default_rng(0).normal(size=(200, 2))
    >>> y = (points[:, 0] > 0).astype(np.int64)
    >>> data = EncodedSplit([{"x": p} for p in points], y, np.ones(200, np.int64))
    >>> net = Net()
    >>> result = Trainer(TrainingSettings(epochs=20, lr=0.05), quiet=True).fit(
    ...     net, collate, data, data, label_format="single", n_classes=2)
    >>> result.best_metric > 0.95
    True

Determinism: the batch order of epoch e is drawn from (seed, e) alone, and a
checkpoint stores the torch RNG state, so an interrupted run resumed from its
last checkpoint replays exactly the steps an uninterrupted run takes.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

import numpy as np
import torch

from prodcat.console import Reporter, watchers
from prodcat.errors import ConfigError
from prodcat.training.callbacks import Callback, ProgressBar, TensorBoardLogger
from prodcat.training.checkpoints import (
    clear_checkpoints,
    load_checkpoint,
    optimizer_from_plain,
    optimizer_to_plain,
    restore_rng,
    rng_tensors,
    save_checkpoint,
    unreadable,
)
from prodcat.training.losses import make_loss

Collate = Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]]


#: the epoch budget of `epochs=None` on a catalog big enough for `min_steps`
DEFAULT_EPOCHS = 30
#: ... and the most it becomes on a small one
MAX_AUTO_EPOCHS = 300

#: the least relative fall of the lowest validation loss that counts as progress
#: for early stopping (see `Trainer._loss_fell`)
LOSS_PROGRESS = 1e-2


@dataclass
class TrainingSettings:
    """How a network is trained. Every field is also a model setting of a TorchModel."""

    #: most passes over the training data; early stopping usually ends sooner.
    #: None: DEFAULT_EPOCHS, or more on a small catalog, enough for `min_steps`
    #: optimizer steps (at most MAX_AUTO_EPOCHS)
    epochs: int | None = None
    #: the fewest optimizer steps an epoch budget chosen by `epochs=None` allows
    min_steps: int = 2000
    #: products per optimizer step. None: chosen from the data (`batch_budget`)
    batch_size: int | None = 32
    #: peak learning rate of AdamW, reached after warm-up
    lr: float = 1e-3
    #: AdamW's decoupled weight decay (not applied to biases and norms)
    weight_decay: float = 0.01
    #: share of all steps spent warming the learning rate up from 0
    warmup_ratio: float = 0.06
    #: decay after warm-up: "linear" (to 0 at the last step of `epochs`), "cosine" or "constant"
    schedule: str = "linear"
    #: epochs in a row with neither a higher validation macro-F1 nor a validation
    #: loss LOSS_PROGRESS below its lowest before stopping; stretched with the
    #: budget of `epochs=None` on a small catalog (`patience_budget`)
    patience: int = 3
    #: the least gain of validation macro-F1 that counts as better
    min_delta: float = 0.0
    #: largest gradient norm (None: no clipping)
    grad_clip: float | None = 1.0
    #: "ce" (cross-entropy) or "focal" for single / path; multi-label always uses BCE (focal is refused there)
    loss: str = "ce"
    focal_gamma: float = 2.0
    #: batch size for validation and prediction
    eval_batch_size: int = 256
    #: batches per shuffled chunk that is sorted by length (bucketing; 1 = no bucketing)
    bucket_batches: int = 50
    #: a checkpoint every this many steps (0: only at epoch ends), when a checkpoint dir is set
    checkpoint_every_steps: int = 500
    #: ... and at least every this many seconds (0: no time-based checkpoints)
    checkpoint_every_seconds: float = 600.0
    #: TensorBoard train/loss_step every this many steps
    log_every_steps: int = 50
    #: on a GPU: "auto" (bf16 where supported, else fp16), "bf16", "fp16" or "no"
    mixed_precision: str = "auto"
    #: CPU threads (None: every core this process may use)
    num_threads: int | None = None
    #: "shuffle" (every example once per epoch) or "balanced" (as many draws, with replacement,
    #: each example with probability 1 / its class's count: rare classes are seen as often as common ones;
    #: single / path only, refused for multi-label; the loss is then not class-weighted too)
    sampler: str = "shuffle"

    #: settings that may be None
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"epochs", "batch_size", "grad_clip", "num_threads"})

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "trainer") -> TrainingSettings:
        """The trainer's settings among `values` (other keys are ignored), checked."""
        known = {f.name for f in fields(cls)}
        settings = cls(**{k: v for k, v in values.items() if k in known})
        settings.check(where)
        return settings

    def check(self, where: str = "trainer") -> None:
        def fail(message: str) -> None:
            raise ConfigError(f"{where}: {message}")

        for key in ("epochs", "batch_size", "eval_batch_size", "bucket_batches", "patience", "min_steps"):
            value = getattr(self, key)
            if value is None and key in self.OPTIONAL:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                fail(f"{key} must be a positive integer, got {value!r}")
        for key in ("checkpoint_every_steps", "log_every_steps"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                fail(f"{key} must be 0 or a positive integer, got {value!r}")
        for key in ("lr", "weight_decay", "warmup_ratio", "min_delta", "focal_gamma", "checkpoint_every_seconds"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                fail(f"{key} must be a number >= 0, got {value!r}")
        if self.lr <= 0:
            fail(f"lr must be above 0, got {self.lr!r}")
        if self.warmup_ratio >= 1:
            fail(f"warmup_ratio must be below 1, got {self.warmup_ratio!r}")
        if self.grad_clip is not None and (
            isinstance(self.grad_clip, bool) or not isinstance(self.grad_clip, (int, float)) or not self.grad_clip > 0
        ):
            fail(f"grad_clip must be a number above 0 or null, got {self.grad_clip!r}")
        if self.num_threads is not None and (
            isinstance(self.num_threads, bool) or not isinstance(self.num_threads, int) or self.num_threads < 1
        ):
            fail(f"num_threads must be a positive integer or null, got {self.num_threads!r}")
        choices = {
            "schedule": ("linear", "cosine", "constant"),
            "loss": ("ce", "focal"),
            "mixed_precision": ("auto", "bf16", "fp16", "no"),
            "sampler": ("shuffle", "balanced"),
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                fail(f"{key} must be one of {', '.join(allowed)}; got {getattr(self, key)!r}")

    def check_label_format(self, label_format: str, where: str = "trainer") -> None:
        """Refuse a setting that means nothing for the label format, rather than train without it.

        Multi-label training has one loss (binary cross-entropy per label) and no
        one class per product for the balanced sampler to draw by; `class_weight`
        "balanced" weighs each label's positives up instead.
        """
        if label_format != "multi":
            return
        advice = "multi-label training uses binary cross-entropy, whose class_weight 'balanced' (the default) " \
                 "weighs each label's rare positives up"
        if self.loss == "focal":
            raise ConfigError(f"{where}: loss='focal' is for single and path labels; {advice}")
        if self.sampler == "balanced":
            raise ConfigError(f"{where}: sampler='balanced' draws products by their one class, which a multi-label "
                              f"product does not have; {advice}")


TRAINING_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(TrainingSettings)}

#: settings a resumed run may change: they say how fast, or how often to save
#: and log, not what is learned. Any other difference refuses to resume.
RESUME_FREE_SETTINGS = frozenset(
    {"num_threads", "eval_batch_size", "checkpoint_every_steps", "checkpoint_every_seconds", "log_every_steps"}
)


def examples_digest(split: EncodedSplit) -> str:
    """sha256 of a split's encoded examples and targets: whether a resumed run trains on the same products.

    A photo given by its path counts by its file name, so a run resumed from
    another working directory (the same photos reached by another path) is
    the same run.
    """
    digest = hashlib.sha256()
    targets = np.ascontiguousarray(split.targets)
    digest.update(f"{targets.dtype}{targets.shape}".encode())
    digest.update(targets.tobytes())
    for example in split.examples:
        for key in sorted(example):
            value = example[key]
            digest.update(f"\0{key}\0".encode())
            if isinstance(value, str):
                digest.update(os.path.basename(value).encode())
            elif isinstance(value, (bytes, bytearray, memoryview)):
                digest.update(value)
            elif value is None:
                digest.update(b"\0none")
            else:
                array = np.asarray(value)
                if array.dtype == object:
                    digest.update(repr(value).encode())
                else:
                    digest.update(f"{array.dtype}{array.shape}".encode())
                    digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


@dataclass
class EncodedSplit:
    """Encoded examples (one dict per product), their targets and lengths (for bucketing)."""

    examples: list[dict[str, Any]]
    targets: np.ndarray | None
    lengths: np.ndarray

    def __len__(self) -> int:
        return len(self.examples)


@dataclass
class TrainState:
    """Where a run stands; what a checkpoint's JSON restores."""

    epoch: int = 0  # epochs completed
    step_in_epoch: int = 0  # batches of the current epoch already done
    global_step: int = 0
    best_metric: float | None = None  # validation macro-F1 of the best epoch
    best_loss: float | None = None  # validation loss of the best epoch
    lowest_loss: float | None = None  # lowest validation loss of any epoch
    best_epoch: int | None = None
    bad_epochs: int = 0
    finished: bool = False
    epoch_loss_sum: float = 0.0
    epoch_loss_count: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class TrainResult:
    history: list[dict[str, Any]]
    best_epoch: int | None
    best_metric: float | None
    epochs_run: int
    stopped_early: bool
    #: the global step a resumed run started from (None: a fresh run)
    resumed_from: int | None
    notes: list[str]
    #: products per step, as given or chosen from the data (batch_budget)
    batch_size: int | None = None
    #: the validation split's logits under the final weights, when the training computed them
    #: (a closed-form fit does); None: the model runs the validation products again to calibrate
    valid_logits: np.ndarray | None = None


# --- small pieces, public so tests and models can use them --------------------


def use_all_cores(num_threads: int | None = None) -> int:
    """Set torch's CPU threads: num_threads, but never more than the cores this process may run
    on (None: all of them).

    More threads than cores only take turns; and a saved model's num_threads
    of 10**6 (a hand edit) started a thread for each, with every thread of
    the photo decoding pool, which follows this count.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    num_threads = cores if num_threads is None else min(num_threads, cores)
    if torch.get_num_threads() != num_threads:
        torch.set_num_threads(num_threads)
    return num_threads


def resolve_device(name: str) -> torch.device:
    """"auto" (a GPU when there is one), "cpu", "cuda" or "cuda:N"; ConfigError when unavailable."""
    if not isinstance(name, str):
        raise ConfigError(f"device must be 'auto', 'cpu' or 'cuda', got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} was requested but there is no CUDA device; use --device cpu or auto")
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) present")
        return device
    raise ConfigError(f"device must be 'auto', 'cpu' or 'cuda', got {name!r}")


def epoch_budget(epochs: int | None, steps_per_epoch: int, min_steps: int) -> int:
    """The most epochs a run may take: `epochs` when given, else chosen from the data.

    A network trained from scratch needs a number of optimizer steps more than
    a number of passes: 750 products in batches of 64 make 12 steps an epoch,
    and 30 epochs of those leave an LSTM barely past predicting the commonest
    class. Early stopping still ends most runs well before the budget.

        >>> epoch_budget(None, steps_per_epoch=410, min_steps=2000)  # 26k products
        30
        >>> epoch_budget(None, steps_per_epoch=12, min_steps=2000)  # 750 products
        167
        >>> epoch_budget(5, steps_per_epoch=12, min_steps=2000)
        5
    """
    if epochs is not None:
        return epochs
    return min(MAX_AUTO_EPOCHS, max(DEFAULT_EPOCHS, math.ceil(min_steps / max(steps_per_epoch, 1))))


#: the batch sizes `batch_size=None` chooses from, smallest first. 32 was
#: measured and dropped: on a 2,800-product sample of fashion it did no better
#: than 16 (docs/benchmarks.md), and on flipkart's 735 products worse.
AUTO_BATCH_SIZES = (16, 64)


def batch_budget(batch_size: int | None, n_train: int, min_steps: int) -> int:
    """Products per step: `batch_size` when given, else chosen from the data.

    The largest of AUTO_BATCH_SIZES that still makes an epoch of at least
    min_steps / DEFAULT_EPOCHS steps (67: a catalog whose epoch budget
    `epoch_budget` does not need to stretch), else the smallest. On a small
    catalog the budget is counted in steps anyway, and smaller batches make
    more and noisier steps per pass over the few products: lstm on 735
    flipkart products scored 0.615 macro-F1 at 16 against 0.566 at 64 over
    three split seeds (docs/benchmarks.md). A large catalog keeps the
    fastest, 64.

        >>> batch_budget(None, n_train=26_000, min_steps=2000)
        64
        >>> batch_budget(None, n_train=2_800, min_steps=2000)
        16
        >>> batch_budget(None, n_train=735, min_steps=2000)
        16
        >>> batch_budget(8, n_train=735, min_steps=2000)
        8
    """
    if batch_size is not None:
        return batch_size
    fewest_steps = min_steps / DEFAULT_EPOCHS
    fitting = [size for size in AUTO_BATCH_SIZES if n_train / size >= fewest_steps]
    return max(fitting) if fitting else AUTO_BATCH_SIZES[0]


def patience_budget(patience: int, epochs: int | None, budget: int) -> int:
    """Epochs without progress before stopping: `patience`, stretched with a stretched budget.

    When `epoch_budget` stretches a small catalog's budget to reach
    `min_steps`, an epoch is a few steps and 3 of them are too few to tell a
    plateau from noise: on 735 flipkart products (12 steps an epoch) an LSTM
    stopped at epoch 38 of 167, at 0.95 training accuracy, with its
    validation loss still falling every few epochs. Patience stretches by the same factor, so it stays the same share
    of the budget (3 of 30 epochs). A budget the user gave is not stretched.

        >>> patience_budget(3, epochs=None, budget=30)   # 26k products
        3
        >>> patience_budget(3, epochs=None, budget=167)  # 750 products
        17
        >>> patience_budget(3, epochs=167, budget=167)
        3
    """
    if epochs is not None or budget <= DEFAULT_EPOCHS:
        return patience
    return math.ceil(patience * budget / DEFAULT_EPOCHS)


def lr_factor(step: int, total_steps: int, warmup_ratio: float, schedule: str) -> float:
    """The multiplier of the peak learning rate at a (0-based) step."""
    warmup = math.ceil(warmup_ratio * total_steps)
    if step < warmup:
        return (step + 1) / (warmup + 1)
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return max(0.0, 1.0 - progress)


def balanced_weights(targets: np.ndarray) -> np.ndarray | None:
    """Sampling probabilities proportional to 1 / class count (None for multi-label targets)."""
    targets = np.asarray(targets)
    if targets.ndim != 1 or len(targets) == 0:
        return None
    counts = np.bincount(targets)
    weights = 1.0 / counts[targets]
    return weights / weights.sum()


def batch_order(
    lengths: np.ndarray,
    batch_size: int,
    seed: int,
    epoch: int,
    bucket_batches: int = 50,
    weights: np.ndarray | None = None,
) -> list[np.ndarray]:
    """The batches of one epoch, drawn from (seed, epoch) alone.

    Examples are shuffled, cut into chunks of `bucket_batches` batches, each
    chunk is sorted by length (so a batch holds examples of similar length
    and padding is small), cut into batches, and the batches are shuffled.
    With `weights` (probabilities summing to 1) the epoch is as many draws
    with replacement instead of a permutation: the class-balanced sampler.
    """
    rng = np.random.default_rng([seed, epoch])
    if weights is None:
        order = rng.permutation(len(lengths))
    else:
        order = rng.choice(len(lengths), size=len(lengths), replace=True, p=weights)
    chunk = batch_size * bucket_batches
    batches: list[np.ndarray] = []
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        if bucket_batches > 1:
            part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    if device.type == "cpu":
        return batch
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def autocast_dtype(device: torch.device, mixed_precision: str) -> torch.dtype | None:
    """The autocast dtype for a device (None: full float32). Mixed precision is used on GPUs only."""
    if device.type != "cuda" or mixed_precision == "no":
        return None
    if mixed_precision == "fp16":
        return torch.float16
    if mixed_precision == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def predict_logits(
    network: torch.nn.Module,
    collate: Collate,
    examples: Sequence[dict[str, Any]],
    lengths: np.ndarray,
    *,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    n_outputs: int | None = None,
    mixed_precision: str = "auto",
) -> np.ndarray:
    """Logits (n, n_outputs) float32 in input order, computed in eval mode in batches sorted by length."""
    device = torch.device(device)
    n = len(examples)
    order = np.argsort(np.asarray(lengths), kind="stable")
    out: np.ndarray | None = None if n_outputs is None else np.empty((n, n_outputs), dtype=np.float32)
    dtype = autocast_dtype(device, mixed_precision)
    was_training = network.training
    network.eval()
    try:
        with torch.inference_mode(), _autocast(device, dtype):
            for start in range(0, n, batch_size):
                idx = order[start : start + batch_size]
                batch = to_device(collate([examples[i] for i in idx]), device)
                logits = network(**batch).float().cpu().numpy()
                if out is None:
                    out = np.empty((n, logits.shape[1]), dtype=np.float32)
                out[idx] = logits
    finally:
        network.train(was_training)
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def decisions(logits: np.ndarray, multi: bool) -> np.ndarray:
    """Argmax class ids, or the multi-label indicator (logit > 0, i.e. probability > 0.5).

    Multi-label epochs are compared at 0.5, not at the per-label cuts a saved model
    tunes on validation: tuned each epoch (cheap: 0.04 s for 149 tags on 500
    products), bow on the demo catalog's tags picked a later epoch for the same
    test macro-F1 (0.1141 against 0.1138) after 95 epochs instead of 72; cuts
    tuned and scored on the same small validation split flatter every epoch.
    """
    return (logits > 0).astype(np.uint8) if multi else logits.argmax(axis=1)


def accuracy_and_macro_f1(y_true: np.ndarray, y_pred: np.ndarray, multi: bool) -> tuple[float, float]:
    """Accuracy (subset accuracy for multi-label) and macro-F1 over the classes
    present in the targets or the predictions."""
    if len(y_true) == 0:
        return float("nan"), float("nan")
    if multi:
        t, p = y_true.astype(bool), y_pred.astype(bool)
        accuracy = float((t == p).all(axis=1).mean())
        tp = (t & p).sum(axis=0)
        fp = (~t & p).sum(axis=0)
        fn = (t & ~p).sum(axis=0)
    else:
        accuracy = float((y_true == y_pred).mean())
        n = int(max(y_true.max(), y_pred.max())) + 1
        tp = np.bincount(y_true[y_true == y_pred], minlength=n)
        fp = np.bincount(y_pred, minlength=n) - tp
        fn = np.bincount(y_true, minlength=n) - tp
    present = (tp + fp + fn) > 0
    f1 = 2 * tp[present] / np.maximum(2 * tp[present] + fp[present] + fn[present], 1)
    return accuracy, float(f1.mean()) if present.any() else 0.0


def weights_finite(network: torch.nn.Module) -> bool:
    """Whether every floating-point weight and buffer of a network is a finite number."""
    return all(bool(torch.isfinite(t).all()) for t in network.state_dict().values() if t.is_floating_point())


def clip_gradients(parameters: list[torch.nn.Parameter], max_norm: float) -> float:
    """Scale all gradients so their joint L2 norm is at most max_norm; returns the norm before.

    Handles sparse gradients (embeddings with sparse=True), which
    torch.nn.utils.clip_grad_norm_ does not.
    """
    grads = []
    for p in parameters:
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            p.grad = p.grad.coalesce()
            grads.append(p.grad._values())
        else:
            grads.append(p.grad)
    if not grads:
        return 0.0
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads]))
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(scale.to(g.dtype))
    return float(total)


# --- the trainer -----------------------------------------------------------------


class Trainer:
    """Trains a network: `forward(**collate(examples))` must return logits (batch, n_classes).

    seed: makes the batch order, dropout and (with the caller seeding the
        initial weights) the whole run reproducible on CPU.
    device: "auto", "cpu" or "cuda" ("cuda" without a GPU is a ConfigError).
    logdir: TensorBoard event files go there (None: none).
    checkpoint_dir: resumable checkpoints go there (None: none).
    resume: continue from the checkpoint in checkpoint_dir; with none there,
        start fresh (and say so). Without resume, old checkpoints are removed.
    callbacks: extra `Callback`s, called after the progress bar and TensorBoard.
    """

    def __init__(
        self,
        settings: TrainingSettings | None = None,
        *,
        seed: int = 0,
        device: str = "auto",
        logdir: str | Path | None = None,
        checkpoint_dir: str | Path | None = None,
        resume: bool = False,
        quiet: bool = False,
        callbacks: Sequence[Callback] = (),
        name: str = "training",
    ):
        self.settings = settings or TrainingSettings()
        self.settings.check(name)
        self.seed = int(seed)
        self.device = resolve_device(device)
        self.logdir = Path(logdir) if logdir else None
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.resume = resume
        self.quiet = quiet
        self.name = name
        self.extra_callbacks = list(callbacks)
        self.say = Reporter(quiet)
        self.state = TrainState()
        #: products per step of the current run (`batch_budget`)
        self.batch_size = 0
        self.steps_per_epoch = 0
        #: the epoch budget of the current run (`epoch_budget`)
        self.epochs = 0
        #: ... and its patience (`patience_budget`)
        self.patience = 0
        self.total_steps = 0
        self.current_lr = 0.0
        self.last_grad_norm: float | None = None
        self.last_batch_size = 0
        #: the label format of the current run
        self.label_format = ""

    # ----------------------------------------------------------------- setup
    def _optimizers(self, network: torch.nn.Module) -> list[torch.optim.Optimizer]:
        s = self.settings
        sparse_ids = {
            id(m.weight)
            for m in network.modules()
            if isinstance(m, (torch.nn.Embedding, torch.nn.EmbeddingBag)) and m.sparse
        }
        scales = dict(getattr(network, "lr_scales", None) or {})
        for prefix, scale in scales.items():
            if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale < 0:
                raise ConfigError(f"{self.name}: the learning-rate scale of {prefix!r} must be a number >= 0, got {scale!r}")
        by_group: dict[tuple[bool, float], list[torch.nn.Parameter]] = {}
        sparse = []
        for name, p in network.named_parameters():
            if not p.requires_grad:
                continue
            if id(p) in sparse_ids:
                sparse.append(p)
                continue
            matches = [prefix for prefix in scales if name.startswith(prefix)]
            scale = float(scales[max(matches, key=len)]) if matches else 1.0
            # biases and norm scales (ndim < 2): decaying them only hurts
            by_group.setdefault((p.ndim >= 2, scale), []).append(p)
        optimizers: list[torch.optim.Optimizer] = []
        # A stable group order, so a resumed run's optimizer state lines up.
        groups = [
            {"params": params, "weight_decay": s.weight_decay if decays else 0.0, "lr_scale": scale}
            for (decays, scale), params in sorted(by_group.items(), key=lambda kv: (not kv[0][0], -kv[0][1]))
        ]
        if groups:
            optimizers.append(torch.optim.AdamW(groups, lr=s.lr))
        if sparse:
            # Updates only the embedding rows a batch touched: a large hashed
            # embedding would otherwise cost a full pass over its rows per step.
            optimizers.append(torch.optim.SparseAdam(sparse, lr=s.lr))
        if not optimizers:
            raise ConfigError(f"{self.name}: the network has no trainable parameters")
        return optimizers

    def _fingerprint(self, network: torch.nn.Module, train: EncodedSplit, label_format: str, n_classes: int,
                     class_weight: str | None, run_settings: dict[str, Any] | None) -> dict:
        """What must match for a checkpoint to continue this run."""
        if run_settings is None:
            run_settings = {f.name: getattr(self.settings, f.name) for f in fields(self.settings)}
        # through JSON, as the checkpoint holds it: a tuple and the list it was saved as are one value
        settings = json.loads(json.dumps({k: v for k, v in run_settings.items() if k not in RESUME_FREE_SETTINGS}))
        return {
            "label_format": label_format,
            "n_classes": int(n_classes),
            "n_train": len(train),
            "batch_size": self.batch_size,
            "seed": self.seed,
            "class_weight": class_weight or "none",  # as --class-weight names it
            "settings": settings,
            "data": examples_digest(train),
            "trainable": [name for name, p in network.named_parameters() if p.requires_grad],
            "parameters": {k: list(v.shape) for k, v in network.state_dict().items()},
        }

    def _check_fingerprint(self, saved: dict, current: dict) -> None:
        """Refuse a checkpoint of another run. A checkpoint of an older prodcat may lack
        some entries; those are not checked."""
        where = self.checkpoint_dir
        advice = f"delete {where} or train without resume"
        if "settings" in saved and saved["settings"] != current["settings"]:
            before, now = saved["settings"], current["settings"]
            changed = [k for k in sorted(set(before) | set(now), key=lambda k: (k != "model", k))
                       if before.get(k, "unset") != now.get(k, "unset")]
            shown = "; ".join(f"{k} {before.get(k, 'unset')!r}, this run {now.get(k, 'unset')!r}" for k in changed[:3])
            more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
            raise ConfigError(f"cannot resume: the checkpoint in {where} was trained with other settings "
                              f"({shown}{more}); resume with the first run's settings, or {advice}")
        for key, what in (("label_format", "label format"), ("n_classes", "number of classes"),
                          ("n_train", "number of training products"), ("batch_size", "batch_size"), ("seed", "seed"),
                          ("class_weight", "class weight")):
            if key in saved and saved[key] != current[key]:
                raise ConfigError(
                    f"cannot resume: the checkpoint in {where} has {what} {saved.get(key)!r}, this run {current[key]!r}; {advice}"
                )
        if "data" in saved and saved["data"] != current["data"]:
            raise ConfigError(f"cannot resume: the checkpoint in {where} was trained on other products (was the "
                              f"catalog changed?); {advice}")
        if saved.get("parameters") != current["parameters"]:
            raise ConfigError(f"cannot resume: the checkpoint in {where} is for a network of another shape; {advice}")
        if "trainable" in saved and saved["trainable"] != current["trainable"]:
            raise ConfigError(f"cannot resume: the checkpoint in {where} trained other parameters (another "
                              f"freeze setting?); {advice}")

    # ----------------------------------------------------------- checkpoints
    def _save(self, network, optimizers, scaler, best_weights, fingerprint, epoch_preds, epoch_true) -> None:
        tensors: dict[str, torch.Tensor] = {f"network.{k}": v for k, v in network.state_dict().items()}
        if best_weights is not None:
            tensors.update({f"best.{k}": v for k, v in best_weights.items()})
        optimizer_json = []
        for i, optimizer in enumerate(optimizers):
            t, plain = optimizer_to_plain(optimizer, f"optimizer.{i}")
            tensors.update(t)
            optimizer_json.append(plain)
        tensors.update(rng_tensors())
        if epoch_preds:
            tensors["epoch.train_pred"] = torch.from_numpy(np.concatenate(epoch_preds))
            tensors["epoch.train_true"] = torch.from_numpy(np.concatenate(epoch_true))
        state = {
            **self.state.to_dict(),
            "fingerprint": fingerprint,
            "optimizers": optimizer_json,
            "grad_scaler": scaler.state_dict() if scaler is not None else None,
            "settings": {f.name: getattr(self.settings, f.name) for f in fields(self.settings)},
        }
        save_checkpoint(self.checkpoint_dir, tensors, state)
        self._last_save = time.monotonic()

    #: where a run stands: what no checkpoint can lack
    REQUIRED_STATE = ("epoch", "step_in_epoch", "global_step")

    def _checked_state(self, saved: dict[str, Any]) -> TrainState:
        """The run state a checkpoint's JSON holds, each value of its field's type (a checkpoint of
        an older prodcat may lack the later fields: they keep their defaults)."""
        def whole(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and value >= 0

        def number(value: Any) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool)

        kinds: dict[str, tuple[Callable[[Any], bool], str]] = {
            "epoch": (whole, "a whole number"),
            "step_in_epoch": (whole, "a whole number"),
            "global_step": (whole, "a whole number"),
            "bad_epochs": (whole, "a whole number"),
            "epoch_loss_count": (whole, "a whole number"),
            "best_epoch": (lambda v: v is None or whole(v), "a whole number or null"),
            "best_metric": (lambda v: v is None or number(v), "a number or null"),
            "best_loss": (lambda v: v is None or number(v), "a number or null"),
            "lowest_loss": (lambda v: v is None or number(v), "a number or null"),
            "epoch_loss_sum": (number, "a number"),
            "finished": (lambda v: isinstance(v, bool), "true or false"),
            "history": (lambda v: isinstance(v, list) and all(isinstance(h, dict) for h in v), "a list of epochs"),
        }
        missing = [k for k in self.REQUIRED_STATE if k not in saved]
        if missing:
            raise unreadable(self.checkpoint_dir, f"it lacks {', '.join(missing)}")
        for key, (fits, kind) in kinds.items():
            if key in saved and not fits(saved[key]):
                raise unreadable(self.checkpoint_dir, f"{key} is {saved[key]!r}, not {kind}")
        return TrainState(**{k: saved[k] for k in kinds if k in saved})

    def _restore(self, network, optimizers, scaler, fingerprint):
        """Load the checkpoint into network and optimizers; (best weights, epoch preds, epoch targets)."""
        loaded = load_checkpoint(self.checkpoint_dir)
        if loaded is None:
            return None
        saved, tensors = loaded
        # Checked before anything is loaded: a hand-edited value would otherwise end in a
        # traceback, or (an epoch that is gone) silently restart the schedule on trained weights.
        state = self._checked_state(saved)
        if not isinstance(saved.get("fingerprint", {}), dict):
            raise unreadable(self.checkpoint_dir, "fingerprint is not an object")
        self._check_fingerprint(saved.get("fingerprint", {}), fingerprint)
        if "rng.torch" not in tensors:
            raise unreadable(self.checkpoint_dir, "it holds no random number generator state")
        try:
            network.load_state_dict({k[len("network."):]: v for k, v in tensors.items() if k.startswith("network.")})
        except RuntimeError as exc:
            raise unreadable(self.checkpoint_dir, f"its weights do not fit the network: {exc}") from None
        best = {k[len("best."):]: v for k, v in tensors.items() if k.startswith("best.")} or None
        if not isinstance(saved.get("optimizers"), list):
            raise unreadable(self.checkpoint_dir, "it holds no optimizer state")
        if len(saved["optimizers"]) != len(optimizers):
            raise ConfigError(f"cannot resume: the checkpoint in {self.checkpoint_dir} has other optimizers")
        for i, (optimizer, plain) in enumerate(zip(optimizers, saved["optimizers"])):
            # load_state_dict moves moments to their parameter's device (step counts stay on CPU)
            try:
                optimizer_from_plain(optimizer, f"optimizer.{i}", tensors, plain)
            except (ValueError, KeyError, RuntimeError, TypeError, AttributeError) as exc:
                raise ConfigError(f"cannot resume: the optimizer state in {self.checkpoint_dir} does not fit this "
                                  f"run ({exc}); delete {self.checkpoint_dir} or train without resume") from None
        if scaler is not None and saved.get("grad_scaler"):
            scaler.load_state_dict(saved["grad_scaler"])
        restore_rng(tensors)
        self.state = state
        preds = [tensors["epoch.train_pred"].numpy()] if "epoch.train_pred" in tensors else []
        true = [tensors["epoch.train_true"].numpy()] if "epoch.train_true" in tensors else []
        return best, preds, true

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        network: torch.nn.Module,
        collate: Collate,
        train: EncodedSplit,
        valid: EncodedSplit | None = None,
        *,
        label_format: str,
        n_classes: int,
        class_weight: str | None = None,
        train_collate: Collate | None = None,
        run_settings: dict[str, Any] | None = None,
    ) -> TrainResult:
        """Train `network` in place; on return it holds the best weights (by validation macro-F1).

        Without `valid` it trains for `epochs` epochs and keeps the last weights.
        train_collate: the batches of training steps (e.g. with augmentation);
        validation always uses `collate`.
        run_settings: the settings a resumed run must share with its checkpoint
        (a model's, with its own besides the trainer's; default: the trainer's),
        but for `RESUME_FREE_SETTINGS`.
        """
        s = self.settings
        if len(train) == 0:
            raise ConfigError(f"{self.name}: nothing to train on")
        s.check_label_format(label_format, self.name)
        self.label_format = label_format
        multi = label_format == "multi"
        use_all_cores(s.num_threads)
        torch.manual_seed(self.seed)
        device = self.device
        network.to(device).train()

        # The balanced sampler already shows every class as often as the others: weighting the
        # loss by class too counts the imbalance twice (on a 60:3:3:3 catalog the dominant class
        # came last for every product), so with it the loss is not class-weighted.
        loss_class_weight = None if s.sampler == "balanced" else class_weight
        loss_fn = make_loss(label_format, n_classes, train.targets, kind=s.loss,
                            class_weight=loss_class_weight, focal_gamma=s.focal_gamma).to(device)
        eval_loss_fn = copy.deepcopy(loss_fn).cpu()
        optimizers = self._optimizers(network)
        amp_dtype = autocast_dtype(device, s.mixed_precision)
        scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
        parameters = [p for p in network.parameters() if p.requires_grad]
        has_sparse = any(isinstance(o, torch.optim.SparseAdam) for o in optimizers)

        self.batch_size = batch_budget(s.batch_size, len(train), s.min_steps)
        self.steps_per_epoch = math.ceil(len(train) / self.batch_size)
        self.epochs = epoch_budget(s.epochs, self.steps_per_epoch, s.min_steps)
        self.patience = patience_budget(s.patience, s.epochs, self.epochs)
        self.total_steps = self.epochs * self.steps_per_epoch
        targets = torch.from_numpy(np.asarray(train.targets))
        sample_weights = balanced_weights(train.targets) if s.sampler == "balanced" else None
        train_collate = train_collate or collate
        fingerprint = (self._fingerprint(network, train, label_format, n_classes, class_weight, run_settings)
                       if self.checkpoint_dir is not None else None)

        self.state = TrainState()
        best_weights: dict[str, torch.Tensor] | None = None
        epoch_preds: list[np.ndarray] = []
        epoch_true: list[np.ndarray] = []
        notes: list[str] = []
        resumed_from = None
        if self.checkpoint_dir is not None:
            restored = self._restore(network, optimizers, scaler, fingerprint) if self.resume else None
            if restored is not None:
                best_weights, epoch_preds, epoch_true = restored
                resumed_from = self.state.global_step
                if self.state.finished:
                    # "epoch 3, step 0" of a 2-epoch run read as a run going on past its budget
                    notes.append(f"resuming from the checkpoint in {self.checkpoint_dir}: its training had ended "
                                 f"after epoch {self.state.epoch} of {self.epochs}; its best weights go on")
                else:
                    notes.append(f"resuming from the checkpoint in {self.checkpoint_dir}: epoch {self.state.epoch + 1}"
                                 f" of {self.epochs}, step {self.state.step_in_epoch} of {self.steps_per_epoch}")
            else:
                if self.resume:
                    notes.append(f"no checkpoint in {self.checkpoint_dir}: starting fresh")
                clear_checkpoints(self.checkpoint_dir)
        elif self.resume:
            notes.append("resume was asked for but no checkpoint directory is set: starting fresh")
        if class_weight and loss_class_weight is None:
            notes.append(f"sampler 'balanced' draws the classes evenly: the loss is not {class_weight}-weighted too")
        for note in notes:
            self.say.note(note)

        callbacks: list[Callback] = [ProgressBar(self.name, self.quiet)]
        if self.logdir is not None:
            callbacks.append(TensorBoardLogger(self.logdir, s.log_every_steps))
        callbacks.extend(self.extra_callbacks)
        callbacks.extend(watchers())
        self._last_save = time.monotonic()

        def save() -> None:
            if self.checkpoint_dir is not None:
                self._save(network, optimizers, scaler, best_weights, fingerprint, epoch_preds, epoch_true)

        try:
            for cb in callbacks:
                cb.on_train_begin(self)
            while not self.state.finished and self.state.epoch < self.epochs:
                batches = batch_order(train.lengths, self.batch_size, self.seed, self.state.epoch, s.bucket_batches,
                                      sample_weights)
                network.train()
                for idx in batches[self.state.step_in_epoch :]:
                    loss_value, logits = self._step(network, train_collate, train, targets, idx, loss_fn, optimizers,
                                                    scaler, parameters, has_sparse, amp_dtype, callbacks)
                    epoch_preds.append(decisions(logits, multi))
                    epoch_true.append(np.asarray(train.targets)[idx])
                    self.state.step_in_epoch += 1
                    self.state.global_step += 1
                    self.state.epoch_loss_sum += loss_value * len(idx)
                    self.state.epoch_loss_count += len(idx)
                    # A NaN running loss is a diverging run (the epoch's end says so): not worth
                    # resuming, and not JSON.
                    if (self.checkpoint_dir is not None and self.state.step_in_epoch < len(batches) and self._due()
                            and math.isfinite(self.state.epoch_loss_sum)):
                        save()
                    for cb in callbacks:
                        cb.on_step_end(self, loss_value)

                metrics = self._end_epoch(network, collate, valid, eval_loss_fn, multi, epoch_preds, epoch_true,
                                          n_classes)
                if self._diverged(network, metrics, valid):
                    # A diverged network gives every product NaN probabilities: saved, it would
                    # be a model that looks trained and is not.
                    where = f"{self.name}: training diverged in epoch {metrics['epoch']} (a loss or weight is not finite)"
                    if best_weights is None:
                        # Nothing worth resuming: the rerun at a lower rate must start fresh.
                        if self.checkpoint_dir is not None:
                            clear_checkpoints(self.checkpoint_dir)
                        raise ConfigError(f"{where}; train with a learning rate below {s.lr:g}")
                    # the kept epoch may itself be near useless (the rate that diverged also drove it)
                    notes.append(f"{where}; keeping the weights of epoch {self.state.best_epoch} (a learning rate "
                                 f"below {s.lr:g} may train further)")
                    self.say.note(notes[-1])
                    self.state.finished = True
                    break
                if valid is not None and len(valid):
                    # An equal macro-F1 at a lower loss makes a better checkpoint but,
                    # alone, no progress: a converged model gets surer for ever.
                    progressed = self._loss_fell(metrics) or self._f1_rose(metrics)
                    if self._improved(metrics):
                        self.state.best_metric, self.state.best_epoch = metrics["val_macro_f1"], metrics["epoch"]
                        self.state.best_loss = metrics["val_loss"]
                        best_weights = {k: v.detach().to("cpu", copy=True) for k, v in network.state_dict().items()}
                    if progressed:
                        self.state.bad_epochs = 0
                    else:
                        self.state.bad_epochs += 1
                        if self.state.bad_epochs >= self.patience:
                            self.state.finished = True
                self.state.history.append(metrics)
                self.state.epoch += 1
                self.state.step_in_epoch = 0
                self.state.epoch_loss_sum, self.state.epoch_loss_count = 0.0, 0
                epoch_preds, epoch_true = [], []
                if self.state.epoch >= self.epochs:
                    self.state.finished = True
                save()
                for cb in callbacks:
                    cb.on_epoch_end(self, metrics)
        finally:
            for cb in callbacks:
                cb.on_train_end(self)

        if best_weights is not None:
            network.load_state_dict(best_weights)
        network.eval()
        history = self.state.history
        return TrainResult(
            history=history,
            best_epoch=self.state.best_epoch,
            best_metric=self.state.best_metric,
            epochs_run=len(history),
            stopped_early=len(history) < self.epochs,
            resumed_from=resumed_from,
            notes=notes,
            batch_size=self.batch_size,
        )

    @staticmethod
    def _diverged(network: torch.nn.Module, metrics: dict[str, Any], valid: EncodedSplit | None) -> bool:
        """Whether the epoch left the network useless: a weight or the validation loss not finite
        (`_end_epoch` stores such a loss as None). Not the training loss: with fp16 on a GPU a step
        that overflows is skipped by the gradient scaler, and the epoch's mean loss is then not
        finite while the weights are fine."""
        validated = valid is not None and len(valid) > 0
        return (validated and metrics["val_loss"] is None) or not weights_finite(network)

    def _f1_rose(self, metrics: dict[str, Any]) -> bool:
        best, f1 = self.state.best_metric, metrics["val_macro_f1"]
        return best is None or (f1 is not None and f1 > best + self.settings.min_delta)

    def _improved(self, metrics: dict[str, Any]) -> bool:
        """A higher validation macro-F1, or the same one at a lower validation loss.

        The tie-break matters on small or easy validation sets, where macro-F1
        reaches its ceiling early while the model is still getting surer.
        """
        if self._f1_rose(metrics):
            return True
        state, f1, loss = self.state, metrics["val_macro_f1"], metrics["val_loss"]
        return (f1 is not None and f1 >= state.best_metric and loss is not None
                and (state.best_loss is None or loss < state.best_loss))

    def _loss_fell(self, metrics: dict[str, Any]) -> bool:
        """Whether validation loss reached a new low (recording it).

        A falling loss keeps training going even while macro-F1 stands still:
        on small catalogs a network learning from scratch spends its first
        epochs predicting the commonest classes, with a flat macro-F1 and a
        steadily falling loss, and stopping there leaves it untrained. A fall
        of less than LOSS_PROGRESS (relative) is not progress, so a model
        that has converged still stops. The weights kept are still those of
        the best macro-F1.
        """
        loss = metrics.get("val_loss")
        if loss is None or not math.isfinite(loss):
            return False
        if self.state.lowest_loss is not None and loss >= self.state.lowest_loss * (1 - LOSS_PROGRESS):
            return False
        self.state.lowest_loss = float(loss)
        return True

    def _due(self) -> bool:
        s = self.settings
        if s.checkpoint_every_steps and self.state.global_step % s.checkpoint_every_steps == 0:
            return True
        return bool(s.checkpoint_every_seconds) and time.monotonic() - self._last_save >= s.checkpoint_every_seconds

    def _step(self, network, collate, train, targets, idx, loss_fn, optimizers, scaler, parameters, has_sparse,
              amp_dtype, callbacks) -> tuple[float, np.ndarray]:
        s = self.settings
        self.current_lr = s.lr * lr_factor(self.state.global_step, self.total_steps, s.warmup_ratio, s.schedule)
        for optimizer in optimizers:
            for group in optimizer.param_groups:
                group["lr"] = self.current_lr * group.get("lr_scale", 1.0)
        self.last_batch_size = len(idx)
        batch = to_device(collate([train.examples[i] for i in idx]), self.device)
        target = targets[idx].to(self.device)
        with _autocast(self.device, amp_dtype):
            logits = network(**batch)
        loss = loss_fn(logits, target)
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            for optimizer in optimizers:
                scaler.unscale_(optimizer)
        else:
            loss.backward()
        if s.grad_clip is not None:
            if has_sparse:
                self.last_grad_norm = clip_gradients(parameters, s.grad_clip)
            else:
                self.last_grad_norm = float(torch.nn.utils.clip_grad_norm_(parameters, s.grad_clip))
        for cb in callbacks:
            cb.on_before_optimizer_step(self, network)
        for optimizer in optimizers:
            if scaler is not None:
                scaler.step(optimizer)
            else:
                optimizer.step()
        if scaler is not None:
            scaler.update()
        return float(loss.detach()), logits.detach().float().cpu().numpy()

    def _end_epoch(self, network, collate, valid, eval_loss_fn, multi, epoch_preds, epoch_true, n_classes) -> dict:
        state = self.state
        metrics: dict[str, Any] = {
            "epoch": state.epoch + 1,
            "step": state.global_step,
            "lr": self.current_lr,
            "train_loss": state.epoch_loss_sum / max(state.epoch_loss_count, 1),
        }
        if epoch_preds:
            accuracy, f1 = accuracy_and_macro_f1(np.concatenate(epoch_true), np.concatenate(epoch_preds), multi)
            metrics.update(train_accuracy=accuracy, train_macro_f1=f1)
        if valid is not None and len(valid):
            logits = predict_logits(network, collate, valid.examples, valid.lengths,
                                    batch_size=self.settings.eval_batch_size, device=self.device,
                                    n_outputs=n_classes, mixed_precision=self.settings.mixed_precision)
            with torch.no_grad():
                val_loss = float(eval_loss_fn(torch.from_numpy(logits), torch.from_numpy(np.asarray(valid.targets))))
            accuracy, f1 = accuracy_and_macro_f1(np.asarray(valid.targets), decisions(logits, multi), multi)
            metrics.update(val_loss=val_loss, val_accuracy=accuracy, val_macro_f1=f1)
            network.train()
        # NaN (a diverged loss) is not JSON: checkpoints and model state store None
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}
