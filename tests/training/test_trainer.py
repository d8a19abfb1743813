"""The shared trainer on tiny networks and made-up data (each test takes well under a second)."""

import numpy as np
import pytest
import torch

from prodcat.errors import ConfigError
from prodcat.training import Callback, EncodedSplit, Trainer, TrainingSettings, lr_factor, make_loss, predict_logits
from prodcat.training.trainer import accuracy_and_macro_f1, balanced_weights, batch_order, clip_gradients, resolve_device


class TinyNet(torch.nn.Module):
    def __init__(self, n_inputs=2, n_classes=3, hidden=16, dropout=0.0):
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(n_inputs, hidden), torch.nn.ReLU(), torch.nn.Dropout(dropout),
            torch.nn.Linear(hidden, n_classes),
        )

    def forward(self, x):
        return self.layers(x)


def collate(examples):
    return {"x": torch.tensor(np.array([e["x"] for e in examples]), dtype=torch.float32)}


def blobs(n=240, n_classes=3, seed=0, spread=0.3, weights=None):
    """Gaussian blobs around the corners of a triangle: separable for small spread."""
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 2.0], [2.0, -1.0], [-2.0, -1.0]])[:n_classes]
    y = rng.choice(n_classes, size=n, p=weights)
    x = centers[y] + rng.normal(scale=spread, size=(n, 2))
    return EncodedSplit([{"x": row} for row in x], y.astype(np.int64), np.ones(n, dtype=np.int64))


def logits_of(net, split):
    return predict_logits(net, collate, split.examples, split.lengths, batch_size=64)


def fit(net, train, valid, label_format="single", n_classes=3, class_weight=None, seed=0, callbacks=(), **settings):
    base = dict(epochs=10, batch_size=16, lr=0.05, num_threads=1)
    t = Trainer(TrainingSettings(**{**base, **settings}), seed=seed, quiet=True, callbacks=callbacks)
    return t.fit(net, collate, train, valid, label_format=label_format, n_classes=n_classes, class_weight=class_weight)


def test_learns_a_separable_problem():
    torch.manual_seed(0)
    net, train, valid = TinyNet(), blobs(seed=0), blobs(n=90, seed=1)
    result = fit(net, train, valid)
    accuracy, f1 = accuracy_and_macro_f1(valid.targets, logits_of(net, valid).argmax(axis=1), multi=False)
    assert accuracy > 0.97 and f1 > 0.97
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert not net.training  # handed back ready to predict


def test_early_stopping_stops_and_keeps_the_best_weights():
    # Validation labels unrelated to the inputs: the model only gets surer of
    # answers that do not count, so validation stops improving at once.
    torch.manual_seed(0)
    net, train = TinyNet(), blobs(seed=0)
    noise = blobs(n=60, seed=2)
    noise.targets = np.random.default_rng(5).integers(0, 3, size=60)
    result = fit(net, train, noise, epochs=30, patience=2)

    assert result.stopped_early and result.epochs_run < 30
    assert result.epochs_run == result.best_epoch + 2  # stopped after `patience` epochs without gain
    best = result.history[result.best_epoch - 1]
    assert best["val_macro_f1"] == pytest.approx(max(h["val_macro_f1"] for h in result.history))
    # The network handed back is the best epoch's, not the last one's.
    _, f1 = accuracy_and_macro_f1(noise.targets, logits_of(net, noise).argmax(axis=1), multi=False)
    assert f1 == pytest.approx(best["val_macro_f1"], abs=1e-9)


def test_a_falling_validation_loss_keeps_training_going(monkeypatch):
    # Scripted validation: macro-F1 wobbles below its first value while the loss
    # falls (a network from scratch on a small catalog), then rises.
    script = [(0.10, 4.0), (0.08, 3.9), (0.09, 3.8), (0.07, 3.7), (0.30, 3.0), (0.30, 3.1), (0.30, 3.2), (0.30, 3.3)]
    original = Trainer._end_epoch

    def scripted(self, *args):
        metrics = original(self, *args)
        f1, loss = script[metrics["epoch"] - 1]
        return {**metrics, "val_macro_f1": f1, "val_loss": loss}

    monkeypatch.setattr(Trainer, "_end_epoch", scripted)
    result = fit(TinyNet(), blobs(seed=0), blobs(n=30, seed=1), epochs=len(script), patience=2)
    # Stopping on macro-F1 alone would end at epoch 3; the falling loss carries
    # it to the real gain at epoch 5, and two epochs without either end it.
    assert result.best_epoch == 5
    assert result.epochs_run == 7 and result.stopped_early


