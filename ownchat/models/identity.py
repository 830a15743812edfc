"""Cheap, stable identities for model artifacts (used in cache keys and provenance)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_identity(path: Path) -> str:
    """Name + size + a hash of the first and last MiB: fast on GB files, changes when the file does."""
    path = Path(path)
    if path.is_dir():
        parts = []
        for f in sorted(path.iterdir()):
            if f.is_file() and f.suffix in {".safetensors", ".json", ".bin", ".gguf", ".model"}:
                parts.append(file_identity(f))
        return f"{path.name}:" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        if size > 2 << 20:
            f.seek(-(1 << 20), 2)
            h.update(f.read(1 << 20))
    return f"{path.name}:{h.hexdigest()[:16]}"


def text_identity(text: str) -> str:
    """A short hash of a text (a chat template's Jinja): cache keys change when the text does."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]
