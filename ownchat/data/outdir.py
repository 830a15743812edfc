"""Resumable output directories: a re-run may continue one only with the settings that started it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ownchat.errors import UserError

# Settings that name a model or data file: the same file reached by another path (a moved
# OWNCHAT_HOME, a relative path from elsewhere) is the same experiment.
_FILE_KEYS = frozenset({"model", "data"})


def _same(key: str, old: Any, new: Any) -> bool:
    if old == new:
        return True
    if key not in _FILE_KEYS or not isinstance(old, str) or not isinstance(new, str):
        return False
    from ownchat.models.identity import file_identity

    a, b = Path(old), Path(new)
    return a.exists() and b.exists() and file_identity(a) == file_identity(b)


def claim_out_dir(out: Path, settings: dict[str, Any], must_match: Sequence[str], what: str) -> None:
    """Create ``out`` (or resume it) and record ``settings`` in ``out/config.json``.

    Resuming into a directory written with other values of ``must_match`` would mix two experiments
    in one set of results, so that is refused with the keys that differ. A model or data file is
    compared by its identity (name, size, first and last MiB), not by the path that reached it.
    """
    out.mkdir(parents=True, exist_ok=True)
    cfg_file = out / "config.json"
    if cfg_file.exists():
        old = json.loads(cfg_file.read_text())
        diff = [k for k in must_match if not _same(k, old.get(k), settings.get(k))]
        if diff:
            raise UserError(f"{out} holds {what} with different {', '.join(diff)}; use another --out (or delete it)")
    cfg_file.write_text(json.dumps(settings, indent=2, default=str))
