"""bert: checkpoints offline, freezing, text pairs, max_length from data, self-contained saving.

Everything trains the tiny checkpoint of `tiny_bert` (2 layers, 32 wide) so
the file runs in seconds; one slow test proves the real default (MiniLM)
loads and trains offline.
"""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest
import torch

from prodcat import Categorizer
from prodcat.catalog.products import Products
from prodcat.errors import ConfigError
from prodcat.labels import LabelSpace
from prodcat.models import create_model
from prodcat.models.bert import MAX_AUTO_LENGTH, BertClassifier, encoder_layers
from tiny_bert import N_LAYERS, tiny_checkpoint
from tiny_catalogs import FORMATS, tiny_frame

# The tiny checkpoint starts from random weights: it needs a high learning rate.
TINY = {"epochs": 12, "lr": 3e-3, "head_lr": 3e-3, "batch_size": 16, "patience": 12, "num_threads": 1}


def tiny_products(frame=None) -> tuple[Products, np.ndarray, LabelSpace]:
    frame = tiny_frame() if frame is None else frame
    products = Products(
        texts=(frame["title"] + " " + frame["description"]).tolist(),
        fields={"title": frame["title"].tolist(), "description": frame["description"].tolist()},
    )
    labels = [(leaf,) for leaf in frame["leaf"]]
    space = LabelSpace.from_labels(labels, "single")
    return products, space.encode(labels), space


def prepared(**params) -> BertClassifier:
    """A bert model whose tokenizer was built from the tiny catalog (no training)."""
    model = create_model("bert", **{"checkpoint": tiny_checkpoint(), **params})
    model.build_preprocessor(tiny_products()[0])
    return model


# --- checkpoints ------------------------------------------------------------


def test_hub_id_without_network_fails_fast_with_one_clear_line():
    clf = Categorizer(model="bert", params={"checkpoint": "bert-base-uncased"}, quiet=True, **FORMATS["single"])
    started = time.perf_counter()
    with pytest.raises(ConfigError) as error:
        clf.fit(tiny_frame())
    assert time.perf_counter() - started < 10
    message = str(error.value)
    assert "'bert-base-uncased'" in message and "cannot be reached" in message and "local checkpoint directory" in message
    assert "\n" not in message


def test_missing_checkpoint_directory_is_named():
    model = create_model("bert", checkpoint="./no/such/checkpoint")
    with pytest.raises(ConfigError, match=r"checkpoint directory './no/such/checkpoint' does not exist"):
        model.build_preprocessor(tiny_products()[0])


def test_a_folder_that_is_no_transformers_checkpoint_is_one_complete_line(tmp_path):
    prodcat_model = tmp_path / "m_tfidf"
    prodcat_model.mkdir()
    (prodcat_model / "manifest.json").write_text("{}")
    (tmp_path / "photos").mkdir()
    for folder, fragment in ((prodcat_model, "is a prodcat model directory, not a transformers checkpoint"),
                             (tmp_path / "photos", "has no config.json, so it is not a transformers checkpoint")):
        model = create_model("bert", checkpoint=str(folder))
        with pytest.raises(ConfigError) as error:
            model.build_preprocessor(tiny_products()[0])
        assert str(error.value).startswith(f"bert: checkpoint directory {str(folder)!r} ") and fragment in str(error.value)


def test_a_loading_error_of_several_lines_is_kept_whole_on_one(tmp_path):
    from prodcat.models.bert import load_pretrained

    (tmp_path / "config.json").write_text("{}")

    class Failing:
        @staticmethod
        def from_pretrained(*args, **kwargs):
            raise ValueError("Couldn't instantiate the backend tokenizer from one of: \n(1) a file, \n(2) a slow one.")

    with pytest.raises(ConfigError) as error:
        load_pretrained(str(tmp_path), Failing)
    assert str(error.value) == (f"bert: cannot load checkpoint directory {str(tmp_path)!r}: Couldn't instantiate "
                                "the backend tokenizer from one of: (1) a file, (2) a slow one.")


@pytest.mark.parametrize(
    "params, fault",
    [
        ({"pooling": "max"}, "pooling"),
        ({"freeze_layers": -1}, "freeze_layers"),
        ({"max_length": 2}, "max_length"),
        ({"head_lr": 0}, "head_lr"),
        ({"text_pair": "yes"}, "text_pair"),
        ({"checkpoint": ""}, "checkpoint"),
        ({"tokens": 3}, "tokens"),
    ],
)
def test_bad_settings_name_the_setting(params, fault):
    with pytest.raises(ConfigError, match=fault):
        create_model("bert", **params)


# --- freezing ---------------------------------------------------------------


