"""image-pretrained: EfficientNet-Lite0 or any transformers image checkpoint, fine-tuned and saved self-contained.

Images are tiny (32 px) coloured squares written by the test; the
transformers checkpoint is a random 1-layer ViT saved into tmp_path, so every
test trains in seconds and offline.
"""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest
import torch
from PIL import Image

from prodcat import Categorizer
from prodcat.catalog.products import Products
from prodcat.errors import ConfigError, ModelDirError
from prodcat.labels import LabelSpace
from prodcat.models import create_model, get_model_class
from prodcat.models.efficientnet_lite import MEAN, N_BLOCKS, STD, imagenet_state_dict
from prodcat.models import torch_base
from prodcat.models.image_pretrained import DEFAULT_IMAGE_SIZE, PROBE_C, PROBE_CS, ImagePretrained
from tiny_bert import tiny_checkpoint
from tiny_catalogs import FORMATS, tiny_image_frame

COLOURS = {"red": (210, 40, 40), "green": (40, 170, 40), "blue": (40, 50, 210)}
# Few steps on 32-pixel squares: a high learning rate for the new head.
FAST = {"image_size": 32, "epochs": 2, "lr": 3e-3, "batch_size": 16, "num_threads": 1}
VIT_MEAN, VIT_STD = [0.4, 0.45, 0.5], [0.25, 0.3, 0.35]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """36 products (12 per colour) with a 40-pixel photo each; product 5 has none."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    refs, labels = [], []
    for i in range(36):
        name = list(COLOURS)[i % 3]
        pixels = np.empty((40, 40, 3), np.float32)
        pixels[:] = COLOURS[name]
        pixels += rng.normal(scale=15, size=pixels.shape)
        path = folder / f"{i}.png"
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(path)
        refs.append(str(path))
        labels.append((name,))
    refs[5] = None
    space = LabelSpace.from_labels(labels, "single")
    return Products(texts=[""] * 36, images=refs), space.encode(labels), space


def fitted(photos, **params) -> ImagePretrained:
    products, y, space = photos
    train, valid = np.arange(24), np.arange(24, 36)
    return create_model("image-pretrained", **{**FAST, **params}).fit(
        products.take(train), y[train], space, (products.take(valid), y[valid]), context=None
    )


def reloaded(model: ImagePretrained) -> ImagePretrained:
    state, arrays = model.get_state()
    json.dumps(state)  # plain JSON
    assert all(isinstance(a, np.ndarray) for a in arrays.values())
    return get_model_class("image-pretrained").from_state(model.get_params(), state, arrays, model.label_space)


@pytest.fixture
def tiny_vit(tmp_path):
    """A random 1-layer ViT checkpoint (32-px input, 5 labels) with a preprocessor_config.json."""
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    config = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=64, num_labels=5)
    directory = tmp_path / "tiny-vit"
    ViTForImageClassification(config).save_pretrained(directory)
    processor = {"image_processor_type": "ViTImageProcessor", "do_normalize": True, "image_mean": VIT_MEAN,
                 "image_std": VIT_STD, "size": {"height": 32, "width": 32}}
    (directory / "preprocessor_config.json").write_text(json.dumps(processor))
    return directory


# --- EfficientNet-Lite0 (the default backbone) --------------------------------


def test_fit_predict_and_reload_give_identical_probabilities(photos):
    products, y, _ = photos
    model = fitted(photos)
    proba, mask = model.predict_proba_masked(products)
    assert proba.shape == (36, 3) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert mask[5] == False and mask.sum() == 35  # noqa: E712 (numpy bool)
    state, _ = model.get_state()
    assert state["network_config"] == {"backbone": "efficientnet-lite0"}
    assert state["preprocessor"]["mean"] == list(MEAN) and state["preprocessor"]["std"] == list(STD)
    again = reloaded(model)
    assert np.array_equal(again.predict_proba(products), proba)


def test_the_backbone_starts_from_imagenet_and_the_head_is_new():
    model = create_model("image-pretrained", image_size=32)
    model.network_config_ = None
    network = model.build_network(4)
    shipped = imagenet_state_dict()
    weights = network.state_dict()
    assert torch.equal(weights["net.model._blocks.7._expand_conv.weight"], shipped["_blocks.7._expand_conv.weight"])
    assert torch.equal(weights["net.model._bn1.running_var"], shipped["_bn1.running_var"])
    assert weights["net.model._fc.weight"].shape == (4, 1280)
    # the new head learns at lr, the pretrained backbone at lr * backbone_lr_scale
    assert network.lr_scales == {"net.model.": 0.1, "net.model._fc.": 1.0}
    assert network.net.model.frozen_blocks == 5  # the default: the stem and the first 3 stages
    assert not network.net.model._blocks[4]._project_conv.weight.requires_grad
    assert network.net.model._blocks[5]._project_conv.weight.requires_grad


def test_image_size_none_takes_the_backbones_own_and_is_saved():
    model = create_model("image-pretrained")
    assert model.get_params()["image_size"] is None
    model.network_config_ = None
    model.build_network(2)
    assert model.settings["image_size"] == DEFAULT_IMAGE_SIZE == model.get_params()["image_size"]


def test_frozen_blocks_keep_their_imagenet_weights_through_training(photos):
    model = fitted(photos, freeze_layers=3, epochs=1)
    shipped = imagenet_state_dict()
    weights = {k.removeprefix("net.model."): v for k, v in model.network.state_dict().items()}
    frozen = [k for k in shipped if k.startswith(("_conv_stem.", "_bn0.", "_blocks.0.", "_blocks.1.", "_blocks.2."))]
    assert all(torch.equal(weights[k], shipped[k]) for k in frozen)  # weights and batch-norm statistics
    assert not torch.equal(weights["_blocks.3._expand_conv.weight"], shipped["_blocks.3._expand_conv.weight"])


def test_a_zero_backbone_scale_trains_only_the_head(photos):
    model = fitted(photos, backbone_lr_scale=0.0, epochs=1, augment=False)
    shipped = imagenet_state_dict()
    weights = {k.removeprefix("net.model."): v for k, v in model.network.state_dict().items()}
    convs = [k for k in shipped if k.endswith("conv.weight") or k == "_conv_head.weight"]
    assert all(torch.equal(weights[k], shipped[k]) for k in convs)


# --- the whole EfficientNet-Lite0 backbone frozen: the head in closed form ------------


@pytest.fixture
def no_trainer(monkeypatch):
    """The SGD trainer, made to fail if anything builds it."""
    class Refused:
        def __init__(self, *args, **kwargs):
            raise AssertionError("the SGD trainer was built")

    monkeypatch.setattr(torch_base, "Trainer", Refused)


def test_the_whole_backbone_frozen_fits_the_head_without_the_trainer(photos, no_trainer):
    products, y, _ = photos
    model = fitted(photos, freeze_layers=-1)
    assert model.fits_head_in_closed_form()
    [row] = model.history_
    assert row["C"] in PROBE_CS and [r["C"] for r in row["grid"]] == list(PROBE_CS)
    assert row["val_macro_f1"] == max(r["val_macro_f1"] for r in row["grid"])
    assert model.best_epoch_ == 1 and model.calibration["fitted_on"] != "none (no validation split)"
    shipped = imagenet_state_dict()
    weights = model.network.state_dict()
    assert torch.equal(weights["net.model._blocks.15._bn2.running_mean"], shipped["_blocks.15._bn2.running_mean"])
    assert torch.equal(weights["net.model._conv_head.weight"], shipped["_conv_head.weight"])
    # the head standardizes with the training photos' statistics, saved as plain arrays with the weights
    state, arrays = model.get_state()
    assert state["network_config"] == {"backbone": "efficientnet-lite0", "head": "probe"}
    assert arrays["net.model._fc.mean"].shape == arrays["net.model._fc.scale"].shape == (1280,)
    assert arrays["net.model._fc.linear.weight"].shape == (3, 1280)
    assert arrays["net.model._fc.mean"].any() and not np.all(arrays["net.model._fc.scale"] == 1)
    assert (model.predict_proba(products).argmax(axis=1) == y).mean() > 0.9  # chance: 1/3
    # what fit counted while reading the photos: 23 of 24 training ones (product 5 has none)
    assert model.train_image_stats_.to_dict()["read"] == 23


def test_the_closed_form_head_is_deterministic_and_reloads_exactly(photos):
    products, _, _ = photos
    model, again = fitted(photos, freeze_layers=-1), fitted(photos, freeze_layers=-1)
    _, first = model.get_state()
    _, second = again.get_state()
    assert all(np.array_equal(first[k], second[k]) for k in first)
    proba = model.predict_proba(products)
    assert np.array_equal(again.predict_proba(products), proba)
    assert np.array_equal(reloaded(model).predict_proba(products), proba)


def test_without_a_validation_split_the_head_takes_the_default_c(photos, no_trainer):
    products, y, space = photos
    model = create_model("image-pretrained", **FAST, freeze_layers=-1).fit(products, y, space)
    assert model.history_[0]["C"] == PROBE_C and "grid" not in model.history_[0]
    assert model.best_epoch_ is None and model.calibration["fitted_on"] == "none (no validation split)"
    assert (model.predict_proba(products).argmax(axis=1) == y).mean() > 0.9


def test_a_product_without_a_photo_gets_the_training_prior(photos, no_trainer):
    products, y, space = photos
    # 8 red, 8 green, 2 blue training products: the prior is far from uniform
    train = np.array([i for i in range(24) if y[i] != space.classes.index("blue")] + [2, 26])
    model = create_model("image-pretrained", **FAST, freeze_layers=-1).fit(products.take(train), y[train], space)
    counts = np.bincount(y[train], minlength=3)
    expected = np.log((counts + 1) / (len(train) + 3))
    assert np.allclose(model.network.missing_logits.detach().numpy(), expected)
    proba, mask = model.predict_proba_masked(Products(texts=["", ""], images=[None, products.images[0]]))
    assert mask.tolist() == [False, True]
    assert np.allclose(proba[0], np.exp(expected) / np.exp(expected).sum(), atol=1e-6)


def test_multi_label_heads_are_fitted_in_closed_form_too(photos, no_trainer):
    products, y, space = photos
    labels = [(name, "warm") if name == "red" else (name,) for name in np.asarray(space.classes)[y]]
    multi = LabelSpace.from_labels(labels, "multi")
    targets = multi.encode(labels)
    train, valid = np.arange(24), np.arange(24, 36)
    model = create_model("image-pretrained", **FAST, freeze_layers=-1).fit(
        products.take(train), targets[train], multi, (products.take(valid), targets[valid]))
    assert "C" in model.history_[0]
    decided = model.predict_proba(products) > 0.5
    has_photo = np.array([ref is not None for ref in products.images])
    assert (decided == targets.astype(bool)).all(axis=1)[has_photo].mean() > 0.9


def test_unreadable_training_photos_are_refused(photos, tmp_path):
    _, y, space = photos
    refs = []
    for i in range(6):
        (tmp_path / f"{i}.png").write_bytes(b"not a photo")
        refs.append(str(tmp_path / f"{i}.png"))
    with pytest.raises(ConfigError, match="none of the 6 training photos can be used"):
        create_model("image-pretrained", **FAST, freeze_layers=-1).fit(
            Products(texts=[""] * 6, images=refs), y[:6], space)


def test_a_frozen_transformers_checkpoint_still_trains_its_head_by_sgd(photos, tiny_vit):
    model = fitted(photos, checkpoint=str(tiny_vit), freeze_layers=-1, epochs=1)
    assert not model.fits_head_in_closed_form()
    assert "train_loss" in model.history_[0] and "C" not in model.history_[0]


@pytest.mark.parametrize(
    "params, fault",
    [
        ({"freeze_layers": -2}, "freeze_layers"),
        ({"freeze_layers": 1.5}, "freeze_layers"),
        ({"backbone_lr_scale": -0.1}, "backbone_lr_scale"),
        ({"drop_path_rate": 1.0}, "drop_path_rate"),
        ({"checkpoint": " "}, "checkpoint"),
        ({"image_size": 8}, "image_size"),
        ({"backbone": "vgg"}, "backbone"),
    ],
)
def test_bad_settings_are_named(params, fault):
    with pytest.raises(ConfigError, match=fault):
        create_model("image-pretrained", **params)


def test_freezing_more_blocks_than_the_backbone_has_is_named(photos):
    with pytest.raises(ConfigError, match=f"freeze_layers=17 but EfficientNet-Lite0 has {N_BLOCKS} blocks"):
        fitted(photos, freeze_layers=17)


# --- any transformers checkpoint --------------------------------------------------


def test_a_transformers_checkpoint_trains_saves_and_loads_without_its_directory(photos, tiny_vit, tmp_path):
    products, y, _ = photos
    model = fitted(photos, checkpoint=str(tiny_vit), image_size=None)
    state, arrays = model.get_state()
    config = state["network_config"]
    assert config["backbone"] == "transformers" and config["config"]["model_type"] == "vit"
    assert "id2label" not in config["config"] and "_name_or_path" not in config["config"]
    # mean, std and size come from the checkpoint's preprocessor_config.json
    assert config["mean"] == VIT_MEAN and state["preprocessor"]["std"] == VIT_STD
    assert model.get_params()["image_size"] == 32 and not config["interpolate_pos_encoding"]
    assert arrays["net.model.classifier.weight"].shape == (3, 32)
    # a checkpoint's defaults: nothing frozen, the backbone at lr / 100
    assert model.network.net.frozen == []
    assert model.network.lr_scales == {"net.model.": 0.01, "net.model.classifier.": 1.0}
    proba = model.predict_proba(products)
    shutil.rmtree(tiny_vit)
    again = reloaded(model)
    assert np.array_equal(again.predict_proba(products), proba)


def test_a_checkpoint_model_directory_loads_through_the_facade_without_the_checkpoint(tiny_vit, tmp_path):
    frame = tiny_image_frame(tmp_path / "photos", n_per_class=6, size=32)
    csv = tmp_path / "catalog.csv"
    frame.to_csv(csv, index=False)
    params = {**FAST, "checkpoint": str(tiny_vit)}
    clf = Categorizer(model="image-pretrained", image_col="image", image_root="photos", params=params, quiet=True,
                      **FORMATS["single"]).fit(csv)
    model_dir = clf.save(tmp_path / "model")
    proba = clf.predict_proba(frame.head(5))
    shutil.rmtree(tiny_vit)
    loaded = Categorizer.load(model_dir, quiet=True)
    assert np.array_equal(loaded.predict_proba(frame.head(5)).to_numpy(), proba.to_numpy())


def test_a_vit_at_another_size_interpolates_and_frozen_layers_stay_fixed(photos, tiny_vit):
    from safetensors.torch import load_file

    products, _, _ = photos
    model = fitted(photos, checkpoint=str(tiny_vit), image_size=48, freeze_layers=1)
    config = model.get_state()[0]["network_config"]
    assert config["interpolate_pos_encoding"]
    network = model.network.net
    assert network.frozen == ["vit.embeddings", "vit.layers.0"]  # the stem and the first of its layers
    original = load_file(tiny_vit / "model.safetensors")
    weights = network.model.state_dict()
    frozen = [k for k in original if k.startswith(tuple(f"{name}." for name in network.frozen))]
    assert frozen and all(torch.equal(weights[k], original[k]) for k in frozen)
    assert not torch.equal(weights["vit.layernorm.weight"], original["vit.layernorm.weight"])
    assert np.array_equal(reloaded(model).predict_proba(products), model.predict_proba(products))


def test_a_hub_id_offline_fails_fast_with_one_clear_line(photos, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(ConfigError) as error:
        fitted(photos, checkpoint="google/vit-base-patch16-224")
    assert time.perf_counter() - started < 10
    message = str(error.value)
    assert message.startswith("image-pretrained: ") and "'google/vit-base-patch16-224'" in message
    assert "cannot be reached" in message and "\n" not in message


def test_a_checkpoint_that_is_not_an_image_model_is_named(photos):
    with pytest.raises(ConfigError, match=r"image-pretrained: cannot load checkpoint directory"):
        fitted(photos, checkpoint=str(tiny_checkpoint()))


def test_a_missing_checkpoint_directory_is_named(photos):
    with pytest.raises(ConfigError, match=r"checkpoint directory './no/such/vit' does not exist"):
        fitted(photos, checkpoint="./no/such/vit")


def test_a_saved_image_size_past_the_largest_is_refused_when_it_loads():
    # image_size None takes the saved size as it is: at 10**5 each photo would be resized to
    # 30 billion numbers, from one edited number in model_state.json.
    model = create_model("image-pretrained")
    state = {"image_size": 10**5, "mean": [0.5] * 3, "std": [0.25] * 3}
    with pytest.raises(ModelDirError, match="saved image_size must be an integer between 16 and 1024, got 100000"):
        model.load_preprocessor(state)
