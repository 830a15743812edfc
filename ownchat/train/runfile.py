"""``ownchat_run.json``: the contract between training, serving and export (docs/DEVELOPING.md)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ownchat.licensing import lookup
from ownchat.train.config import SFTConfig, TrainResult
from ownchat.train.data import TrainData

# Template names llama.cpp knows; anything else travels as Jinja text.
_LLAMACPP_NAMES = {"chatml", "llama3", "gemma"}


def write_run_file(out: Path, *, cfg: SFTConfig, ref, base_dir: Path, template: tuple[str, str],
                   data: TrainData, result: TrainResult, stage: str = "sft", extra: dict | None = None) -> Path:
    name, jinja = template
    base = str(cfg.model)
    if Path(base).expanduser().exists():  # a local path must survive the run directory moving
        base = str(Path(base).expanduser().resolve())
    terms = lookup(ref.license)
    meta = {
        "stage": stage,
        "base": base,
        "base_hf_dir": str(base_dir),
        "adapter": "adapter" if cfg.method in ("lora", "qlora") else None,
        "merged": "model" if cfg.method == "full" else None,
        # serving engines take this as is: a llama.cpp template name, or None for the model's own
        "chat_template": name if name in _LLAMACPP_NAMES else (None if name == "model" else jinja),
        "chat_template_name": name,
        "chat_template_jinja": jinja,
        "license": ref.license,
        "license_terms": {"key": terms.key, "commercial": terms.commercial, "note": terms.note},
        "data": [f.to_dict() for f in data.files],
        "method": cfg.method,
        "hyperparameters": cfg.to_dict(),
        "final_loss": result.final_loss,
        "eval_loss": result.eval_loss,
        "steps": result.steps,
        "result": result.to_dict(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **(extra or {}),
    }
    path = out / "ownchat_run.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=2, default=str))
    tmp.replace(path)
    return path