def test_frozen_parameters_do_not_train_and_the_rest_do():
    from transformers import AutoModel

    products, y, space = tiny_products()
    model = create_model("bert", checkpoint=tiny_checkpoint(), freeze_embeddings=True, freeze_layers=1, **TINY)
    model.fit(products, y, space, seed=0)
    trained = model.network.model
    pretrained = AutoModel.from_pretrained(tiny_checkpoint())

    for frozen in (trained.embeddings, encoder_layers(trained)[0]):
        assert all(not p.requires_grad for p in frozen.parameters())
    before = dict(pretrained.named_parameters())
    for name, param in trained.named_parameters():
        if name.startswith(("embeddings.", "encoder.layer.0.")):
            assert torch.equal(param, before[name]), name
    assert not torch.equal(encoder_layers(trained)[1].output.dense.weight, encoder_layers(pretrained)[1].output.dense.weight)
    assert all(p.requires_grad for p in encoder_layers(trained)[1].parameters())


def test_freezing_more_layers_than_the_checkpoint_has_is_a_clear_error():
    products, y, space = tiny_products()
    model = create_model("bert", checkpoint=tiny_checkpoint(), freeze_layers=N_LAYERS + 1, epochs=1)
    with pytest.raises(ConfigError, match=rf"freeze_layers={N_LAYERS + 1} but the checkpoint has only {N_LAYERS}"):
        model.fit(products, y, space)


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_the_head_learns_at_head_lr_and_the_encoder_at_lr(pooling):
    products, y, space = tiny_products()
    params = dict(checkpoint=tiny_checkpoint(), pooling=pooling, lr=1e-4, head_lr=2e-3, epochs=1,
                  batch_size=len(products), warmup_ratio=0.0, weight_decay=0.0, num_threads=1)
    # fit seeds torch before building the network: the same seed rebuilds its initial weights
    untrained = prepared(**params)
    torch.manual_seed(0)
    initial = untrained.build_network(space.n_classes)

    model = create_model("bert", **params)
    model.fit(products, y, space, seed=0)  # one Adam step: each weight moves by about its learning rate
    trained = model.network

    def largest_move(name: str) -> float:
        used = [net.get_parameter(name).detach() for net in (initial, trained)]
        return (used[1] - used[0]).abs().max().item()

    head = initial.head_parameter_names()
    assert head and all(largest_move(name) == pytest.approx(2e-3, rel=0.02) for name in head)
    encoder = encoder_layers(trained.model)[1].output.dense
    encoder_name = next(n for n, m in trained.named_modules() if m is encoder) + ".weight"
    assert largest_move(encoder_name) == pytest.approx(1e-4, rel=0.02)


# --- text pairs and lengths -------------------------------------------------


def test_title_and_description_are_a_text_pair_or_one_joined_text():
    products = tiny_products()[0].take([0])
    pair = prepared(text_pair=True).encode(products)[0]
    joined = prepared(text_pair=False).encode(products)[0]

    # A pair is [CLS] title [SEP] description [SEP], the second segment typed 1.
    title_tokens = len(prepared(text_pair=True)._tokenizer.encode(products.fields["title"][0], add_special_tokens=False))
    assert pair["type_ids"] == [0] * (title_tokens + 2) + [1] * (len(pair["ids"]) - title_tokens - 2)
    assert set(joined["type_ids"]) == {0}
    assert len(joined["ids"]) == len(pair["ids"]) - 1  # one [SEP] fewer

    # A catalog with one text field, or products given as bare texts, is read joined.
    one_field = create_model("bert", checkpoint=tiny_checkpoint(), text_pair=True)
    one_field.build_preprocessor(Products.from_texts(products.texts))
    assert one_field.encode(products)[0]["ids"] == joined["ids"]
    assert prepared(text_pair=True).encode(Products.from_texts(products.texts))[0]["ids"] == joined["ids"]


def test_max_length_is_chosen_from_the_training_data():
    short = prepared()
    # tiny titles + descriptions tokenize to 13-16 tokens; rounded up to a multiple of 8
    lengths = [len(e["ids"]) for e in short.encode(tiny_products()[0])]
    assert short._max_length == 16 and max(lengths) <= 16

    wordy = Products.from_texts(["shirt " * n for n in range(1, 200)])
    model = create_model("bert", checkpoint=tiny_checkpoint())
    model.build_preprocessor(wordy)
    # the 99.9th percentile (~200 tokens) is capped by the tiny model's 64 positions
    assert model._max_length == 64
    assert max(len(e["ids"]) for e in model.encode(wordy)) == 64

    fixed = create_model("bert", checkpoint=tiny_checkpoint(), max_length=8)
    fixed.build_preprocessor(wordy)
    assert max(len(e["ids"]) for e in fixed.encode(wordy)) == 8

    with pytest.raises(ConfigError, match="max_length=100 exceeds the checkpoint's limit of 64"):
        create_model("bert", checkpoint=tiny_checkpoint(), max_length=100).build_preprocessor(wordy)


