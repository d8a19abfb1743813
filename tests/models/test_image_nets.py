"""image-cnn / image-resnet and their base ImageTorchModel: learning, saving as data, bad images, augmentation.

The images are coloured squares on white made here (16-24 px); the networks
are a quarter wide and train for 3 epochs, so each fit takes about a second.
Accuracy on real photos is measured by benchmarks, not here.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from prodcat.catalog.products import Products
from prodcat.errors import ConfigError
from prodcat.labels import LabelSpace
from prodcat.models import FitContext, get_model_class
from prodcat.models.image_base import ImageNetwork, ImageTorchModel
from prodcat.models.image_nets import ImageCNNModel, ImageCNNNet, ImageResNetModel, ImageResNetNet
from prodcat.training import Callback

QUIET = FitContext(device="cpu", quiet=True)
TINY = {"image_size": 16, "width": 0.25, "epochs": 3, "batch_size": 8, "lr": 1e-2, "dropout": 0.0, "num_threads": 1}
SPACE = LabelSpace("single", ["blue", "red"])  # class 0 blue, 1 red
BLUE, RED = 0, 1
MODELS = {"image-cnn": ImageCNNModel, "image-resnet": ImageResNetModel}


def square_photo(colour_class: int, rng: np.random.Generator, size: int = 24) -> Image.Image:
    """A red or blue square of random size, place and shade on a white background."""
    base = np.array([210, 40, 40]) if colour_class == RED else np.array([40, 40, 210])
    colour = tuple(int(v) for v in np.clip(base + rng.integers(-35, 36, 3), 0, 255))
    image = Image.new("RGB", (size, size), (255, 255, 255))
    side = int(rng.integers(size // 2, size - 2))
    left, top = (int(v) for v in rng.integers(0, size - side + 1, 2))
    image.paste(colour, (left, top, left + side, top + side))
    return image


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def squares(n: int, seed: int, folder=None) -> tuple[Products, np.ndarray]:
    """n products alternating blue / red; every third one a file in `folder` (JPEG), the rest PNG bytes."""
    rng = np.random.default_rng(seed)
    refs, y = [], []
    for i in range(n):
        colour = i % 2
        image = square_photo(colour, rng)
        if folder is not None and i % 3 == 0:
            path = folder / f"{seed}-{i}.jpg"
            image.save(path, quality=95)
            refs.append(str(path))
        else:
            refs.append(encoded(image))
        y.append(colour)
    return Products(texts=[""] * n, images=refs), np.array(y, dtype=np.int64)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    return {"train": squares(64, 0, folder), "valid": squares(16, 1, folder), "test": squares(40, 2, folder)}


@pytest.fixture(scope="module", params=sorted(MODELS))
def fitted(request, data):
    model = MODELS[request.param](**TINY)
    return model.fit(*data["train"], SPACE, valid=data["valid"], seed=0, context=QUIET)


def accuracy(model, products, y) -> float:
    return float((model.predict_proba(products).argmax(axis=1) == y).mean())


# --- registry and settings ------------------------------------------------------------


def test_registered_under_their_names():
    assert get_model_class("image-cnn") is ImageCNNModel
    assert get_model_class("image-resnet") is ImageResNetModel


def test_settings_have_image_defaults_and_are_checked():
    params = ImageResNetModel().get_params()
    assert (params["image_size"], params["augment"], params["batch_size"], params["patience"]) == (96, True, 32, 3)
    json.dumps(params)
    assert ImageCNNModel(sampler="balanced").settings["sampler"] == "balanced"
    for bad in ({"image_size": 8}, {"image_size": "big"}, {"width": 0}, {"dropout": 1.0}, {"augment": "yes"},
                {"colour": True}):
        with pytest.raises(ConfigError):
            ImageCNNModel(**bad)


# --- learning, saving -----------------------------------------------------------------


def test_learns_the_colour_of_held_out_squares(fitted, data):
    assert accuracy(fitted, *data["test"]) > 0.9
    proba, mask = fitted.predict_proba_masked(data["test"][0])
    assert proba.shape == (40, 2) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert mask.dtype == bool and mask.all()
    assert fitted.image_stats_.read == 40 and fitted.image_stats_.failed == 0
    assert fitted.train_image_stats_.read == 64 and fitted.valid_image_stats_.read == 16


def test_save_and_load_as_plain_data_gives_identical_probabilities(fitted, data):
    state, arrays = fitted.get_state()
    state = json.loads(json.dumps(state))  # plain JSON
    assert all(isinstance(a, np.ndarray) for a in arrays.values())
    assert "missing_logits" in arrays and all(k == "missing_logits" or k.startswith("net.") for k in arrays)
    assert state["preprocessor"]["train_images"]["read"] == 64
    loaded = type(fitted).from_state(fitted.get_params(), state, arrays, SPACE)
    products = data["test"][0]
    np.testing.assert_allclose(loaded.predict_proba(products), fitted.predict_proba(products), atol=1e-6)
    assert np.array_equal(loaded.predict_proba_masked(products)[1], fitted.predict_proba_masked(products)[1])


def test_same_seed_same_model_other_seed_other_model(data):
    products, y = data["train"]
    probe = data["test"][0]
    runs = [ImageCNNModel(**{**TINY, "epochs": 1}).fit(products, y, SPACE, seed=s, context=QUIET) for s in (3, 3, 4)]
    a, b, c = (m.predict_proba(probe) for m in runs)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


# --- bad images ------------------------------------------------------------------------


def test_bad_images_do_not_stop_training_and_show_in_the_mask(data, tmp_path, capsys):
    products, y = data["train"]
    truncated = encoded(square_photo(RED, np.random.default_rng(9)), "JPEG")[:200]
    bad = [None, str(tmp_path / "gone.jpg"), b"not an image", truncated, "https://example.com/p.jpg", None]
    # every product without a usable image is red: the fallback learns that
    train = Products(texts=[""] * (len(products) + len(bad)), images=list(products.images) + bad)
    train_y = np.concatenate([y, np.full(len(bad), RED)])
    model = ImageCNNModel(**TINY).fit(train, train_y, SPACE, valid=data["valid"], seed=0,
                                      context=FitContext(device="cpu", quiet=False))
    note = capsys.readouterr().err
    assert "training images: 4 of 68 images could not be used: 2 missing, 2 unreadable" in note
    assert "validation images: all 16 images could be read" in note
    stats = model.train_image_stats_
    assert (stats.read, stats.absent, stats.missing, stats.unreadable) == (64, 2, 2, 2)

    test_products, test_y = data["test"]
    probe = Products(texts=[""] * (len(test_products) + len(bad)), images=list(test_products.images) + bad)
    proba, mask = model.predict_proba_masked(probe)
    assert mask.tolist() == [True] * len(test_products) + [False] * len(bad)
    assert (proba[mask].argmax(axis=1) == test_y).mean() > 0.9
    fallback = proba[~mask]
    np.testing.assert_allclose(fallback, np.broadcast_to(fallback[0], fallback.shape), atol=1e-6)
    assert (fallback.argmax(axis=1) == RED).all()
    assert model.image_stats_.failed == 4 and model.image_stats_.absent == 2
    np.testing.assert_allclose(model.predict_proba(probe), proba)


def test_products_without_an_image_field(fitted, data):
    with pytest.raises(ConfigError, match="image field"):
        ImageCNNModel(**TINY).fit(Products.from_texts(["a", "b"]), np.array([0, 1]), SPACE, context=QUIET)
    proba, mask = fitted.predict_proba_masked(Products.from_texts(["a", "b", "c"]))
    assert not mask.any() and proba.shape == (3, 2)
    assert fitted.image_stats_.absent == 3


def test_training_with_no_usable_image_at_all_is_a_config_error(tmp_path):
    nowhere = Products(texts=["", ""], images=[str(tmp_path / "a.jpg"), "https://example.com/b.jpg"])
    with pytest.raises(ConfigError, match="image file that exists.*a.jpg"):
        ImageCNNModel(**TINY).fit(nowhere, np.array([0, 1]), SPACE, context=QUIET)
    with pytest.raises(ConfigError, match="none of the 2 training products has an image"):
        ImageCNNModel(**TINY).fit(Products(texts=["", ""], images=[None, None]), np.array([0, 1]), SPACE,
                                  context=QUIET)


# --- augmentation ---------------------------------------------------------------------


def test_augmentation_is_reproducible_from_torch_seed(fitted, data):
    examples = fitted.encode(data["test"][0].take(range(8)))

    def train_batch(seed):
        torch.manual_seed(seed)
        return fitted.collate_train(examples)

    a, b, c = train_batch(5), train_batch(5), train_batch(6)
    assert a["pixels"].shape == (8, 3, 16, 16) and a["present"].all()
    torch.testing.assert_close(a["pixels"], b["pixels"], rtol=0, atol=0)
    assert not torch.equal(a["pixels"], c["pixels"])
    plain = fitted.collate(examples)
    torch.testing.assert_close(plain["pixels"], fitted.collate(examples)["pixels"], rtol=0, atol=0)
    assert not torch.equal(plain["pixels"], a["pixels"])

    without = type(fitted)(**{**TINY, "augment": False})
    without.normalization_ = fitted.normalization_
    torch.manual_seed(5)
    torch.testing.assert_close(without.collate_train(examples)["pixels"], plain["pixels"], rtol=0, atol=0)


class InterruptAfter(Callback):
    def __init__(self, steps):
        self.steps = steps

    def on_step_end(self, trainer, loss):
        if trainer.state.global_step == self.steps:
            raise KeyboardInterrupt


class FirstStep(Callback):
    def on_train_begin(self, trainer):
        self.step = trainer.state.global_step


def test_an_interrupted_augmented_run_resumes_to_the_same_model(data, tmp_path):
    products, y = data["train"]
    params = {**TINY, "epochs": 2, "checkpoint_every_steps": 3}
    probe = data["test"][0]
    straight = ImageResNetModel(**params).fit(products, y, SPACE, data["valid"], seed=2, context=QUIET)

    context = FitContext(device="cpu", quiet=True, checkpoint_dir=tmp_path / "ckpt")
    interrupted = ImageResNetModel(**params)
    interrupted.callbacks = [InterruptAfter(11)]  # mid epoch 2 (8 steps an epoch); last checkpoint at step 9
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(products, y, SPACE, data["valid"], seed=2, context=context)
    resumed, first = ImageResNetModel(**params), FirstStep()
    resumed.callbacks = [first]
    resumed.fit(products, y, SPACE, data["valid"], seed=2,
                context=FitContext(device="cpu", quiet=True, checkpoint_dir=tmp_path / "ckpt", resume=True))
    assert first.step == 9  # it did resume: augmentation seeds come from the restored torch RNG
    np.testing.assert_allclose(resumed.predict_proba(probe), straight.predict_proba(probe), atol=1e-5)


# --- the network wrapper and the networks ----------------------------------------------------


class Recorder(torch.nn.Module):
    """Logits = mean pixel per class; remembers the batch sizes it saw."""

    lr_scales = {"backbone.": 0.1}

    def __init__(self, n_classes):
        super().__init__()
        self.backbone = torch.nn.Linear(3, n_classes)
        self.seen: list[int] = []

    def forward(self, pixels):
        self.seen.append(pixels.shape[0])
        return self.backbone(pixels.mean(dim=(2, 3)))


def test_image_network_substitutes_missing_logits_and_spares_the_net_blank_rows():
    network = ImageNetwork(Recorder(3), 3)
    assert network.lr_scales == {"net.backbone.": 0.1}
    torch.testing.assert_close(network.missing_logits.detach(), torch.zeros(3))
    with torch.no_grad():
        network.missing_logits.copy_(torch.tensor([1.0, 2.0, 3.0]))
    pixels = torch.randn(4, 3, 8, 8)
    present = torch.tensor([True, False, True, False])
    logits = network(pixels, present)
    assert network.net.seen == [2]
    torch.testing.assert_close(logits[1], torch.tensor([1.0, 2.0, 3.0]))
    torch.testing.assert_close(logits[[0, 2]], network.net(pixels[[0, 2]]))
    torch.testing.assert_close(network(pixels, torch.zeros(4, dtype=torch.bool)), torch.tensor([[1.0, 2.0, 3.0]] * 4))
    # the fallback learns from the rows that use it
    network(pixels, present).sum().backward()
    torch.testing.assert_close(network.missing_logits.grad, torch.full((3,), 2.0))


def test_a_training_batch_with_one_usable_photo_at_a_small_size_trains():
    # At 16 px the residual net's last feature map is 1x1: batch norm in training saw one value per
    # channel and torch raised ValueError, stopping the run (a last batch of one product, or a batch
    # whose other products have no photo).
    torch.manual_seed(0)
    network = ImageNetwork(ImageResNetNet(3, widths=(8, 8, 16, 16)), 3).train()
    logits = network(torch.randn(3, 3, 16, 16), torch.tensor([False, True, False]))
    logits.sum().backward()
    assert logits.shape == (3, 3) and network.net.training
    assert network.net.output.weight.grad is not None

    model = ImageResNetModel(**{**TINY, "batch_size": 9, "epochs": 1})  # 64 products: a last batch of one
    model.fit(*squares(64, 0), SPACE, seed=0, context=QUIET)
    assert model.network is not None


@pytest.mark.parametrize("net_class", [ImageCNNNet, ImageResNetNet])
@pytest.mark.parametrize("side", [16, 40, 128])
def test_networks_take_any_square_size(net_class, side):
    net = net_class(7, widths=(8, 8, 16, 16)).eval()
    assert net(torch.zeros(2, 3, side, side)).shape == (2, 7)


def test_subclass_writes_only_its_network(data):
    class Pooled(ImageTorchModel):
        DEFAULTS = {"image_size": 16, "epochs": 2, "lr": 0.05, "num_threads": 1, "batch_size": 8}

        def build_image_network(self, n_classes):
            return torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, n_classes))

        def normalization(self):
            return (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)

    model = Pooled(augment=False).fit(*data["train"], SPACE, context=QUIET)
    assert model.normalization_ == ([0.5] * 3, [0.25] * 3)
    assert model.settings["image_size"] == 16 and "max_length" in model.settings
    state, arrays = model.get_state()
    assert state["preprocessor"]["mean"] == [0.5] * 3
    loaded = Pooled.from_state(model.get_params(), state, arrays, SPACE)
    np.testing.assert_allclose(loaded.predict_proba(data["test"][0]), model.predict_proba(data["test"][0]), atol=1e-6)


def test_multi_label_images(data):
    products, y = data["train"]
    space = LabelSpace("multi", ["blue", "red", "square"])
    indicator = np.zeros((len(y), 3), dtype=np.uint8)
    indicator[np.arange(len(y)), y] = 1
    indicator[:, 2] = 1
    model = ImageCNNModel(**{**TINY, "epochs": 1}).fit(products, indicator, space, context=QUIET)
    proba, mask = model.predict_proba_masked(Products(texts=["", ""], images=[products.images[0], None]))
    assert proba.shape == (2, 3) and mask.tolist() == [True, False]
