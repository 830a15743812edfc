"""Where ownchat keeps things on disk. One root, overridable with OWNCHAT_HOME."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    root = os.environ.get("OWNCHAT_HOME")
    path = Path(root).expanduser() if root else Path.home() / ".cache" / "ownchat"
    path.mkdir(parents=True, exist_ok=True)
    return path


def packs_dir() -> Path:
    return _sub("packs")


def hf_dir() -> Path:
    """GGUF packs converted to Hugging Face directories (safetensors), made once."""
    return _sub("hf")


def default_cache_db() -> Path:
    return home() / "responses.sqlite"


def _sub(name: str) -> Path:
    path = home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path
