"""The base of every PyTorch model: subclasses write a preprocessor and a network, nothing else.

A subclass implements a few hooks; `TorchModel` does fitting (the shared
`prodcat.training.Trainer`: AdamW, warm-up + decay, early stopping on
validation macro-F1, checkpoints, TensorBoard), calibration, batched
prediction and saving as plain data (JSON + float32 arrays, no pickle).

    >>> import torch
    >>> from prodcat.catalog.products import Products
    >>> from prodcat.labels import LabelSpace
    >>> class BagOfLetters(torch.nn.Module):
    ...     def __init__(self, n_letters, dim, n_classes):
    ...         super().__init__()
    ...         self.bag = torch.nn.EmbeddingBag(n_letters, dim, padding_idx=0)
    ...         self.out = torch.nn.Linear(dim, n_classes)
    ...     def forward(self, ids):
    ...         return self.out(self.bag(ids))
    >>> class Letters(TorchModel):
    ...     DEFAULTS = {"dim": 8, "lr": 0.05}
    ...     def build_preprocessor(self, products):
    ...         self.letters = sorted({c for t in products.texts for c in t})
    ...     def encode(self, products):
    ...         index = {c: i + 1 for i, c in enumerate(self.letters)}  # 0: padding and unseen
    ...         return [{"ids": [index.get(c, 0) for c in t] or [0]} for t in products.texts]
    ...     def collate(self, examples):
    ...         ids = [torch.tensor(e["ids"]) for e in examples]
    ...         return {"ids": torch.nn.utils.rnn.pad_sequence(ids, batch_first=True)}
    ...     def build_network(self, n_classes):
    ...         return BagOfLetters(len(self.letters) + 1, self.settings["dim"], n_classes)
    ...     def preprocessor_state(self):
    ...         return {"letters": self.letters}
    ...     def load_preprocessor(self, state):
    ...         self.letters = list(state["letters"])
    >>> space = LabelSpace("single", ["mug", "shirt"])
    >>> texts = ["shirt", "mug", "shirts", "mugs"] * 8
    >>> y = space.encode([("shirt",), ("mug",)] * 16)
    >>> model = Letters(epochs=10).fit(Products.from_texts(texts), y, space)
    >>> model.predict_proba(Products.from_texts(["tshirt", "big mug"])).argmax(axis=1)
    array([1, 0])

Hooks (see each method): `build_preprocessor`, `encode`, `collate`,
`build_network`, `preprocessor_state`, `load_preprocessor`, and optionally
`collate_train`, `example_length`, `network_config`, `check_settings`,
`initialize_network`. A network may define `lr_scales` ({parameter-name
prefix: multiplier of lr}), e.g. to fine-tune a pretrained body slower than a
new head.

Settings: `self.settings` holds TRAINING_DEFAULTS, overridden by the
subclass's DEFAULTS, overridden by the params given to `__init__`; an unknown
key or a value of the wrong type is a ConfigError naming it.

Without a validation split, training runs the full `epochs` (no early
stopping) and probabilities are not calibrated (temperature 1 for single /
path, a plain sigmoid for multi-label).
"""

from __future__ import annotations

import copy
import json
from typing import Any, ClassVar

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

from prodcat.calibration import apply_calibration, calibrate_scores, checked_calibration, identity_calibration
from prodcat.catalog.products import Products
from prodcat.errors import ConfigError, ModelDirError, ProdcatError, SavedSettingsError
from prodcat.labels import LabelSpace
from prodcat.models.base import CategorizerModel, FitContext
from prodcat.training.callbacks import Callback
from prodcat.training.trainer import (
    TRAINING_DEFAULTS as TRAINER_DEFAULTS,
    EncodedSplit,
    Trainer,
    TrainingSettings,
    TrainResult,
    predict_logits,
    use_all_cores,
)

STATE_VERSION = 1

