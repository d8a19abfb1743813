"""Small stand-in models for the tests of how photos travel to a model.

`RecordingImageModel` ("image-dummy"): reads no pixels; it predicts its
class prior, marks the products that came with a photo reference as read,
and records every list of references it is given, so a test can see exactly
what reached the model (paths, bytes, None).

`PartsModel` ("parts-dummy"): a model with two parts, the way an ensemble
has members: tfidf-linear on the text and the class prior, mixed 4:1. Its
`component_proba` lets evaluation report each part alone.

Neither is registered on import: the `register_dummies` helper puts them in
the registry for one test (through monkeypatch) so the contract test, which
runs every registered model, never sees them.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from prodcat.catalog.products import Products
from prodcat.labels import LabelSpace
from prodcat.models import CategorizerModel, create_model, get_model_class
from prodcat.models import _REGISTRY as REGISTRY


def _prior(y: np.ndarray, label_space: LabelSpace) -> np.ndarray:
    if label_space.is_multi:
        return y.mean(axis=0).astype(np.float32)
    counts = np.bincount(y, minlength=label_space.n_classes).astype(np.float32)
    return counts / counts.sum()


class RecordingImageModel(CategorizerModel):
    reads_images = True
    #: every `products.images` given to fit / predict_proba, in call order (shared by all instances)
    seen: ClassVar[list] = []

    def fit(self, products, y, label_space, valid=None, *, seed=0, class_weight=None, context=None):
        RecordingImageModel.seen.append(products.images)
        self.label_space = label_space
        self.prior_ = _prior(y, label_space)
        return self

    def predict_proba(self, products: Products) -> np.ndarray:
        RecordingImageModel.seen.append(products.images)
        return np.tile(self.prior_, (len(products), 1))

    def predict_proba_masked(self, products: Products):
        images = products.images or [None] * len(products)
        return self.predict_proba(products), np.array([ref is not None for ref in images])

    def get_state(self):
        return {}, {"prior": self.prior_}

    @classmethod
    def from_state(cls, params, state, arrays, label_space):
        model = cls(**params)
        model.label_space, model.prior_ = label_space, arrays["prior"]
        return model


class PartsModel(CategorizerModel):
    TEXT_SHARE = 0.8

    def fit(self, products, y, label_space, valid=None, *, seed=0, class_weight=None, context=None):
        self.label_space = label_space
        self.text_ = create_model("tfidf-linear").fit(products, y, label_space, valid, seed=seed)
        self.prior_ = _prior(y, label_space)
        return self

    def component_proba(self, products: Products) -> dict[str, np.ndarray]:
        return {
            "tfidf-linear": self.text_.predict_proba(products),
            "prior": np.tile(self.prior_, (len(products), 1)),
        }

    def predict_proba(self, products: Products) -> np.ndarray:
        parts = self.component_proba(products)
        mixed = self.TEXT_SHARE * parts["tfidf-linear"] + (1 - self.TEXT_SHARE) * parts["prior"]
        return mixed.astype(np.float32)

    def get_state(self):
        state, arrays = self.text_.get_state()
        return {"text": state}, {"prior": self.prior_, **{f"text.{k}": v for k, v in arrays.items()}}

    @classmethod
    def from_state(cls, params, state, arrays, label_space):
        model = cls(**params)
        text_arrays = {k[len("text."):]: v for k, v in arrays.items() if k.startswith("text.")}
        linear = get_model_class("tfidf-linear")
        model.text_ = linear.from_state(linear().get_params(), state["text"], text_arrays, label_space)
        model.label_space, model.prior_ = label_space, arrays["prior"]
        return model


DUMMIES: dict[str, type[CategorizerModel]] = {"image-dummy": RecordingImageModel, "parts-dummy": PartsModel}


def register_dummies(monkeypatch) -> None:
    """Make the dummies available by name until `monkeypatch` undoes it (one test,
    or a module's `pytest.MonkeyPatch.context()`)."""
    for name, cls in DUMMIES.items():
        monkeypatch.setattr(cls, "name", name)
        monkeypatch.setitem(REGISTRY, name, cls)
    monkeypatch.setattr(RecordingImageModel, "seen", [])

