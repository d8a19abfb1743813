"""The contract every model keeps, so the facade never needs to know one.

A model is built with its settings as keyword arguments and does nothing else
in `__init__` (as in scikit-learn). `fit` learns from products and encoded
targets, `predict_proba` returns one row of class probabilities per product,
and `get_state` / `from_state` turn a fitted model into plain data (a JSON-able
dict plus named numpy arrays) and back, so a model directory never holds code.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from prodcat.catalog.products import Products
from prodcat.errors import ConfigError
from prodcat.labels import LabelSpace

if TYPE_CHECKING:
    from prodcat.images.decode import ImageStats

#: The longest n-gram (in words or characters) a model counts. Counting costs
#: the text's length times this squared: at a hand-edited 100000, one text of
#: 2,400 characters took 1.8 s and 460 MB in tfidf-linear, and the 20,000 a
#: server takes would need far more memory than a machine has. No catalog needs
#: more than a few (tfidf-linear's defaults go to 2 words and 5 characters).
MAX_NGRAM = 16


@dataclass
class FitContext:
    """Where and how a training run happens: not model settings, not saved.

    device: "auto" (a GPU when there is one), "cpu" or "cuda".
    logdir: where TensorBoard event files go (None: none are written).
    checkpoint_dir: where resumable checkpoints go (None: none are written).
    resume: continue from the last checkpoint in checkpoint_dir, if any.
    quiet: no progress bars.
    """

    device: str = "auto"
    logdir: Path | None = None
    checkpoint_dir: Path | None = None
    resume: bool = False
    quiet: bool = False


class CategorizerModel(ABC):
    #: registry key, set by `prodcat.models.register`
    name: ClassVar[str] = ""
    #: label formats the model can learn
    label_formats: ClassVar[tuple[str, ...]] = ("single", "multi", "path")
    #: whether the model reads product photos (`Products.images`); an
    #: ensemble says so per instance, from its members
    reads_images: ClassVar[bool] = False
    #: whether the model reads product texts; one that reads only photos trains
    #: and predicts on catalogs without a text column, and has nothing to fall
    #: back on for a product without a usable photo
    reads_text: ClassVar[bool] = True
    #: whether fit checkpoints a run that `FitContext.resume` can continue; a
    #: model trained in one go (tfidf-linear) has nothing to resume. An
    #: ensemble says so per instance: when one of its members does
    resumable: ClassVar[bool] = False
    #: settings that a value meant for many models never sets here (a named CLI
    #: option such as --max-length or --batch-size, a leaderboard's shared
    #: --param, the named options an ensemble hands its members): ones the
    #: model accepts but does not use, or whose name means something else here.
    #: `--param KEY=VALUE` for this model alone still sets them.
    unshared_settings: ClassVar[frozenset[str]] = frozenset()

    def checkpoint_folders(self) -> list[str]:
        """Where under a run's checkpoint folder this model's fit checkpoints ("." for the folder
        itself): the only checkpoints a resumed fit continues. Any other is another run's."""
        return ["."] if self.resumable else []

    def __init__(self, **params: Any):
        self.params = dict(params)
        self.label_space: LabelSpace | None = None

    def get_params(self) -> dict[str, Any]:
        return dict(self.params)

    def check_before_fit(self, label_format: str) -> None:
        """ConfigError unless these settings can learn `label_format` labels and
        what they name is there (a checkpoint directory); reads no data.

        The facade calls it before reading a catalog, and an ensemble for
        every member before the first one trains, so a refusal costs nothing.
        A model whose settings mean nothing for some format (focal loss on
        multi-label) refuses it here as well as in `fit`.
        """
        if label_format not in self.label_formats:
            raise ConfigError(f"{self.name or type(self).__name__} cannot learn {label_format!r} labels")

    @abstractmethod
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
    ) -> CategorizerModel:
        """Learn from products and targets from `label_space.encode`.

        y: int64 class ids (single/path) or a uint8 indicator matrix (multi).
        valid: held-out products and targets, for calibration and early stopping.
        class_weight: None or "balanced".
        context: device, logging and checkpointing of the run (models that
            do not train iteratively ignore it).
        """

    @abstractmethod
    def predict_proba(self, products: Products) -> np.ndarray:
        """(n_products, n_classes) float32. Rows sum to 1 for single and path
        labels; for multi-label each entry is that class's own probability."""

    def predict_proba_masked(self, products: Products) -> tuple[np.ndarray, np.ndarray | None]:
        """`predict_proba` and which products the model could actually read (None: all).

        An image model marks False the products without a usable image: their
        rows are its fallback (a learned prior), not a prediction. An ensemble
        gives such a member no weight on those rows.
        """
        return self.predict_proba(products), None

    def image_stats(self) -> ImageStats | None:
        """How reading photos went in the last prediction (None: the model reads none)."""
        return None

    def component_proba(self, products: Products) -> dict[str, np.ndarray]:
        """Probabilities of the model's parts by name (an ensemble's members); {} for a single model.

        Reports use it to show text alone, image alone and combined on the same products.
        """
        return {}

    def predict_proba_with_components(self, products: Products) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """`predict_proba` and `component_proba` together; a model with parts
        overrides it so each part predicts (and decodes photos) once."""
        return self.predict_proba(products), self.component_proba(products)

    @abstractmethod
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Everything prediction needs: a JSON-able dict and named arrays."""

    @classmethod
    @abstractmethod
    def from_state(
        cls, params: dict[str, Any], state: dict[str, Any], arrays: dict[str, np.ndarray], label_space: LabelSpace
    ) -> CategorizerModel:
        """Rebuild a fitted model from `get_params()` and `get_state()` output."""
