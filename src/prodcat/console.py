"""Progress output on stderr, silenced by --quiet; stdout stays for results.

Every message is plain text: file names, columns, labels and product texts
go into them as they are, so nothing in a message is read as rich markup
("[sale] Shirts" stays whole, "[/bold]" raises nothing). The Reporter adds
its own styling (the tick, "warning:") around the text.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.text import Text


class Reporter:
    """quiet: no progress, notes or warnings; warnings=True shows warnings all the same
    (a leaderboard's or a search's fits: their progress would interleave with
    the caller's, but a finding about the user's catalog must still reach them).
    collect: a list each warning is also appended to, for a caller that shows
    them itself (the web app, whose model is quiet). warnings=a Reporter: shown
    through that caller's console, whose spinner line is on screen: printed from
    another console, a warning was glued to the end of the spinner's text."""

    def __init__(self, quiet: bool = False, *, warnings: bool | Reporter | None = None,
                 collect: list[str] | None = None):
        self.quiet = quiet
        self.collected = collect
        self.console = Console(stderr=True, quiet=quiet)
        if isinstance(warnings, Reporter):
            self._warnings = warnings.console
            return
        show = not quiet if warnings is None else warnings
        self._warnings = self.console if show == (not quiet) else Console(stderr=True, quiet=not show)

    def _plain(self, message: str) -> Text:
        # Text, not str: rich reads neither markup nor emoji codes in it; numbers and paths are still highlighted.
        return self.console.highlighter(Text(message))

    @contextmanager
    def step(self, message: str) -> Iterator[Callable[[str], None]]:
        """A spinner while a long step runs, then one line with its duration. The block gets a
        function that replaces the spinner's text (the closing line keeps `message`)."""
        started = time.perf_counter()
        with self.console.status(Text(message + " ...")) as shown:
            yield lambda text: shown.update(Text(text))
        seconds = time.perf_counter() - started
        line = Text.assemble(("✓", "green"), " ", self._plain(message), " ", (f"({seconds:.1f} s)", "dim"))
        self.console.print(line, soft_wrap=True)

    @contextmanager
    def status(self, message: str) -> Iterator[Callable[[str], None]]:
        """A spinner line while the block runs, removed at its end; the block gets a function
        that replaces the line's text. Nothing is printed where stderr is no terminal (a log
        file would get every update), nor when quiet."""
        with self.console.status(Text(message)) as shown:
            yield lambda text: shown.update(Text(text))

    def note(self, message: str) -> None:
        self.console.print(self._plain(message), soft_wrap=True)

    def warn(self, message: str) -> None:
        if self.collected is not None:
            self.collected.append(message)
        self._warnings.print(Text.assemble(("warning:", "yellow"), " ", self._plain(message)), soft_wrap=True)

    def progress(self, description: str, total: int | None = None) -> tuple[Progress, int]:
        """A progress bar over rows (total may be unknown); use as a context manager."""
        bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),  # the description names the user's file
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
            disable=self.quiet,
        )
        task = bar.add_task(description, total=total)
        return bar, task


#: training callbacks every Trainer.fit in this context runs too (`watching`)
_WATCHERS: ContextVar[tuple[Any, ...]] = ContextVar("prodcat_training_watchers", default=())


@contextmanager
def watching(*callbacks: Any) -> Iterator[None]:
    """Run `callbacks` (`prodcat.training.Callback`s) in every training run started inside
    the block, however deep in a model (an ensemble's members included): a caller that
    trains models quietly (a search) can still show how far a run has come. Here, not
    in prodcat.training, so that such a caller need not import torch."""
    token = _WATCHERS.set(_WATCHERS.get() + tuple(callbacks))
    try:
        yield
    finally:
        _WATCHERS.reset(token)


def watchers() -> tuple[Any, ...]:
    """The callbacks `watching` asks training runs started here to run."""
    return _WATCHERS.get()


class TrainingStatus:
    """How far a training run has come, as one line of text for `show` (a `Reporter.status`
    or `step` update): a `prodcat.training.Callback` in all but name (that module imports
    torch), for `watching`."""

    def __init__(self, heading: str, show: Callable[[str], None]):
        self.heading, self.show = heading, show
        self.started = time.perf_counter()

    def _show(self, trainer: Any, doing: str) -> None:
        elapsed = int(time.perf_counter() - self.started)
        self.show(f"{self.heading}: {trainer.name} {doing}  ({elapsed // 60}:{elapsed % 60:02d})")

    def on_train_begin(self, trainer: Any) -> None:
        self.on_step_end(trainer, float("nan"))

    def on_before_optimizer_step(self, trainer: Any, network: Any) -> None:
        pass

    def on_step_end(self, trainer: Any, loss: float) -> None:
        state = trainer.state
        self._show(trainer, f"epoch {state.epoch + 1}/{trainer.epochs}, step {state.step_in_epoch}/"
                            f"{trainer.steps_per_epoch}")

    def on_epoch_end(self, trainer: Any, metrics: dict[str, Any]) -> None:
        f1 = metrics.get("val_macro_f1")
        cut = " at 0.5" if getattr(trainer, "label_format", "") == "multi" else ""
        self._show(trainer, f"epoch {metrics['epoch']}/{trainer.epochs} done"
                            + (f", validation macro-F1{cut} {f1:.4f}" if f1 is not None else ""))

    def on_train_end(self, trainer: Any) -> None:
        self._show(trainer, "trained; calibrating and scoring")
