"""Progress output on stderr, silenced by --quiet; stdout stays for results."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


class Reporter:
    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.console = Console(stderr=True, quiet=quiet)

    @contextmanager
    def step(self, message: str) -> Iterator[None]:
        """A spinner while a long step runs, then one line with its duration."""
        started = time.perf_counter()
        with self.console.status(message + " ..."):
            yield
        self.console.print(f"[green]✓[/green] {message} [dim]({time.perf_counter() - started:.1f} s)[/dim]", soft_wrap=True)

    def note(self, message: str) -> None:
        self.console.print(message, soft_wrap=True)

    def warn(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/yellow] {message}", soft_wrap=True)

    def progress(self, description: str, total: int | None = None) -> tuple[Progress, int]:
        """A progress bar over rows (total may be unknown); use as a context manager."""
        bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
            disable=self.quiet,
        )
        task = bar.add_task(description, total=total)
        return bar, task