def test_patience_stretches_with_a_budget_stretched_for_a_small_catalog():
    # Validation that never improves after epoch 1 (labels unrelated to the inputs).
    noise = blobs(n=60, seed=2)
    noise.targets = np.random.default_rng(5).integers(0, 3, size=60)
    # 15 steps an epoch; min_steps 900 stretches the budget to 60 epochs, twice
    # DEFAULT_EPOCHS, so patience 2 becomes 4.
    torch.manual_seed(0)
    stretched = fit(TinyNet(), blobs(seed=0), noise, epochs=None, min_steps=900, patience=2)
    torch.manual_seed(0)
    given = fit(TinyNet(), blobs(seed=0), noise, epochs=60, min_steps=900, patience=2)
    assert given.epochs_run == given.best_epoch + 2
    assert stretched.stopped_early and stretched.epochs_run == stretched.best_epoch + 4


def test_no_epochs_given_means_enough_epochs_for_min_steps():
    # 240 products in batches of 16: 15 steps an epoch, so 600 steps take 40 epochs.
    torch.manual_seed(0)
    result = fit(TinyNet(), blobs(seed=0), None, epochs=None, min_steps=600)
    assert result.epochs_run == 40
    # On a catalog big enough, the budget stays DEFAULT_EPOCHS.
    result = fit(TinyNet(), blobs(seed=0), None, epochs=None, min_steps=15)
    assert result.epochs_run == 30


def test_no_batch_size_given_means_smaller_batches_on_a_small_catalog():
    # min_steps 300 asks for epochs of at least 10 steps: 240 products make 15
    # batches of 16 (chosen) but only 4 of 64; with min_steps 30
    # (1 step an epoch) the largest, 64, is enough.
    for min_steps, batch_size in ((300, 16), (30, 64)):
        torch.manual_seed(0)
        trainer = Trainer(TrainingSettings(epochs=2, batch_size=None, min_steps=min_steps, lr=0.05, num_threads=1),
                          quiet=True)
        result = trainer.fit(TinyNet(), collate, blobs(seed=0), None, label_format="single", n_classes=3)
        assert trainer.batch_size == result.batch_size == batch_size
        assert trainer.steps_per_epoch == -(-240 // batch_size)
        assert trainer.state.global_step == 2 * trainer.steps_per_epoch


def test_without_validation_it_trains_every_epoch():
    torch.manual_seed(0)
    result = fit(TinyNet(), blobs(seed=0), None, epochs=4)
    assert result.epochs_run == 4 and result.best_epoch is None and not result.stopped_early
    assert all(h.get("val_macro_f1") is None for h in result.history)


def test_learning_rate_warms_up_then_decays():
    total = 100
    linear = [lr_factor(s, total, 0.1, "linear") for s in range(total)]
    assert linear[0] < linear[5] < linear[9]  # warm-up over the first 10 steps
    assert max(linear) == pytest.approx(1.0, abs=0.1)
    assert all(a >= b for a, b in zip(linear[10:], linear[11:]))  # then never rises
    assert linear[-1] < 0.02
    cosine = [lr_factor(s, total, 0.1, "cosine") for s in range(total)]
    assert cosine[55] == pytest.approx(0.5, abs=0.02) and cosine[-1] < 0.01
    assert [lr_factor(s, total, 0.0, "constant") for s in (0, 50, 99)] == [1.0, 1.0, 1.0]

    class RecordLR(Callback):
        lrs = []

        def on_step_end(self, trainer, loss):
            self.lrs.append(trainer.current_lr)

    torch.manual_seed(0)
    record = RecordLR()
    fit(TinyNet(), blobs(n=160, seed=0), None, epochs=5, warmup_ratio=0.2, lr=0.1, callbacks=[record])
    lrs = np.array(record.lrs)
    peak = int(np.argmax(lrs))
    assert len(lrs) == 50 and 5 <= peak <= 11
    assert np.all(np.diff(lrs[: peak + 1]) > 0) and np.all(np.diff(lrs[peak:]) <= 0)
    assert lrs.max() == pytest.approx(0.1, rel=0.1) and lrs[-1] < 0.01


def test_gradients_are_clipped():
    class CheckNorm(Callback):
        seen = []

        def on_before_optimizer_step(self, trainer, network):
            norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in network.parameters()]))
            self.seen.append((trainer.last_grad_norm, float(norm)))

    torch.manual_seed(0)
    train = blobs(seed=0)
    for example in train.examples:
        example["x"] = example["x"] * 1000  # huge inputs: huge gradients
    check = CheckNorm()
    fit(TinyNet(), train, None, epochs=1, grad_clip=0.5, callbacks=[check])
    before, after = zip(*check.seen)
    assert max(before) > 10  # the raw gradients were far above the limit ...
    assert max(after) <= 0.5 + 1e-4  # ... and the optimizer only ever saw clipped ones


