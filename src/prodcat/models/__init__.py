"""The model registry: models are chosen by name and plug in by registering.

    >>> from prodcat.models import available_models
    >>> "tfidf-linear" in available_models()
    True
"""

from __future__ import annotations

import importlib

import numpy as np

from prodcat.errors import UnknownModelError
from prodcat.models.base import CategorizerModel, FitContext

_REGISTRY: dict[str, type[CategorizerModel]] = {}

#: the registry name of a model (or an ensemble member) that `prodcat export`
#: made: a neural model's preprocessing with its network run by ONNX Runtime
EXPORTED_MODEL = "onnx"

# Modules that register models when imported. Importing lazily keeps heavy
# libraries (torch, transformers) out of processes that never use them.
_MODEL_MODULES = {
    "tfidf-linear": "prodcat.models.linear",
    "bow": "prodcat.models.bow",
    "bert": "prodcat.models.bert",
    "lstm": "prodcat.models.text_nets",
    "cnn": "prodcat.models.text_nets",
    "transformer": "prodcat.models.text_nets",
    EXPORTED_MODEL: "prodcat.models.onnx_runtime",
    "image-cnn": "prodcat.models.image_nets",
    "image-resnet": "prodcat.models.image_nets",
    "image-pretrained": "prodcat.models.image_pretrained",
    "ensemble": "prodcat.models.ensemble",
}


def register(name: str):
    """Class decorator: make a CategorizerModel available under `name`."""

    def decorate(cls: type[CategorizerModel]) -> type[CategorizerModel]:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def available_models() -> list[str]:
    return sorted(set(_MODEL_MODULES) | set(_REGISTRY))


def get_model_class(name: str) -> type[CategorizerModel]:
    if not isinstance(name, str):
        # a list or dict cannot even be looked up (unhashable): say what a model name is
        raise UnknownModelError(f"a model is named by a string, got {name!r}; available: {', '.join(available_models())}")
    if name not in _REGISTRY and name in _MODEL_MODULES:
        importlib.import_module(_MODEL_MODULES[name])
    if name not in _REGISTRY:
        raise UnknownModelError(f"unknown model {name!r}; available: {', '.join(available_models())}")
    return _REGISTRY[name]


def create_model(name: str, **params) -> CategorizerModel:
    cls = get_model_class(name)
    # A numpy number (C from np.logspace, an epoch count from np.arange) as the Python number it
    # stands for: the models' checks refused np.float32(0.5) as "not a positive number", and a
    # manifest could not hold it as JSON.
    params = {key: value.item() if isinstance(value, np.generic) else value for key, value in params.items()}
    try:
        return cls(**params)
    except TypeError as exc:
        raise UnknownModelError(f"model {name!r}: {exc}") from None


__all__ = ["CategorizerModel", "FitContext", "available_models", "create_model", "get_model_class", "register"]
