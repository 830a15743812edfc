"""GGUF -> Hugging Face directory (safetensors + tokenizer), made once and cached.

transformers dequantises GGUF weights to fp32 on load (``gguf_file=``); that costs seconds to a
minute, so we do it once per pack and keep the directory under ``$OWNCHAT_HOME/hf``.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from ownchat.models.ref import ModelRef
from ownchat.paths import hf_dir


def hf_dir_for(ref: ModelRef) -> Path:
    name = ref.pack.name if ref.pack else ref.path.stem
    return hf_dir() / name


def gguf_to_hf(ref: ModelRef, out: Path, log=print) -> Path:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.time()
    log(f"converting {ref.path.name} to a Hugging Face directory (dequantised, once) ...")
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    folder, name = str(ref.path.parent), ref.path.name
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype="float32")
    # The dequantised weights are plain tensors now; saving them as "quantised" would break loading.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    if not tok.chat_template and ref.has_chat_template is False:
        pass  # base model: the trainer applies a named default template and records it
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    meta = {
        "source": str(ref.path),
        "pack": ref.pack.name if ref.pack else None,
        "license": ref.license,
        "hf_repo": ref.pack.hf_repo if ref.pack else None,
        "has_chat_template": bool(tok.chat_template),
        "converted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.time() - t0, 1),
    }
    (tmp / "ownchat.json").write_text(json.dumps(meta, indent=2))
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    log(f"converted in {time.time() - t0:.0f}s -> {out}")
    return out