#: Settings every TorchModel has. The trainer's (see `TrainingSettings` for
#: what each means) plus `max_length`, the most tokens a product is cut to by
#: models that tokenize.
TRAINING_DEFAULTS: dict[str, Any] = {**TRAINER_DEFAULTS, "max_length": 128}


def _check_value(model: str, key: str, default: Any, value: Any) -> Any:
    """`value` checked against the type of its default (None defaults accept anything JSON-able)."""
    if default is None or value is None and key in TrainingSettings.OPTIONAL:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{model}: {key} must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise ConfigError(f"{model}: {key} must be an integer, got {value!r}")
        return int(value)
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise ConfigError(f"{model}: {key} must be a number, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{model}: {key} must be a string, got {value!r}")
        return value
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{model}: {key} must be a list, got {value!r}")
        return list(value)
    return value


def check_probability_below_one(model: str, key: str, value: Any) -> None:
    """A ConfigError unless `value` is a number in [0, 1): a dropout rate, which at 1 would zero every unit."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ConfigError(f"{model}: {key} must be a number in [0, 1), got {value!r}")


class _TooManyOperations(RuntimeError):
    pass


class _OperationBudget(TorchFunctionMode):
    """Stops a build after `limit` torch calls: on the meta device a layer count of
    10**9 allocates nothing, but would still loop for days making the layers."""

    def __init__(self, limit: int):
        super().__init__()
        self.left = limit

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.left -= 1
        if self.left < 0:
            raise _TooManyOperations("it would be far larger than the saved weights")
        return func(*args, **(kwargs or {}))


def _network_shapes(model: TorchModel, n_saved: int) -> dict[str, tuple[int, ...]]:
    """The shape of every parameter and buffer of the network `model` builds, allocating none.

    Raises what building raises: a size past torch's limits is a RuntimeError,
    and so is a network that takes far more torch calls to build than one of
    `n_saved` arrays (the registered models take at most 10 per array).
    """
    with torch.device("meta"), _OperationBudget(100 + 20 * n_saved):
        network = model.build_network(model.n_classes)
    return {key: tuple(tensor.shape) for key, tensor in network.state_dict().items()}


def _shapes_with(model: TorchModel, n_saved: int, key: str, value: Any) -> dict[str, tuple[int, ...]] | None:
    """`_network_shapes` with one setting changed, or None when no network can be built that way."""
    trial = copy.copy(model)
    trial.settings = {**model.settings, key: value}
    try:
        return _network_shapes(trial, n_saved)
    except Exception:  # an unbuildable trial value is only a value that does not fit
        return None


def _another_value(value: Any) -> Any:
    """A value of the same kind as a setting's, for finding out whether the setting shapes the network."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value * 2 + 1
    if isinstance(value, float):
        return value / 2 if value else 0.5  # stays a valid rate (dropout) when the setting is one
    if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return [*value, value[-1] + 1]
    return None


def _first_difference(expected: dict[str, tuple[int, ...]], saved: dict[str, tuple[int, ...]]) -> str:
    for key in sorted(set(expected) | set(saved)):
        if key not in saved:
            return f"the settings make weight {key!r}, which is not saved"
        if key not in expected:
            return f"weight {key!r} is saved but the settings make none"
        if expected[key] != saved[key]:
            return f"weight {key!r} has shape {saved[key]}, the settings make {expected[key]}"
    return ""