def test_sparse_gradients_are_clipped_too():
    bag = torch.nn.EmbeddingBag(50, 4, mode="sum", sparse=True)
    (bag(torch.arange(40), torch.tensor([0, 20])).sum() * 100).backward()
    before = clip_gradients([bag.weight], 1.0)
    assert before > 1.0
    assert float(bag.weight.grad.coalesce()._values().norm()) == pytest.approx(1.0, rel=1e-4)


def test_class_weighted_and_focal_losses_differ_from_plain_cross_entropy():
    targets = np.array([0] * 90 + [1] * 10)  # imbalanced
    logits = torch.tensor([[2.0, 0.0], [0.5, 0.0], [0.0, 1.0], [1.0, 0.0]])
    target = torch.tensor([0, 0, 1, 1])
    plain = float(make_loss("single", 2, targets)(logits, target))
    weighted = float(make_loss("single", 2, targets, class_weight="balanced")(logits, target))
    focal = float(make_loss("single", 2, targets, kind="focal", focal_gamma=2.0)(logits, target))
    # balanced: the rare class's mistake (last row) weighs 9x as much
    assert weighted > plain * 1.3
    # focal: the well-classified rows count less, so the loss is smaller
    assert focal < plain * 0.8

    # In training, balanced weights move the decision towards the rare class.
    train = blobs(n=300, seed=0, spread=1.2, weights=[0.9, 0.05, 0.05])
    valid = blobs(n=300, seed=1, spread=1.2, weights=[0.9, 0.05, 0.05])
    rare_predicted = {}
    for class_weight in (None, "balanced"):
        torch.manual_seed(0)
        net = TinyNet()
        fit(net, train, None, epochs=8, class_weight=class_weight)
        rare_predicted[class_weight] = int((logits_of(net, valid).argmax(axis=1) != 0).sum())
    assert rare_predicted["balanced"] > rare_predicted[None]


def test_the_balanced_sampler_is_not_weighted_by_class_a_second_time():
    # Drawn evenly and weighted by inverse frequency too, the rare classes counted twice over:
    # on a 60:3:3:3 catalog the dominant class came last for every product.
    train = blobs(n=300, seed=0, spread=1.2, weights=[0.9, 0.05, 0.05])
    logits, notes = {}, {}
    for class_weight in (None, "balanced"):
        torch.manual_seed(0)
        net = TinyNet()
        result = fit(net, train, None, epochs=4, class_weight=class_weight, sampler="balanced")
        logits[class_weight], notes[class_weight] = logits_of(net, train), result.notes
    np.testing.assert_array_equal(logits["balanced"], logits[None])
    assert "sampler 'balanced' draws the classes evenly: the loss is not balanced-weighted too" in notes["balanced"]
    assert not any("sampler" in note for note in notes[None])


def test_multi_label_uses_binary_cross_entropy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    y = np.stack([x[:, 0] > 0, x[:, 1] > 0, x.sum(axis=1) > 0.5], axis=1).astype(np.uint8)
    split = EncodedSplit([{"x": row} for row in x], y, np.ones(300, np.int64))
    loss = make_loss("multi", 3, y, class_weight="balanced")
    assert isinstance(loss.inner, torch.nn.BCEWithLogitsLoss) and loss.inner.pos_weight is not None
    torch.manual_seed(0)
    net = TinyNet(n_classes=3, hidden=32)
    result = fit(net, split, split, label_format="multi", epochs=15, class_weight="balanced")
    assert result.best_metric > 0.9
    accuracy, f1 = accuracy_and_macro_f1(y, (logits_of(net, split) > 0).astype(np.uint8), multi=True)
    assert f1 == pytest.approx(result.best_metric)


