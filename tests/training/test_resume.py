"""Checkpoints: an interrupted run, resumed, ends where an uninterrupted one does; no pickle anywhere."""

import json
import re

import numpy as np
import pytest
import torch
from safetensors import safe_open

from prodcat.catalog.products import Products
from prodcat.errors import ConfigError
from prodcat.labels import LabelSpace
from prodcat.models.base import FitContext
from prodcat.models import create_model
from prodcat.training import Callback, EncodedSplit, Trainer, TrainingSettings, predict_logits

SETTINGS = dict(epochs=4, batch_size=16, lr=0.05, num_threads=1, checkpoint_every_steps=4, patience=10)


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        # dropout draws from the torch RNG: resuming must restore its state too
        self.layers = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Dropout(0.3),
                                          torch.nn.Linear(16, 3))

    def forward(self, x):
        return self.layers(x)


def collate(examples):
    return {"x": torch.tensor(np.array([e["x"] for e in examples]), dtype=torch.float32)}


def data(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    x = np.array([[0.0, 1.0], [1.0, -1.0], [-1.0, -1.0]])[y] + rng.normal(scale=0.8, size=(n, 2))
    return EncodedSplit([{"x": row} for row in x], y.astype(np.int64), np.ones(n, dtype=np.int64))


TRAIN, VALID, PROBE = data(200, 0), data(60, 1), data(40, 2)  # 13 steps per epoch


class InterruptAfter(Callback):
    def __init__(self, steps):
        self.steps = steps

    def on_step_end(self, trainer, loss):
        if trainer.state.global_step == self.steps:
            raise KeyboardInterrupt


def run(checkpoint_dir=None, resume=False, callbacks=(), n_classes=3, class_weight=None, **overrides):
    torch.manual_seed(0)
    net = Net() if n_classes == 3 else torch.nn.Sequential(torch.nn.Linear(2, n_classes))
    trainer = Trainer(TrainingSettings(**{**SETTINGS, **overrides}), seed=7, quiet=True,
                      checkpoint_dir=checkpoint_dir, resume=resume, callbacks=callbacks)
    result = trainer.fit(net, collate, TRAIN, VALID, label_format="single", n_classes=n_classes,
                         class_weight=class_weight)
    return net, result


def probe(net):
    return predict_logits(net, collate, PROBE.examples, PROBE.lengths)


def test_interrupted_then_resumed_equals_uninterrupted(tmp_path):
    straight, straight_result = run()

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, callbacks=[InterruptAfter(22)])  # mid epoch 2; last checkpoint at step 20
    saved = json.loads((tmp_path / "checkpoint.json").read_text())
    assert (saved["epoch"], saved["step_in_epoch"], saved["global_step"]) == (1, 7, 20)

    resumed, result = run(tmp_path, resume=True)
    assert result.resumed_from == 20
    np.testing.assert_allclose(probe(resumed), probe(straight), atol=1e-5)
    assert [h["val_macro_f1"] for h in result.history] == pytest.approx(
        [h["val_macro_f1"] for h in straight_result.history])
    assert [h["train_loss"] for h in result.history] == pytest.approx(
        [h["train_loss"] for h in straight_result.history], abs=1e-6)
    assert result.best_epoch == straight_result.best_epoch


def test_checkpoints_are_safetensors_and_json_only(tmp_path):
    run(tmp_path, epochs=2)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["checkpoint-000000026.safetensors", "checkpoint.json"]  # older ones removed
    state = json.loads((tmp_path / "checkpoint.json").read_text())
    for key in ("epoch", "step_in_epoch", "global_step", "best_metric", "bad_epochs", "optimizers", "history"):
        assert key in state
    assert state["optimizers"][0]["param_groups"][0]["lr"] >= 0
    with safe_open(tmp_path / state["tensors"], framework="pt") as tensors:
        keys = set(tensors.keys())
    assert "rng.torch" in keys
    assert any(k.startswith("network.") for k in keys) and any(k.startswith("best.") for k in keys)
    assert any(k.endswith(".exp_avg") for k in keys) and any(k.endswith(".exp_avg_sq") for k in keys)
    for path in tmp_path.iterdir():
        assert b"\x80\x04\x95" not in path.read_bytes()  # no pickle stream anywhere