# --- saving -----------------------------------------------------------------


def test_a_saved_model_needs_neither_the_checkpoint_nor_pickle(tmp_path, monkeypatch):
    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(tiny_checkpoint(), checkpoint)
    frame = tiny_frame()
    clf = Categorizer(model="bert", params={"checkpoint": str(checkpoint), "pooling": "cls", **TINY},
                      quiet=True, seed=1, **FORMATS["path"])
    clf.fit(frame)
    expected = clf.predict_proba(frame.head(10)).to_numpy()
    clf.save(tmp_path / "model")
    shutil.rmtree(checkpoint)

    files = {p.name for p in (tmp_path / "model").iterdir() if p.is_file()}
    assert files == {"manifest.json", "model_state.json", "weights.safetensors"}
    state = json.loads((tmp_path / "model" / "model_state.json").read_text())
    assert json.loads(state["preprocessor"]["tokenizer_json"])["model"]["type"] == "WordPiece"
    assert state["network_config"]["config"]["model_type"] == "bert"
    assert str(checkpoint) not in json.dumps(state)

    loaded = Categorizer.load(tmp_path / "model")
    np.testing.assert_allclose(loaded.predict_proba(frame.head(10)).to_numpy(), expected, atol=1e-6)


# --- the real default -------------------------------------------------------


@pytest.mark.slow
def test_the_default_minilm_checkpoint_loads_and_trains_offline():
    products, y, space = tiny_products(tiny_frame(n_per_class=3))
    model = create_model("bert", epochs=1, batch_size=len(products), freeze_layers=4)
    model.fit(products, y, space, seed=0)
    assert len(encoder_layers(model.network.model)) == 6  # all-MiniLM-L6-v2
    assert model._max_length <= MAX_AUTO_LENGTH
    proba = model.predict_proba(products)
    assert proba.shape == (len(products), space.n_classes)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)


def test_a_saved_config_naming_custom_code_never_gets_that_code_imported(tmp_path, monkeypatch):
    # A config's auto_map names Python code; for a model type without a class of its own
    # transformers asked on stdin whether to import it, from a folder the config names.
    import hashlib

    from prodcat.errors import ModelDirError

    clf = Categorizer(model="bert", params={"checkpoint": tiny_checkpoint(), "pooling": "cls", **TINY, "epochs": 1},
                      quiet=True, **FORMATS["single"])
    model_dir = tmp_path / "model"
    clf.fit(tiny_frame()).save(model_dir)
    marker = tmp_path / "code-ran"
    (model_dir / "custom.py").write_text(f"open({str(marker)!r}, 'w').close()\n"
                                         "from transformers import PreTrainedModel\n"
                                         "class Custom(PreTrainedModel):\n    pass\n")
    state = json.loads((model_dir / "model_state.json").read_text())
    config = state["network_config"]["config"]
    config.update(model_type="vit", auto_map={"AutoModelForSequenceClassification": "custom.Custom"},
                  name_or_path=str(model_dir))
    (model_dir / "model_state.json").write_text(json.dumps(state))
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["files"]["model_state.json"]["sha256"] = hashlib.sha256((model_dir / "model_state.json").read_bytes()).hexdigest()
    (model_dir / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setattr("builtins.input", lambda *args: "y")  # a user who says yes to the prompt

    with pytest.raises(ModelDirError, match="cannot be built"):
        Categorizer.load(model_dir)
    assert not marker.exists()


def test_a_saved_max_length_past_the_networks_positions_is_refused_when_it_loads(tmp_path):
    # It loaded, then failed on the first long text with an index error deep inside the embeddings.
    import hashlib

    from prodcat.errors import ModelDirError

    clf = Categorizer(model="bert", params={"checkpoint": tiny_checkpoint(), "pooling": "cls", **TINY, "epochs": 1},
                      quiet=True, **FORMATS["single"])
    model_dir = tmp_path / "model"
    clf.fit(tiny_frame()).save(model_dir)
    state = json.loads((model_dir / "model_state.json").read_text())
    state["preprocessor"]["max_length"] = 1000
    (model_dir / "model_state.json").write_text(json.dumps(state))
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["files"]["model_state.json"]["sha256"] = hashlib.sha256((model_dir / "model_state.json").read_bytes()).hexdigest()
    (model_dir / "manifest.json").write_text(json.dumps(manifest))

    with pytest.raises(ModelDirError, match="the saved max_length 1000 exceeds the 64 positions of the saved network"):
        Categorizer.load(model_dir)
