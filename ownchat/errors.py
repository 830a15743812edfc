"""Errors meant for the user: they name the file, the line and the fix, and the CLI prints them plainly."""

from __future__ import annotations


class UserError(RuntimeError):
    """Bad input or setup. The CLI prints the message (no traceback) and exits with status 2.

    Every error meant for the user derives from it (``DataError``, ``RecipeError``, ``ModelNotFound``,
    ``PackError``, ``EngineError``), so the CLI catches one type and a real bug still shows its traceback.
    """


class DataError(UserError):
    def __init__(self, path: object, line: int | None, problem: str, fix: str = "") -> None:
        where = f"{path}:{line}" if line is not None else f"{path}"
        msg = f"{where}: {problem}"
        if fix:
            msg += f" — {fix}"
        super().__init__(msg)
        self.path, self.line, self.problem, self.fix = path, line, problem, fix