def test_resume_without_a_checkpoint_starts_fresh_and_says_so(tmp_path):
    fresh, _ = run()
    resumed, result = run(tmp_path / "empty", resume=True)
    assert result.resumed_from is None
    assert any("starting fresh" in note for note in result.notes)
    np.testing.assert_array_equal(probe(resumed), probe(fresh))


def test_resume_with_another_number_of_classes_is_refused(tmp_path):
    run(tmp_path, epochs=1)
    with pytest.raises(ConfigError, match="number of classes 3, this run 4"):
        run(tmp_path, resume=True, n_classes=4, epochs=1)


def test_a_finished_run_resumes_to_the_same_model(tmp_path):
    first, _ = run(tmp_path, epochs=2)
    again, result = run(tmp_path, resume=True, epochs=2)
    assert result.resumed_from == 26
    np.testing.assert_array_equal(probe(again), probe(first))
    # it said "epoch 3, step 0 of 13": a 2-epoch run seemingly going on past its budget
    assert result.notes[0] == (f"resuming from the checkpoint in {tmp_path}: its training had ended after epoch 2 "
                               "of 2; its best weights go on")


def interrupted(checkpoint_dir, **overrides):
    with pytest.raises(KeyboardInterrupt):
        run(checkpoint_dir, callbacks=[InterruptAfter(22)], **overrides)


@pytest.mark.parametrize("overrides, message", [
    # a longer budget changes the schedule the checkpoint's steps were taken on
    (dict(epochs=6), "was trained with other settings (epochs 4, this run 6); resume with the first run's settings"),
    (dict(lr=0.5, loss="focal"), "(loss 'ce', this run 'focal'; lr 0.05, this run 0.5)"),
    (dict(class_weight="balanced"), "has class weight 'none', this run 'balanced'"),
])
def test_a_run_resumed_with_other_settings_is_refused_and_its_checkpoint_kept(tmp_path, overrides, message):
    # It used to go on silently with the new settings, mixing two runs in one model.
    interrupted(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ConfigError, match=re.escape(message)):
        run(tmp_path, resume=True, **overrides)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_settings_of_speed_and_logging_may_change_on_resume(tmp_path):
    straight, _ = run()
    interrupted(tmp_path)
    resumed, result = run(tmp_path, resume=True, num_threads=2, checkpoint_every_steps=3, log_every_steps=7,
                          eval_batch_size=17, checkpoint_every_seconds=1.0)
    assert result.resumed_from == 20
    np.testing.assert_allclose(probe(resumed), probe(straight), atol=1e-5)