@pytest.mark.parametrize("settings, message", [
    (dict(loss="focal"), "loss='focal' is for single and path labels; multi-label training uses binary cross-entropy"),
    (dict(sampler="balanced"), "sampler='balanced' draws products by their one class"),
])
def test_a_setting_multi_label_training_cannot_use_is_refused_not_ignored(settings, message):
    # It used to train plain BCE with shuffling while the manifest said focal / balanced.
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]] * 8, np.uint8)
    split = EncodedSplit([{"x": row} for row in y.astype(np.float32)], y, np.ones(len(y), np.int64))
    with pytest.raises(ConfigError, match=message):
        fit(TinyNet(n_classes=2), split, None, label_format="multi", n_classes=2, **settings)
    for label_format in ("single", "path"):
        TrainingSettings(**settings).check_label_format(label_format)


def test_same_seed_same_probabilities_other_seed_other_ones():
    def run(seed):
        torch.manual_seed(seed)
        net = TinyNet(dropout=0.2)
        fit(net, blobs(seed=0), blobs(n=60, seed=1), epochs=3, seed=seed)
        return logits_of(net, blobs(n=30, seed=3))

    first, second, other = run(0), run(0), run(1)
    np.testing.assert_array_equal(first, second)
    assert not np.allclose(first, other)


def test_batch_order_depends_on_seed_and_epoch_only_and_buckets_lengths():
    lengths = np.random.default_rng(0).integers(1, 100, size=1000)
    a = batch_order(lengths, 10, seed=3, epoch=2, bucket_batches=20)
    b = batch_order(lengths, 10, seed=3, epoch=2, bucket_batches=20)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(np.concatenate(a), np.concatenate(batch_order(lengths, 10, seed=3, epoch=3)))
    assert sorted(np.concatenate(a).tolist()) == list(range(1000))  # every example once
    # bucketing: lengths within a batch vary far less than across the data
    spread = np.mean([lengths[batch].max() - lengths[batch].min() for batch in a])
    assert spread < 15


def test_balanced_sampler_draws_rare_classes_as_often_as_common_ones():
    targets = np.array([0] * 900 + [1] * 90 + [2] * 10)
    weights = balanced_weights(targets)
    drawn = np.concatenate(batch_order(np.ones(1000, np.int64), 10, seed=0, epoch=0, weights=weights))
    assert len(drawn) == 1000  # an epoch is as many draws as examples
    shares = np.bincount(targets[drawn], minlength=3) / 1000
    np.testing.assert_allclose(shares, 1 / 3, atol=0.06)
    assert balanced_weights(np.zeros((5, 3), np.uint8)) is None  # multi-label: plain shuffling

    # through the trainer: the rare class of an imbalanced problem is learned better
    torch.manual_seed(0)
    imbalanced = blobs(n=300, seed=0, spread=1.2, weights=[0.9, 0.08, 0.02])
    test = blobs(n=300, seed=1, spread=1.2)
    recalls = {}
    for sampler in ("shuffle", "balanced"):
        torch.manual_seed(0)
        net = TinyNet()
        fit(net, imbalanced, None, epochs=8, sampler=sampler)
        predicted = logits_of(net, test).argmax(axis=1)
        recalls[sampler] = np.mean([(predicted[test.targets == c] == c).mean() for c in (1, 2)])
    assert recalls["balanced"] > recalls["shuffle"]


def test_lr_scales_give_parameter_groups_their_own_learning_rate():
    torch.manual_seed(0)
    net = TinyNet()
    net.lr_scales = {"layers.0.": 0.0, "layers.3.": 2.0}
    frozen_by_scale = net.layers[0].weight.detach().clone()
    before = net.layers[3].weight.detach().clone()
    fit(net, blobs(n=32, seed=0), None, epochs=1, batch_size=32, lr=1e-3, warmup_ratio=0.0, weight_decay=0.0,
        schedule="constant")
    assert torch.equal(net.layers[0].weight, frozen_by_scale)  # scale 0: no movement
    # one Adam step moves each weight by about its learning rate: 2 x 1e-3 here
    assert (net.layers[3].weight - before).abs().max().item() == pytest.approx(2e-3, rel=0.02)

    net.lr_scales = {"layers.0.": -1.0}
    with pytest.raises(ConfigError, match="learning-rate scale of 'layers.0.'"):
        fit(net, blobs(n=32, seed=0), None, epochs=1)


