"""Resumable output directories: a re-run may continue one only with the settings that started it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ownchat.errors import UserError


def claim_out_dir(out: Path, settings: dict[str, Any], must_match: Sequence[str], what: str) -> None:
    """Create ``out`` (or resume it) and record ``settings`` in ``out/config.json``.

    Resuming into a directory written with other values of ``must_match`` would mix two experiments
    in one set of results, so that is refused with the keys that differ.
    """
    out.mkdir(parents=True, exist_ok=True)
    cfg_file = out / "config.json"
    if cfg_file.exists():
        old = json.loads(cfg_file.read_text())
        diff = [k for k in must_match if old.get(k) != settings.get(k)]
        if diff:
            raise UserError(f"{out} holds {what} with different {', '.join(diff)}; use another --out (or delete it)")
    cfg_file.write_text(json.dumps(settings, indent=2, default=str))