def test_a_run_resumed_on_other_products_is_refused(tmp_path):
    interrupted(tmp_path)
    other = EncodedSplit(TRAIN.examples[::-1], TRAIN.targets[::-1].copy(), TRAIN.lengths)  # as many products
    torch.manual_seed(0)
    trainer = Trainer(TrainingSettings(**SETTINGS), seed=7, quiet=True, checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(ConfigError, match=r"was trained on other products \(was the catalog changed\?\)"):
        trainer.fit(Net(), collate, other, VALID, label_format="single", n_classes=3)


def test_a_run_resumed_with_other_parameters_frozen_is_one_clear_error(tmp_path):
    interrupted(tmp_path)
    torch.manual_seed(0)
    net = Net()
    net.layers[0].requires_grad_(False)
    trainer = Trainer(TrainingSettings(**SETTINGS), seed=7, quiet=True, checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(ConfigError, match="trained other parameters"):
        trainer.fit(net, collate, TRAIN, VALID, label_format="single", n_classes=3)


@pytest.mark.parametrize("name, model_params", [
    # bow: a sparse embedding and SparseAdam
    ("bow", {"dim": 8}),
    # lstm: word dropout draws from the torch RNG in every training batch
    ("lstm", {"embedding_dim": 8, "hidden_size": 8, "dense_size": 8, "word_dropout": 0.3}),
])
def test_a_model_resumes_through_the_fit_context(tmp_path, name, model_params):
    """The same guarantee through TorchModel.fit."""
    space = LabelSpace("single", ["mug", "shirt", "shoe"])
    words = {"mug": ["coffee", "tea", "ceramic"], "shirt": ["cotton", "linen", "collar"], "shoe": ["sole", "lace", "boot"]}
    rng = np.random.default_rng(0)
    labels = [space.classes[i] for i in rng.integers(0, 3, size=120)]
    texts = [" ".join(rng.choice(words[label], size=2)) + f" {label} {i}" for i, label in enumerate(labels)]
    y = space.encode([(label,) for label in labels])
    products = Products.from_texts(texts)
    valid = (products.take(np.arange(100, 120)), y[100:])
    train = products.take(np.arange(100))
    probe_texts = Products.from_texts(["ceramic tea", "linen collar", "lace sole", "unseen words"])
    params = dict(**model_params, epochs=3, batch_size=10, lr=0.05, num_threads=1, checkpoint_every_steps=5)

    def fit(context, callbacks=()):
        model = create_model(name, **params)
        model.callbacks = list(callbacks)
        return model.fit(train, y[:100], space, valid, seed=3, context=context)

    straight = fit(FitContext(quiet=True))
    with pytest.raises(KeyboardInterrupt):
        fit(FitContext(checkpoint_dir=tmp_path, quiet=True), [InterruptAfter(17)])
    resumed = fit(FitContext(checkpoint_dir=tmp_path, resume=True, quiet=True))
    np.testing.assert_allclose(resumed.predict_proba(probe_texts), straight.predict_proba(probe_texts), atol=1e-5)
    # Probabilities near 0 or 1 hide small differences: the weights and every
    # epoch after the interruption must be the same too.
    straight_arrays, resumed_arrays = straight.get_state()[1], resumed.get_state()[1]
    assert straight_arrays.keys() == resumed_arrays.keys()
    for key in straight_arrays:
        np.testing.assert_allclose(resumed_arrays[key], straight_arrays[key], atol=1e-6, err_msg=key)
    assert [e["val_loss"] for e in resumed.history_] == pytest.approx([e["val_loss"] for e in straight.history_], abs=1e-6)


def _edit_state(folder, edit):
    path = folder / "checkpoint.json"
    state = json.loads(path.read_text())
    edit(state)
    path.write_text(json.dumps(state))


def _truncate_tensors(folder):
    tensors = next(folder.glob("checkpoint-*.safetensors"))
    tensors.write_bytes(tensors.read_bytes()[:1000])


@pytest.mark.parametrize("damage", [
    _truncate_tensors,
    lambda folder: (folder / "checkpoint.json").write_text("[1]"),
    lambda folder: _edit_state(folder, lambda state: state.pop("optimizers")),
    lambda folder: _edit_state(folder, lambda state: state.update(epoch="x")),
    lambda folder: _edit_state(folder, lambda state: state.update(best_metric="high")),
    lambda folder: _edit_state(folder, lambda state: state.update(history={})),
    lambda folder: _edit_state(folder, lambda state: state.update(tensors=None)),
    lambda folder: _edit_state(folder, lambda state: state.update(tensors="../elsewhere.safetensors")),
    lambda folder: _edit_state(folder, lambda state: state.update(format_version="2")),
], ids=["truncated tensors", "not an object", "no optimizers", "epoch not a number", "best metric not a number",
        "history not a list", "no tensors file", "tensors outside the folder", "format version not a number"])
def test_a_damaged_checkpoint_is_one_clear_error_and_kept(tmp_path, damage):
    # A damaged tensors file or a hand-edited checkpoint.json used to end in a traceback.
    interrupted(tmp_path)
    damage(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ConfigError, match=re.escape(f"cannot resume: the checkpoint in {tmp_path} is unreadable (")):
        run(tmp_path, resume=True)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