def test_training_steps_use_train_collate_and_validation_collate():
    seen = {"train": 0}

    def noisy_collate(examples):
        seen["train"] += 1
        return collate(examples)

    torch.manual_seed(0)
    t = Trainer(TrainingSettings(epochs=2, batch_size=16, lr=0.05, num_threads=1), quiet=True)
    t.fit(TinyNet(), collate, blobs(n=64, seed=0), blobs(n=32, seed=1), label_format="single", n_classes=3,
          train_collate=noisy_collate)
    assert seen["train"] == 2 * 4  # every training step, no validation batch


class PoisonAt(Callback):
    """Makes the first layer's weights NaN before the optimizer step of a given step, as a too high
    learning rate does."""

    def __init__(self, step):
        self.step = step

    def on_before_optimizer_step(self, trainer, network):
        if trainer.state.global_step + 1 == self.step:
            with torch.no_grad():
                network.layers[0].weight.fill_(float("nan"))


@pytest.mark.parametrize("with_validation", [True, False])
def test_a_run_that_diverges_before_a_best_epoch_is_one_clear_error(with_validation):
    # It used to keep (or pick as best) the NaN weights: a saved model predicting NaN for every product.
    torch.manual_seed(0)
    valid = blobs(n=60, seed=1) if with_validation else None
    with pytest.raises(ConfigError, match=r"^training: training diverged in epoch 1 .*learning rate below 0\.05$"):
        fit(TinyNet(), blobs(seed=0), valid, epochs=3, callbacks=[PoisonAt(3)])


def test_a_run_that_diverges_before_a_best_epoch_leaves_no_checkpoint_to_resume(tmp_path):
    # Its checkpoints hold NaN weights: the rerun at a lower learning rate must start fresh, not be
    # told to resume them.
    torch.manual_seed(0)
    t = Trainer(TrainingSettings(epochs=3, batch_size=16, lr=0.05, num_threads=1, checkpoint_every_steps=1),
                seed=0, quiet=True, callbacks=[PoisonAt(3)], checkpoint_dir=tmp_path)
    with pytest.raises(ConfigError, match="diverged"):
        t.fit(TinyNet(), collate, blobs(seed=0), blobs(n=60, seed=1), label_format="single", n_classes=3)
    assert list(tmp_path.iterdir()) == []


def test_a_run_that_diverges_between_checkpoints_still_stops_with_the_best_weights(tmp_path):
    # A checkpoint due after the loss went NaN used to end the run in json's "Out of range float values".
    torch.manual_seed(0)
    t = Trainer(TrainingSettings(epochs=5, batch_size=16, lr=0.05, num_threads=1, checkpoint_every_steps=1),
                seed=0, quiet=True, callbacks=[PoisonAt(15 * 2 + 3)], checkpoint_dir=tmp_path)
    result = t.fit(TinyNet(), collate, blobs(seed=0), blobs(n=60, seed=1), label_format="single", n_classes=3)
    assert result.epochs_run == 2 and result.best_epoch in (1, 2)


def test_a_run_that_diverges_later_stops_with_the_best_weights_before():
    torch.manual_seed(0)
    net, train, valid = TinyNet(), blobs(seed=0), blobs(n=60, seed=1)
    result = fit(net, train, valid, epochs=5, callbacks=[PoisonAt(15 * 2 + 3)])  # 15 steps an epoch: in epoch 3
    assert result.epochs_run == 2 and result.stopped_early and result.best_epoch in (1, 2)
    assert any("diverged in epoch 3" in note and "keeping the weights of epoch" in note for note in result.notes)
    # the kept epoch came from the same rate: the note says what to change
    assert any(note.endswith("(a learning rate below 0.05 may train further)") for note in result.notes), result.notes
    assert np.isfinite(logits_of(net, valid)).all()


