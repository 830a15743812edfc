"""``export_run(run_dir, to="hf"|"gguf"|"ollama")``: a training run as something others can load.

- ``hf``: merged full-precision model directory (+ tokenizer with the run's chat template)
- ``gguf``: that, converted by llama.cpp's converter to one ``model.gguf`` (f16 by default)
- ``ollama``: the GGUF plus a ``Modelfile`` (TEMPLATE, stop parameters)
- ``lora-gguf``: only the adapter, as GGUF, for llama.cpp's ``--lora`` on top of a base GGUF
  (``load_engine(base, adapter="DIR/adapter.gguf")``); a few MB instead of a whole model
Every export carries a model card (README.md) and ``ownchat.json`` (licence) for ``resolve``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ownchat.errors import UserError
from ownchat.export.card import write_card
from ownchat.export.merge import merge_run, read_run

TARGETS = ("hf", "gguf", "ollama", "lora-gguf")

__all__ = ["export_run", "TARGETS"]


def export_run(run_dir: str | Path, to: str = "gguf", out: str | Path | None = None, log=print, *,
               outtype: str = "f16") -> Path:
    """Export ``run_dir``; returns the folder written (default ``RUN_DIR/export-<to>``)."""
    if to not in TARGETS:
        raise UserError(f"unknown export target {to!r}: choose one of {', '.join(TARGETS)}")
    run_dir = Path(run_dir)
    meta = read_run(run_dir)
    dest = Path(out) if out else run_dir / f"export-{to}"
    dest.mkdir(parents=True, exist_ok=True)
    if to == "lora-gguf":
        return _export_lora(run_dir, meta, dest, log)
    if to == "ollama":  # fail before the slow part when the template cannot be translated
        from ownchat.export.ollama import template_family

        template_family(meta.get("chat_template_jinja") or "")
    hf_dir = dest if to == "hf" else dest / ".merged"
    merge_run(run_dir, hf_dir, log=log)
    files: list[str] = []
    if to == "hf":
        files = ["model.safetensors", "tokenizer.json", "config.json"]
    else:
        from ownchat.export.gguf import hf_to_gguf

        log(f"converting to GGUF ({outtype}) ...")
        hf_to_gguf(hf_dir, dest / "model.gguf", outtype=outtype, log=log)
        shutil.rmtree(hf_dir, ignore_errors=True)
        files = ["model.gguf"]
        (dest / "ownchat.json").write_text(json.dumps(
            {"license": meta.get("license", "unknown"), "from_run": str(run_dir.resolve())}, indent=2))
    if to == "ollama":
        from ownchat.export.ollama import write_modelfile

        write_modelfile(dest, "model.gguf", meta["chat_template_jinja"])
        files.append("Modelfile")
    write_card(dest, meta, fmt=to, files=files)
    log(f"exported {to} -> {dest}")
    return dest


def _export_lora(run_dir: Path, meta: dict, dest: Path, log) -> Path:
    from ownchat.export.gguf import lora_to_gguf
    from ownchat.models.resolve import ensure_hf

    if not meta.get("adapter"):
        raise UserError(f"{run_dir} is a full fine-tune (no adapter): export --to gguf instead")
    base_dir = ensure_hf(meta["base"], log=log)
    lora_to_gguf(run_dir / meta["adapter"], base_dir, dest / "adapter.gguf", log=log)
    write_card(dest, meta, fmt="lora-gguf", files=["adapter.gguf"])
    log(f"exported lora-gguf -> {dest} (apply it to a GGUF of {meta['base']})")
    return dest
