"""The contract every registered model keeps (scikit-learn's parametrize_with_checks idea).

A new model is tested by being registered: it runs through fit, predict,
save, load and predict-again on a tiny catalog of each label format.
"""

import numpy as np
import pytest

from prodcat import Categorizer
from prodcat.models import available_models, get_model_class
from tiny_bert import tiny_checkpoint
from tiny_catalogs import FORMATS, tiny_frame, tiny_image_frame

# Small settings so neural models train in seconds; models without an entry use defaults.
FAST_PARAMS: dict[str, dict] = {}
# word n-grams only: on 96 products the character n-grams of "red" / "blue" drown in those of the other words
FAST_PARAMS["bow"] = {"dim": 16, "epochs": 30, "batch_size": 8, "lr": 0.05, "minn": 0, "num_threads": 1}
# a 2-layer, 32-wide BERT built in code (random weights: hence the high learning rates)
FAST_PARAMS["bert"] = {"checkpoint": tiny_checkpoint(), "epochs": 12, "lr": 3e-3, "head_lr": 3e-3, "batch_size": 16,
                      "num_threads": 1}  # one thread: a tiny network only loses time to threading
# word models: tiny networks, one thread, no dropout; small batches and high lrs learn 70 products in 15 epochs
FAST_PARAMS["lstm"] = {"embedding_dim": 32, "hidden_size": 32, "dense_size": 32, "dropout": 0.0,
                       "epochs": 15, "batch_size": 8, "lr": 2e-2, "num_threads": 1}
FAST_PARAMS["cnn"] = {"embedding_dim": 32, "filters": 32, "kernel_sizes": [1, 2], "dropout": 0.0,
                      "epochs": 15, "batch_size": 8, "lr": 2e-2, "num_threads": 1}
FAST_PARAMS["transformer"] = {"d_model": 32, "num_heads": 2, "feedforward_size": 64, "dropout": 0.1,
                              "epochs": 15, "batch_size": 8, "lr": 5e-3, "num_threads": 1}
# image models: 24-px photos whose colours tell the classes apart, tiny networks
FAST_PARAMS["image-cnn"] = {"image_size": 16, "width": 0.25, "epochs": 6, "batch_size": 8, "lr": 1e-2,
                            "dropout": 0.0, "num_threads": 1}
FAST_PARAMS["image-resnet"] = dict(FAST_PARAMS["image-cnn"])
# the ImageNet backbone fixed, so a new head learns 24-px colour tiles in a few steps
FAST_PARAMS["image-pretrained"] = {"image_size": 32, "epochs": 8, "batch_size": 16, "lr": 3e-2,
                                   "freeze_layers": -1, "augment": False, "num_threads": 1}
# a text model and an image model: the multimodal case the ensemble exists for
FAST_PARAMS["ensemble"] = {"members": ["tfidf-linear", "image-cnn"], "method": "stacking", "folds": 2,
                           "member_params": {"image-cnn": FAST_PARAMS["image-cnn"]}}

CASES = [
    pytest.param(name, fmt, id=f"{name}-{fmt}")
    for name in available_models()
    for fmt in FORMATS
    if fmt in get_model_class(name).label_formats
]


@pytest.mark.parametrize("name, label_format", CASES)
def test_fit_predict_save_load_predict_again(name, label_format, tmp_path):
    params = FAST_PARAMS.get(name)
    if get_model_class(name)(**(params or {})).reads_images:
        frame = tiny_image_frame(tmp_path / "photos")
        images = {"image_col": "image", "image_root": str(tmp_path / "photos")}
    else:
        frame, images = tiny_frame(), {}
    clf = Categorizer(model=name, params=params, quiet=True, seed=1, **FORMATS[label_format], **images)
    clf.fit(frame)

    new = frame.drop(columns=["category", "leaf", "tags"]).head(20)
    proba = clf.predict_proba(new)
    assert proba.shape == (20, len(clf.classes_))
    assert np.isfinite(proba.to_numpy()).all()
    assert ((proba.to_numpy() >= 0) & (proba.to_numpy() <= 1)).all()
    if label_format != "multi":
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)

    predictions = clf.predict(new)
    assert len(predictions) == 20
    # The tiny catalog is easy: a working model gets most of it right.
    assert clf.metrics_["test"]["macro_f1"] >= 0.8

    clf.save(tmp_path / "model")
    loaded = Categorizer.load(tmp_path / "model")
    np.testing.assert_allclose(loaded.predict_proba(new).to_numpy(), proba.to_numpy(), atol=1e-6)
    assert loaded.predict(new) == predictions
    assert loaded.classes_ == clf.classes_


@pytest.mark.parametrize("name", available_models())
def test_params_are_plain_data(name):
    import json

    model = get_model_class(name)()
    json.dumps(model.get_params())
