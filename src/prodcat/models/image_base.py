"""The base of every image model: a subclass writes its network, nothing else.

`ImageTorchModel` is a `TorchModel` whose input is each product's image
reference (a path, the bytes of an encoded image, or None). It provides:

- lazy decoding: `encode` keeps only the reference; images are decoded in
  `collate` / `collate_train`, a batch at a time on a shared thread pool, so
  a catalog of thousands of photos is never held decoded in memory;
- the input pipeline: `prodcat.images` decoding (any mode to RGB, EXIF
  orientation, bombs refused), a centred square resized to `image_size` for
  validation and prediction, and for training steps (`augment` on) a random
  resized crop, horizontal flip, small rotation on white and colour jitter;
- products without a usable image: the network's rows for them are a learned
  vector `missing_logits` (the class prior of such products, starting at 0)
  instead of a guess from blank pixels. `predict_proba_masked` says which
  rows are real predictions, so an ensemble falls back to text on the others;
- counting: `image_stats_` holds the `ImageStats` of the last fit or
  predict; after fit one line says how many training / validation images
  could not be used.

A subclass implements `build_image_network(n_classes)` (forward(pixels) on a
normalized (B, 3, S, S) float batch -> logits) and optionally
`normalization()` and `network_config()`:

    >>> import torch
    >>> from prodcat.models.image_base import ImageTorchModel
    >>> class Tiny(ImageTorchModel):
    ...     DEFAULTS = {"image_size": 16, "epochs": 2}
    ...     def build_image_network(self, n_classes):
    ...         return torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
    ...                                    torch.nn.Linear(3, n_classes))
    >>> Tiny().get_params()["augment"]
    True

Augmentation is reproducible and resumable: each training batch draws one
seed from torch's RNG (which the trainer seeds and stores in its
checkpoints), and every product of the batch gets its own numpy Generator
spawned from it, so the pixels do not depend on which thread decoded them.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from prodcat.calibration import apply_calibration
from prodcat.catalog.products import Products
from prodcat.console import Reporter
from prodcat.errors import ConfigError, ModelDirError
from prodcat.images.decode import DEFAULT_MAX_PIXELS, ImageStats, describe_ref, load_image
from prodcat.images.transforms import IMAGENET_MEAN, IMAGENET_STD, augment, resize_center_crop, to_tensor
from prodcat.labels import LabelSpace
from prodcat.models.base import FitContext
from prodcat.models.torch_base import TRAINING_DEFAULTS, TorchModel
from prodcat.training.trainer import use_all_cores

#: Settings every image model has, besides the trainer's.
IMAGE_DEFAULTS: dict[str, Any] = {
    # side in pixels of the square every image is resized to
    "image_size": 128,
    # random resized crop, flip, small rotation and colour jitter on training batches
    "augment": True,
}

MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 16, 1024

# A training view is a crop of at least 60% of the image's area, enlarged to
# image_size; decoding JPEGs this much larger than image_size keeps that
# enlargement from blurring it (see load_image's target_size).
_TRAIN_DECODE_MARGIN = 1 / math.sqrt(0.6)

_EXECUTORS: dict[tuple[int, int], ThreadPoolExecutor] = {}
_EXECUTORS_LOCK = threading.Lock()


def decoding_pool(workers: int | None = None) -> ThreadPoolExecutor:
    """The process-wide thread pool that decodes images (one per worker count).

    Pillow releases the GIL while it decodes and resizes, so threads give
    real parallelism; one pool shared by every model avoids a pool per model
    (and keeps models free of unpicklable, uncopyable state). Pools are
    kept per process: a forked child inherits its parent's pool object but
    none of its threads, and would wait on it forever.
    """
    workers = max(1, workers or torch.get_num_threads())
    key = (os.getpid(), workers)
    with _EXECUTORS_LOCK:
        pool = _EXECUTORS.get(key)
        if pool is None:
            pool = _EXECUTORS[key] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="prodcat-images")
        return pool


class ImageNetwork(nn.Module):
    """A subclass's network plus the learned logits of products without a usable image.

    forward(pixels (B, 3, S, S), present (B,) bool) -> logits (B, n_classes):
    rows with an image come from `net` (which sees only those rows, so blank
    pixels never reach batch statistics), the others are `missing_logits`.
    """

    def __init__(self, net: nn.Module, n_classes: int):
        super().__init__()
        self.net = net
        self.missing_logits = nn.Parameter(torch.zeros(n_classes))

    @property
    def lr_scales(self) -> dict[str, float]:
        """The inner network's learning-rate scales, with its parameters' "net." prefix."""
        inner = getattr(self.net, "lr_scales", None) or {}
        return {f"net.{prefix}": scale for prefix, scale in inner.items()}

    def forward(self, pixels: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        present = present.to(torch.bool)
        if bool(present.all()):
            return self._net(pixels)
        missing = self.missing_logits.unsqueeze(0).expand(present.shape[0], -1)
        if not bool(present.any()):
            return missing
        rows = present.nonzero().squeeze(1)
        inner = self._net(pixels.index_select(0, rows))
        return missing.to(inner.dtype).contiguous().index_copy(0, rows, inner)

    def _net(self, pixels: torch.Tensor) -> torch.Tensor:
        try:
            return self.net(pixels)
        except ValueError:
            # A training batch with one usable photo, at an image_size whose last feature map
            # is 1x1: batch norm has one value per channel and torch refuses it. That photo
            # is run on the running statistics instead.
            if not (self.training and pixels.shape[0] == 1):
                raise
        self.net.eval()
        try:
            return self.net(pixels)
        finally:
            self.net.train()


def _stats_of(examples: list[dict[str, Any]]) -> ImageStats:
    """How reading went for the examples that were read at least once."""
    stats = ImageStats()
    for example in examples:
        kind = example.get("kind")
        if kind is not None:
            stats.add(kind, example["image"], example.get("reason", ""))
    return stats


def _mask_of(examples: list[dict[str, Any]]) -> np.ndarray:
    return np.fromiter((e.get("kind") == "read" for e in examples), dtype=bool, count=len(examples))


def _looks_usable(ref: Any) -> bool:
    """Whether a reference could be an image without decoding it: bytes, or an existing file."""
    if ref is None:
        return False
    if isinstance(ref, (bytes, bytearray, memoryview)):
        return len(ref) > 0
    text = os.fspath(ref) if isinstance(ref, (str, os.PathLike)) else None
    return isinstance(text, str) and not text.startswith(("http://", "https://")) and os.path.isfile(text)


class ImageTorchModel(TorchModel):
    """A TorchModel over product images; subclasses implement `build_image_network`.

    Settings: image_size (pixels of the square input), augment (on training
    batches), the trainer's (epochs, lr, batch_size, sampler, ...) and the
    subclass's DEFAULTS, which may override these.

    Batches are {"pixels": (B, 3, S, S) float32 normalized, "present": (B,) bool};
    a product whose image is absent or unusable has present False (its pixels
    are zeros and never reach the inner network).
    """

    DEFAULTS: ClassVar[dict[str, Any]] = {}
    reads_images: ClassVar[bool] = True
    reads_text: ClassVar[bool] = False
    # every TorchModel has max_length (tokens per product); a photo has no tokens
    unused_settings: ClassVar[dict[str, str]] = {"max_length": "a photo has no tokens"}
    unshared_settings: ClassVar[frozenset[str]] = frozenset(unused_settings)

    def __init__(self, **params: Any):
        super().__init__(**params)
        #: ImageStats of the last fit (training and validation) or predict
        self.image_stats_: ImageStats | None = None
        #: ImageStats of the last fit's training and validation images
        self.train_image_stats_: ImageStats | None = None
        self.valid_image_stats_: ImageStats | None = None
        #: (mean, std) the pixels are normalized with: fixed at fit, saved, loaded
        self.normalization_: tuple[list[float], list[float]] | None = None
        self._encoding_log: list[list[dict[str, Any]]] | None = None

    # ------------------------------------------------------------ settings
    @classmethod
    def all_defaults(cls) -> dict[str, Any]:
        # The image settings sit under the subclass's DEFAULTS, so a subclass
        # lists only what it adds or changes.
        return {**TRAINING_DEFAULTS, **IMAGE_DEFAULTS, **cls.DEFAULTS}

    def resolve_settings(self, params: dict[str, Any]) -> dict[str, Any]:
        settings = super().resolve_settings(params)
        name = self.name or type(self).__name__
        size = settings["image_size"]
        if not MIN_IMAGE_SIZE <= size <= MAX_IMAGE_SIZE:
            raise ConfigError(f"{name}: image_size must be between {MIN_IMAGE_SIZE} and {MAX_IMAGE_SIZE}, got {size}")
        return settings

    # ----------------------------------------------------- subclass hooks
    def build_image_network(self, n_classes: int) -> nn.Module:
        """The network: forward(pixels (B, 3, S, S) normalized float) -> logits (B, n_classes).

        When `self.network_config_` is not None the model is being loaded:
        build the architecture only; the saved weights are loaded afterwards.
        """
        raise NotImplementedError

    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(mean, std) per RGB channel of pixels in [0, 1]; ImageNet's by default.

        Called once while fitting, right after `build_image_network` (so it may
        read what that loaded, e.g. a checkpoint's preprocessing config); the
        values are saved with the model and used as saved when it is loaded.
        """
        return IMAGENET_MEAN, IMAGENET_STD

    # ------------------------------------------------- TorchModel hooks
    def build_preprocessor(self, products: Products) -> None:
        """Nothing is learned from the training images before training."""

    def encode(self, products: Products) -> list[dict[str, Any]]:
        refs = products.images if products.images is not None else [None] * len(products)
        examples = [{"image": ref} for ref in refs]
        if self._encoding_log is not None:
            self._encoding_log.append(examples)
        return examples

    def example_length(self, example: dict[str, Any]) -> int:
        return 1  # every image becomes the same size: nothing to bucket

    def collate(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Validation and prediction batches: the centred square of each image."""
        return self._batch(examples, seed=None)

    def collate_train(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Training batches: augmented views when `augment` is on, drawn from a seed taken from torch's RNG."""
        if not self.settings["augment"]:
            return self._batch(examples, seed=None)
        seed = int(torch.randint(0, 2**62, (1,)).item())
        return self._batch(examples, seed=seed)

    def build_network(self, n_classes: int) -> nn.Module:
        net = self.build_image_network(n_classes)
        if self.network_config_ is None:  # fitting (on load, the saved normalization is already set)
            mean, std = self.normalization()
            self.normalization_ = ([float(v) for v in mean], [float(v) for v in std])
        return ImageNetwork(net, n_classes)

    def preprocessor_state(self) -> dict[str, Any]:
        mean, std = self.normalization_
        state: dict[str, Any] = {"image_size": int(self.settings["image_size"]), "mean": mean, "std": std}
        if self.train_image_stats_ is not None:
            # what training could read, for reports; not needed to predict
            state["train_images"] = self.train_image_stats_.to_dict()
        return state

    def load_preprocessor(self, state: dict[str, Any]) -> None:
        name = self.name or type(self).__name__
        mean, std = state["mean"], state["std"]
        for key, values in (("mean", mean), ("std", std)):
            if (
                not isinstance(values, list)
                or len(values) != 3
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
            ):
                raise ModelDirError(f"{name}: saved normalization {key} must be 3 numbers, got {values!r}")
        if any(v <= 0 for v in std):
            raise ModelDirError(f"{name}: saved normalization std must be above 0, got {std!r}")
        saved, setting = state.get("image_size"), self.settings["image_size"]
        # image-pretrained takes its size from here, unchecked by its settings: at 10**5 every
        # photo would be resized to 30 billion numbers
        if isinstance(saved, bool) or not isinstance(saved, int) or not MIN_IMAGE_SIZE <= saved <= MAX_IMAGE_SIZE:
            raise ModelDirError(f"{name}: saved image_size must be an integer between {MIN_IMAGE_SIZE} and "
                                f"{MAX_IMAGE_SIZE}, got {saved!r}")
        if setting is None:  # a subclass that chooses the size at fit (e.g. from its backbone)
            self.settings["image_size"] = saved
        elif saved != setting:
            raise ModelDirError(f"{name}: saved image_size {saved!r} differs from the setting {setting}")
        self.normalization_ = ([float(v) for v in mean], [float(v) for v in std])

    # ------------------------------------------------------------ batches
    def _read(self, example: dict[str, Any], target_size: int):
        """The example's RGB image or None; the first outcome is recorded on the example.

        A reference that failed once is not tried again in later epochs.
        """
        kind = example.get("kind")
        if kind is not None and kind != "read":
            return None
        result = load_image(example["image"], max_pixels=DEFAULT_MAX_PIXELS, target_size=target_size)
        if kind is None or result.kind != "read":
            example["kind"], example["reason"] = result.kind, result.reason
        return result.image

    def _batch(self, examples: list[dict[str, Any]], seed: int | None) -> dict[str, torch.Tensor]:
        size = int(self.settings["image_size"])
        n = len(examples)
        pixels = np.zeros((n, size, size, 3), dtype=np.uint8)
        present = np.zeros(n, dtype=bool)
        streams = np.random.SeedSequence(seed).spawn(n) if seed is not None else None
        target = size if seed is None else math.ceil(size * _TRAIN_DECODE_MARGIN)

        def prepare(i: int) -> None:
            image = self._read(examples[i], target)
            if image is None:
                return
            if streams is None:
                pixels[i] = resize_center_crop(image, size)
            else:
                pixels[i] = augment(image, size, np.random.default_rng(streams[i]))
            present[i] = True

        if n == 1:
            prepare(0)
        else:
            # list() so an exception in a worker (a bug, not a bad image) surfaces here
            list(decoding_pool().map(prepare, range(n)))
        mean, std = self.normalization_
        return {"pixels": to_tensor(pixels, mean, std), "present": torch.from_numpy(present)}

    # ---------------------------------------------------------------- fit
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
    ) -> ImageTorchModel:
        """Train on the products' images; some may be absent or unreadable, but not all of them."""
        context = context or FitContext()
        name = self.name or type(self).__name__
        if products.images is None:
            raise ConfigError(f"{name} learns from product images, but the training products have no image field "
                              "(map one with --image-col)")
        refs = products.images
        if not any(_looks_usable(ref) for ref in refs):
            given = next((ref for ref in refs if ref is not None), None)
            if given is None:
                raise ConfigError(f"{name}: none of the {len(refs):,} training products has an image")
            raise ConfigError(f"{name}: none of the {len(refs):,} training products has an image file that exists "
                              f"(first: {describe_ref(given)}); check the image column and --image-root")
        self._encoding_log = []
        try:
            super().fit(products, y, label_space, valid, seed=seed, class_weight=class_weight, context=context)
            # TorchModel.fit encodes the training products, then the validation products (if any are usable).
            log = self._encoding_log
        finally:
            self._encoding_log = None
        self.train_image_stats_ = _stats_of(log[0])
        self.valid_image_stats_ = _stats_of(log[1]) if len(log) > 1 else None
        self.image_stats_ = self.train_image_stats_
        line = f"{name}: training images: {self.train_image_stats_.summary()}"
        if self.valid_image_stats_ is not None:
            self.image_stats_ = self.train_image_stats_.merge(self.valid_image_stats_)
            line += f"; validation images: {self.valid_image_stats_.summary()}"
        Reporter(context.quiet).note(line)
        return self

    # ------------------------------------------------------------ predict
    def _logits_and_mask(self, products: Products) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        use_all_cores(self.settings["num_threads"])
        examples = self.encode(products)
        logits = self._logits(examples, np.ones(len(examples), dtype=np.int64))
        self.image_stats_ = _stats_of(examples)
        return logits, _mask_of(examples)

    def image_stats(self) -> ImageStats | None:
        return self.image_stats_

    def decision_function(self, products: Products) -> np.ndarray:
        """Uncalibrated logits, (n, n_classes) float32; `image_stats_` counts how reading went."""
        return self._logits_and_mask(products)[0]

    def predict_proba_masked(self, products: Products) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated probabilities and a bool mask: False where the product had no usable image
        (that row is the learned fallback for such products, not a prediction)."""
        logits, mask = self._logits_and_mask(products)
        return apply_calibration(logits, self.calibration, self.label_space.is_multi), mask