def _values_to_try(value: Any, default: Any, sizes: list[int]) -> list[Any]:
    """What a setting may have been when the weights were saved: the other truth
    value of a flag; for a count, its default and every size the saved arrays have."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        tried = ([default] if isinstance(default, int) and not isinstance(default, bool) else []) + sizes
        return [v for v in dict.fromkeys(tried) if v != value]
    return []


def check_settings_fit_weights(model: TorchModel, arrays: dict[str, np.ndarray]) -> None:
    """A SavedSettingsError naming the setting unless the network `model`'s settings build fits `arrays`.

    The network is built on torch's meta device, so a setting of 10**12 costs
    nothing. When it does not fit, each setting that shapes the network is
    tried at the values it may have been saved with (`_values_to_try`): the one
    that alone makes the weights fit is named, with the value they say it had.
    Otherwise the settings that shape the network are named.
    """
    name = model.name or type(model).__name__
    saved = {key: tuple(np.shape(array)) for key, array in arrays.items()}
    try:
        expected: dict[str, tuple[int, ...]] | None = _network_shapes(model, len(saved))
    except (ProdcatError, KeyError):  # a saved state that lacks an entry says so in from_state
        raise
    except Exception as exc:  # a size past torch's limits (2**63 elements), or far too many layers
        expected, failure = None, (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if expected == saved:
        return
    defaults = model.all_defaults()
    sizes = sorted({size for shape in saved.values() for size in shape})
    shaping = []
    for key, value in model.settings.items():
        other = _another_value(value)
        if other is None:
            continue
        changed = _shapes_with(model, len(saved), key, other)
        if expected is not None and changed == expected:
            continue  # the network does not depend on this setting
        built = changed is not None
        for candidate in _values_to_try(value, defaults.get(key), sizes):
            shapes = _shapes_with(model, len(saved), key, candidate)
            if shapes == saved:
                raise SavedSettingsError(f"{name} setting {key!r} is {json.dumps(value)} but the saved weights "
                                         f"say {json.dumps(candidate)}")
            built = built or shapes is not None
        if built:
            shaping.append(key)
    described = ", ".join(f"{key!r} is {json.dumps(model.settings[key])}" for key in shaping)
    if expected is None:
        if not shaping:  # no setting changes that: the saved state describes a network that cannot be built
            raise ModelDirError(f"{name}: the saved network cannot be built ({failure})")
        raise SavedSettingsError(f"{name} settings cannot build the network ({failure}); "
                                 f"the settings that decide its size: {described}")
    difference = _first_difference(expected, saved)
    if not shaping:
        # nothing in the settings shapes it: the saved state and weights disagree
        raise ModelDirError(f"{name}: saved weights do not fit the network: {difference}")
    raise SavedSettingsError(f"{name} settings do not fit the saved weights ({described}): {difference}")


class TorchModel(CategorizerModel):
    """A CategorizerModel trained by the shared trainer; subclasses implement the hooks."""

    resumable = True  # the trainer checkpoints and resumes
    #: the subclass's own settings and defaults (they may also override TRAINING_DEFAULTS)
    DEFAULTS: ClassVar[dict[str, Any]] = {}
    #: trainer settings this model accepts but never reads, and why (bow's
    #: max_length). Fit refuses a value other than the default, which would
    #: otherwise be saved with the model and ignored; loading still accepts
    #: one, so a model saved before this check still loads.
    unused_settings: ClassVar[dict[str, str]] = {}

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.settings: dict[str, Any] = self.resolve_settings(self.params)
        self.network: torch.nn.Module | None = None
        self.n_classes: int | None = None
        self.calibration: dict[str, Any] = {}
        #: what `network_config()` returned at fit time; on load, the saved
        #: dict, set before `build_network` runs (None while fitting)
        self.network_config_: dict[str, Any] | None = None
        #: per-epoch metrics of the last fit (empty after loading)
        self.history_: list[dict[str, Any]] = []
        self.best_epoch_: int | None = None
        self.batch_size_: int | None = None
        self.device_ = torch.device("cpu")
        #: extra `prodcat.training.Callback`s for the next fit (not saved)
        self.callbacks: list[Callback] = []

    # ------------------------------------------------------------ settings
    @classmethod
    def all_defaults(cls) -> dict[str, Any]:
        return {**TRAINING_DEFAULTS, **cls.DEFAULTS}

    def resolve_settings(self, params: dict[str, Any]) -> dict[str, Any]:
        """Defaults merged with params, every value checked; ConfigError names the fault."""
        name = self.name or type(self).__name__
        defaults = self.all_defaults()
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            raise ConfigError(
                f"{name}: unknown setting(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(defaults))}"
            )
        settings = {k: _check_value(name, k, defaults[k], params.get(k, v)) for k, v in defaults.items()}
        TrainingSettings.from_dict(settings, where=name)  # range and choice checks of the trainer's settings
        length = settings["max_length"]
        # None is a model's way of saying "chosen from the training data".
        if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length < 1):
            raise ConfigError(f"{name}: max_length must be at least 1 (or null: chosen from the data), got {length!r}")
        self.check_settings(settings)
        return settings

    def check_settings(self, settings: dict[str, Any]) -> None:
        """Optional hook: raise ConfigError for a bad value of the subclass's own settings."""

    def check_before_fit(self, label_format: str) -> None:
        """The label formats the model learns, and the trainer's settings that mean nothing for this one."""
        super().check_before_fit(label_format)
        name = self.name or type(self).__name__
        TrainingSettings.from_dict(self.settings, where=name).check_label_format(label_format, name)
        defaults = self.all_defaults()
        for key, why in self.unused_settings.items():
            if self.settings[key] != defaults[key]:
                raise ConfigError(f"{name}: {key} means nothing for this model ({why}); leave it out")

    def get_params(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in self.settings.items()}

    # --------------------------------------------------------------- hooks
    def build_preprocessor(self, products: Products) -> None:
        """Learn the vocabulary / tokenizer from the TRAINING products only."""
        raise NotImplementedError

    def encode(self, products: Products) -> list[dict[str, Any]]:
        """One example per product, unpadded, e.g. {"ids": [4, 17, 9]}."""
        raise NotImplementedError

    def collate(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """A batch of examples padded to its longest one: the keyword arguments of `forward`."""
        raise NotImplementedError

    def collate_train(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """The batch of a training step; defaults to `collate`. Image models augment
        here, and word models hide words (`word_dropout`).

        Randomness drawn from torch's RNG is seeded and checkpointed by the
        trainer, so augmented runs stay reproducible and resumable.
        """
        return self.collate(examples)

    def build_network(self, n_classes: int) -> torch.nn.Module:
        """The network: `forward(**collate(examples))` returns logits (batch, n_classes)."""
        raise NotImplementedError

    def initialize_network(self, network: torch.nn.Module) -> None:
        """Optional hook: set starting weights learned from the training products.

        Called once per fit, right after `build_network` and before training;
        never on load, where the saved weights replace whatever a network starts with.
        """

    def preprocessor_state(self) -> dict[str, Any]:
        """The preprocessor as JSON-able data (vocabularies as lists, tokenizer.json text, ...)."""
        raise NotImplementedError

    def load_preprocessor(self, state: dict[str, Any]) -> None:
        """Rebuild the preprocessor from `preprocessor_state()` output."""
        raise NotImplementedError

    def example_length(self, example: dict[str, Any]) -> int:
        """Length used to bucket examples of similar size into one batch."""
        return len(example["ids"])

    def network_config(self) -> dict[str, Any]:
        """JSON-able: what `build_network` needs besides n_classes and the preprocessor.

        Saved with the model; on load it is in `self.network_config_` before
        `build_network` is called.
        """
        return {}

    # ----------------------------------------------------------------- fit
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
    ) -> TorchModel:
        context = context or FitContext()
        name = self.name or type(self).__name__
        if class_weight not in (None, "balanced"):
            raise ConfigError(f"{name}: class_weight must be None or 'balanced', got {class_weight!r}")
        # before the preprocessor and the network are built: a refusal then costs nothing
        self.check_before_fit(label_space.label_format)
        products, y = self._usable(products, y, label_space)
        if len(products) == 0:
            raise ConfigError(f"{name}: no training products with a known label")
        held = None
        if valid is not None:
            v_products, v_y = self._usable(valid[0], valid[1], label_space)
            if len(v_products):
                held = (v_products, v_y)

        settings = TrainingSettings.from_dict(self.settings, where=name)
        use_all_cores(settings.num_threads)
        self.label_space, self.n_classes = label_space, label_space.n_classes
        torch.manual_seed(seed)
        self.build_preprocessor(products)
        train_split = self._encoded(products, y)
        valid_split = self._encoded(*held) if held is not None else None

        # Seeded again so the initial weights do not depend on what the
        # preprocessor happened to draw.
        torch.manual_seed(seed)
        self.network_config_ = None
        network = self.build_network(self.n_classes)
        self.initialize_network(network)
        self.network_config_ = self.network_config()

        result = self.train_network(network, train_split, valid_split, settings=settings, seed=seed,
                                    class_weight=class_weight, context=context)
        self.network = network.eval()
        self.history_, self.best_epoch_ = result.history, result.best_epoch
        self.batch_size_ = result.batch_size

        if valid_split is not None:
            logits = result.valid_logits
            if logits is None:
                logits = self._logits(valid_split.examples, valid_split.lengths)
            self.calibration = calibrate_scores(logits, valid_split.targets, label_space.is_multi)
        else:
            self.calibration = identity_calibration(label_space.is_multi)
        return self

    def train_network(self, network: torch.nn.Module, train_split: EncodedSplit, valid_split: EncodedSplit | None,
                      *, settings: TrainingSettings, seed: int, class_weight: str | None,
                      context: FitContext) -> TrainResult:
        """Learn the network's weights (in place) and set `self.device_`; the shared `Trainer` by default.

        A subclass may learn some networks another way (image-pretrained fits a
        frozen backbone's head in closed form); it returns a `TrainResult` like the
        trainer's, whose `valid_logits` may spare the validation pass that calibrates.
        """
        name = self.name or type(self).__name__
        trainer = Trainer(
            settings,
            seed=seed,
            device=context.device,
            logdir=context.logdir,
            checkpoint_dir=context.checkpoint_dir,
            resume=context.resume,
            quiet=context.quiet,
            callbacks=self.callbacks,
            name=name,
        )
        result = trainer.fit(
            network, self.collate, train_split, valid_split,
            label_format=self.label_space.label_format, n_classes=self.n_classes, class_weight=class_weight,
            train_collate=self.collate_train, run_settings={"model": name, **self.get_params()},
        )
        self.device_ = trainer.device
        return result

    def _usable(self, products: Products, y: np.ndarray, label_space: LabelSpace) -> tuple[Products, np.ndarray]:
        """The products with a known target (id -1 marks a class the label space lacks)."""
        name = self.name or type(self).__name__
        y = np.asarray(y)
        if len(y) != len(products):
            raise ConfigError(f"{name}: {len(products)} products but {len(y)} targets")
        if label_space.is_multi:
            if y.ndim != 2 or y.shape[1] != label_space.n_classes:
                raise ConfigError(f"{name}: multi-label targets must be (n, {label_space.n_classes})")
            return products, y.astype(np.uint8)
        keep = np.flatnonzero(y >= 0)
        if len(keep) == len(y):
            return products, y.astype(np.int64)
        return products.take(keep), y[keep].astype(np.int64)

    def _encoded(self, products: Products, y: np.ndarray | None) -> EncodedSplit:
        examples = self.encode(products)
        lengths = np.fromiter((self.example_length(e) for e in examples), dtype=np.int64, count=len(examples))
        return EncodedSplit(examples, y, lengths)

    # ------------------------------------------------------------- predict
    def _check_fitted(self) -> None:
        if self.network is None or self.label_space is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit or from_state first")

    def _logits(self, examples: list[dict[str, Any]], lengths: np.ndarray) -> np.ndarray:
        return predict_logits(
            self.network, self.collate, examples, lengths,
            batch_size=self.settings["eval_batch_size"], device=self.device_, n_outputs=self.n_classes,
            mixed_precision=self.settings["mixed_precision"],
        )

    def decision_function(self, products: Products) -> np.ndarray:
        """Uncalibrated logits, (n, n_classes) float32, in input order."""
        self._check_fitted()
        use_all_cores(self.settings["num_threads"])
        split = self._encoded(products, None)
        return self._logits(split.examples, split.lengths)

    def predict_proba(self, products: Products) -> np.ndarray:
        """Calibrated probabilities, (n, n_classes) float32, in input order.

        Products are run sorted by length (less padding), in batches of
        `eval_batch_size`, on the device the model was trained or loaded on.
        """
        logits = self.decision_function(products)
        return apply_calibration(logits, self.calibration, self.label_space.is_multi)

    # --------------------------------------------------------- persistence
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        self._check_fitted()
        state = {
            "version": STATE_VERSION,
            "preprocessor": self.preprocessor_state(),
            "network_config": self.network_config_ or {},
            "n_classes": int(self.n_classes),
            "calibration": dict(self.calibration),
            "best_epoch": self.best_epoch_,
            # the batch size training used, when batch_size=None left it to the data
            "batch_size": self.batch_size_,
            "history": self.history_,
        }
        arrays = {}
        for key, tensor in self.network.state_dict().items():
            tensor = tensor.detach().cpu()
            # float32 whatever the training precision; integer buffers keep their type
            tensor = tensor.float() if tensor.is_floating_point() else tensor
            arrays[key] = np.array(tensor.numpy(), copy=True)
        return state, arrays

    @classmethod
    def from_state(
        cls, params: dict[str, Any], state: dict[str, Any], arrays: dict[str, np.ndarray], label_space: LabelSpace
    ) -> TorchModel:
        try:
            model = cls(**params)
        except ConfigError as exc:
            raise SavedSettingsError(str(exc)) from None
        name = model.name or cls.__name__
        try:
            if state.get("version") != STATE_VERSION:
                raise ModelDirError(f"{name}: state version {state.get('version')!r} is not {STATE_VERSION}")
            if int(state["n_classes"]) != label_space.n_classes:
                raise ModelDirError(
                    f"{name}: the network has {state['n_classes']} outputs but the labels list {label_space.n_classes} classes"
                )
            model.label_space, model.n_classes = label_space, label_space.n_classes
            model.load_preprocessor(state["preprocessor"])
            model.network_config_ = dict(state.get("network_config") or {})
            model.calibration = checked_calibration(state["calibration"], label_space.is_multi)
            model.best_epoch_ = state.get("best_epoch")
            model.batch_size_ = state.get("batch_size")  # absent in directories saved before it was kept
            # Before anything is allocated: an edited setting (dim 10**12) would
            # otherwise fail deep in torch's allocator, or take all the memory.
            check_settings_fit_weights(model, arrays)
            network = model.build_network(model.n_classes)
        except KeyError as exc:
            raise ModelDirError(f"{name}: saved state lacks {exc.args[0]!r}") from None
        expected = network.state_dict()
        missing = sorted(set(expected) - set(arrays))
        unexpected = sorted(set(arrays) - set(expected))
        if missing or unexpected:
            raise ModelDirError(
                f"{name}: saved weights do not fit the network (missing {missing[:3]}, unexpected {unexpected[:3]})"
            )
        loaded = {}
        for key, reference in expected.items():
            array = np.asarray(arrays[key])
            if tuple(array.shape) != tuple(reference.shape):
                raise ModelDirError(f"{name}: weight {key!r} has shape {array.shape}, expected {tuple(reference.shape)}")
            if array.dtype.kind == "f" and not np.isfinite(array).all():
                # training refuses to save a diverged network: one here is damaged or edited, and would
                # give NaN probabilities (a photo model's fallback row: to every product without a photo)
                bad = array[~np.isfinite(array)].flat[0]
                raise ModelDirError(f"{name}: weight {key!r} holds {bad}, not a finite number")
            loaded[key] = torch.from_numpy(np.array(array, copy=True)).to(reference.dtype)
        network.load_state_dict(loaded, strict=True)
        model.network = network.eval()
        model.device_ = torch.device("cpu")
        return model
