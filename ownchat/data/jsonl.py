"""JSONL reading and appending, with errors that name the file and line, and crash-safe appends.

Lines are split on "\n" only. ``str.splitlines`` also splits on U+2028, U+2029, U+0085 and a few
other characters that ``json.dumps(..., ensure_ascii=False)`` writes raw inside strings, so it
would cut one record in two; ``split_lines`` / ``count_lines`` are the helpers to use instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ownchat.errors import DataError


def split_lines(text: str) -> list[str]:
    """The non-blank lines of JSONL text, split on "\n" only (see the module docstring)."""
    return [line for line in text.split("\n") if line.strip()]


def count_lines(path: str | Path) -> int:
    """Non-blank lines of a JSONL file (0 when it does not exist)."""
    path = Path(path)
    if not path.exists():
        return 0
    return sum(1 for line in path.read_bytes().split(b"\n") if line.strip())


def check_input(path: str | Path) -> Path:
    """A file to read: it exists and is not a directory (one clear error instead of a traceback)."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, None, "file not found", "check the path")
    if path.is_dir():
        raise DataError(path, None, "is a directory, not a file", "name a file inside it")
    return path


def check_output(path: str | Path) -> Path:
    """A file to write: not an existing directory."""
    path = Path(path)
    if path.is_dir():
        raise DataError(path, None, "is a directory, but an output file is needed here",
                        f"name a file, e.g. {path / 'out.jsonl'}")
    return path


def read_jsonl(path: str | Path, *, allow_partial_last_line: bool = False) -> Iterator[dict[str, Any]]:
    """Yield one dict per non-empty line.

    ``allow_partial_last_line`` is for our own output files, whose last line may have been cut by a
    ``kill -9`` mid-write: that line is skipped (the resumed run writes it again).
    """
    path = check_input(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[:exc.start].count(b"\n") + 1
        raise DataError(path, line, "not UTF-8 text", "save the file as UTF-8") from None
    lines = text.split("\n")
    last_complete = lines[-1] == ""  # the text ended with a newline
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            if allow_partial_last_line and i == len(lines) and not last_complete:
                return
            raise DataError(path, i, f"invalid JSON ({exc.msg} at column {exc.colno})",
                            "each line must be one JSON object") from None
        if not isinstance(obj, dict):
            raise DataError(path, i, f"expected a JSON object, got {type(obj).__name__}",
                            "each line must be one JSON object")
        yield obj


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """A .jsonl file, or a .json file holding a list of objects (ShareGPT, Alpaca dumps)."""
    path = check_input(path)
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(path, exc.lineno, f"invalid JSON ({exc.msg})", "fix the file") from None
        if not isinstance(data, list):
            raise DataError(path, None, "expected a JSON list of records", "or use .jsonl, one record a line")
        return data
    return list(read_jsonl(path))


def repair_tail(path: str | Path) -> int:
    """Cut a half-written last line left by a crash; returns the number of complete records kept."""
    path = check_output(path)
    if not path.exists():
        return 0
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        with open(path, "r+b") as f:
            f.truncate(cut)
        data = data[:cut]
    return sum(1 for line in data.split(b"\n") if line.strip())


class JsonlWriter:
    """Append-only writer: every record is flushed and fsynced, so a crash loses at most one line."""

    def __init__(self, path: str | Path, *, append: bool = True, fsync: bool = True) -> None:
        self.path = check_output(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if append:
            repair_tail(self.path)
        self._f = open(self.path, "a" if append else "w", encoding="utf-8")
        self._fsync = fsync

    def write(self, record: dict[str, Any]) -> None:
        self._f.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._f.flush()
        if self._fsync:
            os.fsync(self._f.fileno())

    def write_many(self, records: Iterable[dict[str, Any]]) -> None:
        for r in records:
            self.write(r)

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]], *, mode: int | None = None) -> None:
    """Write a whole file atomically (temp file + rename); ``mode`` (e.g. 0o600) from the first byte.

    On any failure the temp file is removed and an existing ``path`` is left as it was.
    """
    path = check_output(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666 if mode is None else mode)
    try:
        if mode is not None:
            os.fchmod(fd, mode)  # the temp file may have existed with looser permissions
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
