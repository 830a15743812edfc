"""What a model reference resolves to (``ownchat.models.resolve``): kind, path, licence, adapter, template."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ownchat.models.packs import Pack


@dataclass
class ModelRef:
    ref: str  # what the user typed
    kind: str  # "gguf" | "hf"
    path: Path
    source: str  # "pack" | "local" | "hub"
    license: str = "unknown"
    pack: Pack | None = None
    has_chat_template: bool | None = None
    meta: dict = field(default_factory=dict)
    #: a PEFT adapter directory to apply on top of ``path`` (training runs resolve to base + adapter)
    adapter: Path | None = None
    #: the chat template name/text a training run used (serving must use the same one)
    chat_template: str | None = None

    @property
    def display_name(self) -> str:
        return self.pack.name if self.pack else self.path.name
