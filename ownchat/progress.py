"""Progress events: library code reports ``(label, done, total)``; only the CLI draws bars.

Stages, trainers and evaluators take an ``on_progress`` of this type and never import a UI. The
CLI passes ``cli.common.ProgressBars`` (Rich bars with count, elapsed time and ETA); tests and the
Python API pass nothing and get ``silent``.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, int], None]


def silent(label: str, done: int, total: int) -> None:
    """The default: no output."""


def labelled(progress: Progress, label: str) -> Callable[[int, int], None]:
    """Adapt to the ``(done, total)`` callbacks of the stage APIs, under one label."""
    return lambda done, total: progress(label, done, total)
