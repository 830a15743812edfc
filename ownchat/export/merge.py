"""Run directory -> one full-precision Hugging Face model directory.

The adapter is merged into a freshly loaded fp32 copy of the base (never into the 4-bit base a
QLoRA run trained against: merging into quantised weights would bake the rounding error in). The
saved tokenizer carries the run's chat template, so any tool that reads the folder renders
prompts the way training did.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ownchat.errors import UserError
from ownchat.models.resolve import RUN_FILE


def read_run(run_dir: Path) -> dict:
    path = Path(run_dir) / RUN_FILE
    if not path.exists():
        raise UserError(f"{run_dir} is not a training run directory (no {RUN_FILE}); "
                        "train one with `ownchat train sft`")
    return json.loads(path.read_text())


def merge_run(run_dir: Path, out: Path, log=print) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ownchat.models.resolve import ensure_hf

    run_dir = Path(run_dir)
    meta = read_run(run_dir)
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    if meta.get("merged"):  # full fine-tune: the weights already are the model
        src = run_dir / meta["merged"]
        model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(src)
    else:
        from peft import PeftModel

        base_dir = ensure_hf(meta["base"], log=log)
        log(f"merging {run_dir / meta['adapter']} into {base_dir} (fp32)")
        base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
        model = PeftModel.from_pretrained(base, run_dir / meta["adapter"]).merge_and_unload()
        tok = AutoTokenizer.from_pretrained(base_dir)
    if meta.get("chat_template_jinja"):
        tok.chat_template = meta["chat_template_jinja"]
    model.config.use_cache = True
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    (tmp / "ownchat.json").write_text(json.dumps({"license": meta.get("license", "unknown"),
                                                   "from_run": str(run_dir.resolve())}, indent=2))
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out
