"""Helpers shared by the subcommands: user-error handling, progress bars, sampling flags."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ownchat.errors import UserError

console = Console(stderr=True)


def print_table(table: Any, *, err: bool = False) -> None:
    """A Rich table, whole. On a terminal it fits the window; piped or redirected, Rich would cut it to
    80 columns and turn long names into "smollm2-135m…", so it is printed at its natural width."""
    stream = sys.stderr if err else sys.stdout
    if stream.isatty():
        Console(file=stream).print(table)
    else:
        Console(file=stream, width=100_000, no_color=True, highlight=False).print(table)


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Print a UserError (every error meant for the user) as one clear line and exit 2, without a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
            sys.exit(2)
        except (IsADirectoryError, NotADirectoryError, PermissionError) as exc:
            # a path given where a file belongs (or an unreadable one) caught deep inside a stage
            where = f"{exc.filename}: " if exc.filename else ""
            console.print(f"[bold red]error:[/] {where}{exc.strerror or exc}", highlight=False, markup=True)
            sys.exit(2)

    return wrapper


def progress(description: str = "working", *, extra: str = "") -> Progress:
    """A Rich progress bar with count, elapsed time and ETA; ``extra`` is a field shown after them."""
    cols = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    if extra:
        cols.append(TextColumn("{task.fields[info]}"))
    return Progress(*cols, console=console, transient=False)


class ProgressBars:
    """Renders ``ownchat.progress`` events: one Rich bar per label, closed when it reaches its total."""

    def __init__(self) -> None:
        self._bars: dict[str, tuple[Progress, Any]] = {}

    def __call__(self, label: str, done: int, total: int) -> None:
        if label not in self._bars:
            bar = progress(label)
            bar.start()
            self._bars[label] = (bar, bar.add_task(label, total=total))
        bar, task = self._bars[label]
        bar.update(task, completed=done, total=total)
        if total and done >= total:
            self.close(label)

    def close(self, label: str | None = None) -> None:
        for name in [label] if label else list(self._bars):
            if name in self._bars:
                self._bars.pop(name)[0].stop()


TemperatureOpt = typer.Option(0.0, "--temperature", help="0 = greedy")
TopPOpt = typer.Option(1.0, "--top-p")
MaxTokensOpt = typer.Option(256, "--max-tokens")
SeedOpt = typer.Option(None, "--seed")
TemplateOpt = typer.Option(None, "--chat-template", help="template name (chatml, gemma, llama3) or Jinja file")


def template_arg(value: str | None) -> str | None:
    """``--chat-template``: a name or Jinja text as given, or the contents of a Jinja file."""
    return Path(value).read_text() if value and Path(value).is_file() else value