class SkippedOverflowAt(Callback):
    """Counts a non-finite loss in the epoch's mean at a given step while the weights stay finite,
    as an fp16 step that overflows and that the gradient scaler skips does."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, loss):
        if trainer.state.global_step == self.step:
            trainer.state.epoch_loss_sum = float("inf")


def test_an_epoch_with_a_skipped_overflowing_step_goes_on(capsys):
    torch.manual_seed(0)
    t = Trainer(TrainingSettings(epochs=3, batch_size=16, lr=0.05, num_threads=1), quiet=False,
                callbacks=[SkippedOverflowAt(15 + 4)])  # 15 steps an epoch: in epoch 2
    result = t.fit(TinyNet(), collate, blobs(seed=0), blobs(n=60, seed=1), label_format="single", n_classes=3)
    assert result.epochs_run == 3 and not any("diverged" in note for note in result.notes)
    assert "epoch 2: loss not finite" in capsys.readouterr().err


def test_tensorboard_event_files_have_the_scalars(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    torch.manual_seed(0)
    t = Trainer(TrainingSettings(epochs=3, batch_size=16, lr=0.05, num_threads=1, log_every_steps=5),
                quiet=True, logdir=tmp_path / "tb")
    t.fit(TinyNet(), collate, blobs(seed=0), blobs(n=60, seed=1), label_format="single", n_classes=3)

    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    expected = {"train/loss", "train/accuracy", "train/macro_f1", "val/loss", "val/accuracy", "val/macro_f1",
                "train/lr", "train/loss_step"}
    assert expected <= tags
    assert len(events.Scalars("val/macro_f1")) == 3
    assert len(events.Scalars("train/loss_step")) == 45 // 5  # 15 steps per epoch, every 5th


def test_a_fresh_run_in_a_logdir_hides_the_curves_of_the_runs_before_it(tmp_path):
    # `train` logs into MODEL_DIR/tensorboard, which saving keeps: retraining into the same
    # folder used to show one curve made of both runs (and the web app drew it as the model's).
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def train(epochs, seed):
        torch.manual_seed(seed)
        t = Trainer(TrainingSettings(epochs=epochs, batch_size=16, lr=0.05, num_threads=1), seed=seed, quiet=True,
                    logdir=tmp_path)
        return t.fit(TinyNet(), collate, blobs(seed=0), blobs(n=60, seed=1), label_format="single", n_classes=3)

    train(3, seed=0)
    second = train(2, seed=1)
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2  # nothing deleted
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert [e.step for e in events.Scalars("val/macro_f1")] == [15, 30]
    assert [e.value for e in events.Scalars("val/macro_f1")] == pytest.approx(
        [h["val_macro_f1"] for h in second.history])


def test_cuda_without_a_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="no CUDA device"):
        Trainer(TrainingSettings(), device="cuda")
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(ConfigError, match="device must be"):
        resolve_device("tpu")


@pytest.mark.parametrize(
    "settings, message",
    [({"loss": "hinge"}, "loss must be one of"), ({"epochs": 0}, "epochs must be a positive integer"),
     ({"warmup_ratio": 1.5}, "warmup_ratio must be below 1"), ({"grad_clip": -1.0}, "grad_clip")],
)
def test_bad_settings_name_the_setting(settings, message):
    with pytest.raises(ConfigError, match=message):
        TrainingSettings.from_dict(settings)


@pytest.mark.parametrize("label_format, said", [("multi", "val macro-F1 at 0.5 "), ("single", "val macro-F1 ")])
def test_the_epoch_line_says_where_a_multi_label_macro_f1_cuts(label_format, said, capsys):
    # A saved multi-label model decides at cuts tuned per label and reports that macro-F1: the
    # epoch lines' figure, at 0.5, read as the same one, was often half of it.
    split = blobs(n=60)
    if label_format == "multi":
        split.targets = np.eye(3, dtype=np.uint8)[split.targets]
    Trainer(TrainingSettings(epochs=1, batch_size=16, num_threads=1), name="net").fit(
        TinyNet(), collate, split, split, label_format=label_format, n_classes=3)
    [line] = [line for line in capsys.readouterr().err.splitlines() if line.startswith("net epoch 1:")]
    assert said in line and ("at 0.5" in line) == (label_format == "multi")
