"""Hooks into the training loop, and the two every run gets: a progress bar and TensorBoard.

A callback overrides only the hooks it needs (Lightning's idea):

    >>> class StopAfter(Callback):
    ...     def __init__(self, steps):
    ...         self.steps = steps
    ...     def on_step_end(self, trainer, loss):
    ...         if trainer.state.global_step >= self.steps:
    ...             raise KeyboardInterrupt
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

if TYPE_CHECKING:
    import torch

    from prodcat.training.trainer import Trainer


class Callback:
    """Base class: every hook does nothing."""

    def on_train_begin(self, trainer: Trainer) -> None:
        """Before the first step (after a checkpoint, if any, was restored)."""

    def on_before_optimizer_step(self, trainer: Trainer, network: torch.nn.Module) -> None:
        """Gradients are computed and clipped; the optimizer has not stepped yet."""

    def on_step_end(self, trainer: Trainer, loss: float) -> None:
        """After each optimizer step (and after a checkpoint due at this step was written)."""

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        """After validation and the epoch-end checkpoint; metrics as in `TrainResult.history`."""

    def on_train_end(self, trainer: Trainer) -> None:
        """Always called, also when training stops on an exception."""


class ProgressBar(Callback):
    """One bar per epoch on stderr: steps, loss, products per second, time left."""

    def __init__(self, name: str = "training", quiet: bool = False):
        self.name, self.quiet = name, quiet
        self.progress: Progress | None = None
        self.task: Any = None
        self.examples, self.started, self.loss = 0, 0.0, float("nan")

    def on_train_begin(self, trainer: Trainer) -> None:
        self.progress = Progress(
            TextColumn("{task.description}", markup=False),  # plain text, as the Reporter prints it
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}  {task.fields[speed]:,.0f} products/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True, quiet=self.quiet),
            disable=self.quiet,
            transient=False,
        )
        self.progress.start()
        if not trainer.state.finished:  # a finished run resumed has nothing left to show
            self._new_task(trainer)

    def _new_task(self, trainer: Trainer) -> None:
        state = trainer.state
        description = f"{self.name} epoch {state.epoch + 1}/{trainer.epochs}"
        self.task = self.progress.add_task(
            description, total=trainer.steps_per_epoch, completed=state.step_in_epoch, loss=float("nan"), speed=0.0
        )
        self.examples, self.started = 0, time.perf_counter()

    def on_step_end(self, trainer: Trainer, loss: float) -> None:
        self.examples += trainer.last_batch_size
        speed = self.examples / max(time.perf_counter() - self.started, 1e-9)
        self.progress.update(self.task, advance=1, loss=loss, speed=speed)

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        parts = [f"{self.name} epoch {metrics['epoch']}: loss {_figure(metrics['train_loss'])}"]
        if metrics.get("val_macro_f1") is not None:
            # A saved multi-label model decides at cuts tuned per label: its reported macro-F1 is
            # another figure, often far above this one (0.38 against 0.19 on the demo tags).
            cut = " at 0.5" if trainer.label_format == "multi" else ""
            parts.append(f"val loss {_figure(metrics['val_loss'])}  val macro-F1{cut} {metrics['val_macro_f1']:.4f}")
        # the bar is removed and the epoch's summary printed in its place, one line per epoch
        self.progress.remove_task(self.task)
        self.progress.console.print("  ".join(parts), soft_wrap=True, markup=False, emoji=False)
        if trainer.state.epoch < trainer.epochs and not trainer.state.finished:
            self._new_task(trainer)

    def on_train_end(self, trainer: Trainer) -> None:
        if self.progress is not None:
            self.progress.stop()


def _figure(loss: float | None) -> str:
    # None: not finite (an fp16 step that overflowed and was skipped counts in the epoch's mean)
    return "not finite" if loss is None else f"{loss:.4f}"


class TensorBoardLogger(Callback):
    """Event files for `tensorboard --logdir LOGDIR`.

    Per epoch (x-axis: global step): train/loss, train/accuracy, train/macro_f1,
    val/loss, val/accuracy, val/macro_f1, train/lr, epoch. Multi-label: the
    accuracies and macro-F1s cut every label at 0.5, as early stopping does
    (`trainer.decisions`), not at the cuts the saved model tunes. Every
    `log_every_steps` steps: train/loss_step. A resumed run drops what the
    interrupted one logged after its checkpoint, and a fresh run all that
    earlier runs logged in its folder (TensorBoard's purge on restart: the
    files stay, their points are hidden), so curves do not double back.
    """

    TAGS = {
        "train_loss": "train/loss", "train_accuracy": "train/accuracy", "train_macro_f1": "train/macro_f1",
        "val_loss": "val/loss", "val_accuracy": "val/accuracy", "val_macro_f1": "val/macro_f1",
        "lr": "train/lr", "epoch": "epoch",
    }

    def __init__(self, logdir: str | Path, log_every_steps: int = 50):
        self.logdir, self.log_every_steps = Path(logdir), log_every_steps
        self.writer = None

    def on_train_begin(self, trainer: Trainer) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.logdir.mkdir(parents=True, exist_ok=True)
        # step 0 for a fresh run: a retrained MODEL_DIR/tensorboard shows this run alone
        purge = trainer.state.global_step
        self.writer = SummaryWriter(log_dir=str(self.logdir), purge_step=purge)

    def on_step_end(self, trainer: Trainer, loss: float) -> None:
        step = trainer.state.global_step
        if self.log_every_steps and step % self.log_every_steps == 0:
            self.writer.add_scalar("train/loss_step", loss, step)

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        step = trainer.state.global_step
        for key, tag in self.TAGS.items():
            if metrics.get(key) is not None:
                self.writer.add_scalar(tag, metrics[key], step)
        self.writer.flush()

    def on_train_end(self, trainer: Trainer) -> None:
        if self.writer is not None:
            self.writer.close()
