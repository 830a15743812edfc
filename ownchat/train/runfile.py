"""``ownchat_run.json``: the contract between training, serving and export (docs/DEVELOPING.md).

Every trainer (SFT, DPO, reward model) writes it through ``write_run_file`` as the last act of a
run, so its presence means the run finished; ``read_run_file`` is how training code reads one back
(an SFT run continued by DPO, a reward model loaded for reranking).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ownchat.errors import UserError
from ownchat.licensing import lookup
from ownchat.models.resolve import RUN_FILE

# Template names llama.cpp knows; anything else travels as Jinja text.
_LLAMACPP_NAMES = {"chatml", "llama3", "gemma"}


def write_run_file(out: Path, *, stage: str, base: str, base_dir: Path, license: str, template: tuple[str, str],
                   method: str, data: list[dict[str, Any]], hyperparameters: dict[str, Any],
                   final_loss: float | None, eval_loss: float | None, steps: int, result: dict[str, Any],
                   parent_adapter: Path | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Write ``out/ownchat_run.json`` atomically. ``template`` is ``choose_template``'s (name, jinja)."""
    name, jinja = template
    if Path(base).expanduser().exists():  # a local path must survive the run directory moving
        base = str(Path(base).expanduser().resolve())
    terms = lookup(license)
    meta = {
        "stage": stage,
        "base": base,
        "base_hf_dir": str(base_dir),
        "adapter": "adapter" if method in ("lora", "qlora") else None,
        "merged": "model" if method == "full" else None,
        # serving engines take this as is: a llama.cpp template name, or None for the model's own
        "chat_template": name if name in _LLAMACPP_NAMES else (None if name == "model" else jinja),
        "chat_template_name": name,
        "chat_template_jinja": jinja,
        "license": license,
        "license_terms": {"key": terms.key, "commercial": terms.commercial, "note": terms.note},
        "data": data,
        "method": method,
        "hyperparameters": hyperparameters,
        "final_loss": final_loss,
        "eval_loss": eval_loss,
        "steps": steps,
        "parent_adapter": str(parent_adapter) if parent_adapter else None,
        "result": result,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **(extra or {}),
    }
    path = Path(out) / RUN_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=2, default=str))
    tmp.replace(path)
    return path


def read_run_file(run_dir: str | Path) -> dict[str, Any]:
    """The run file of a finished run, or a UserError saying ``run_dir`` is not one."""
    path = Path(run_dir) / RUN_FILE
    if not path.exists():
        raise UserError(f"{run_dir} is not a finished training run (no {RUN_FILE})")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); train the run again") from None


def is_run_dir(path: str | Path) -> bool:
    return (Path(path) / RUN_FILE).exists()
