"""Where a run starts (base model, licence, template, adapter to continue), loading the base for
LoRA / QLoRA / full training, and saving what was trained."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ownchat.errors import UserError
from ownchat.train.lora import wrap_lora


@dataclass
class Start:
    """Where a run starts: base model, licence, template, and the adapter to continue (if any)."""

    base: str  # reference recorded in ownchat_run.json
    base_dir: Path  # the Hugging Face directory that is loaded
    license: str
    template: str | None  # name or Jinja asked for (flag or earlier run); None: decide from the tokenizer
    adapter: Path | None


def resolve_start(model: str, adapter: Path | None, template: str | None, log=print) -> Start:
    """``model`` may be a pack, HF dir or an earlier run; ``adapter`` a run dir or a bare adapter folder."""
    from ownchat.models.resolve import ensure_hf, resolve
    from ownchat.train.runfile import is_run_dir, read_run_file

    ref = resolve(str(model), log=log)
    # a run with an adapter is recorded by its base; a merged (full) run is itself the base
    base = ref.meta.get("base", str(model)) if ref.meta and ref.adapter else str(model)
    adapter_dir = ref.adapter
    if adapter is not None:
        adapter = Path(adapter)
        if is_run_dir(adapter):
            meta = read_run_file(adapter)
            if not meta.get("adapter"):
                raise UserError(f"{adapter} has no adapter to continue (merged run?): pass it as --model")
            adapter_dir = adapter / meta["adapter"]
            template = template or meta.get("chat_template")
        elif (adapter / "adapter_config.json").exists():
            adapter_dir = adapter
        else:
            raise UserError(f"{adapter} is neither a training run (ownchat_run.json) nor a PEFT adapter folder")
    template = template or ref.chat_template
    base_dir = ensure_hf(base, log=log) if ref.adapter or ref.kind == "gguf" else ref.path
    return Start(base, base_dir, ref.license, template, adapter_dir)


def pick_dtype(name: str) -> torch.dtype:
    if name != "auto":
        return getattr(torch, name)
    # fp32 on CPU: bf16 matmuls are slower than fp32 on most CPUs without AMX, and LoRA is small
    if torch.cuda.is_available():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def qlora_available() -> str | None:
    """None when QLoRA can run here, else the reason it cannot."""
    if not torch.cuda.is_available():
        return "QLoRA needs a CUDA GPU (4-bit bitsandbytes kernels); this machine has none"
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        return "QLoRA needs bitsandbytes: pip install bitsandbytes"
    return None


def load_base(base_dir: Path, cfg, *, reward_head: bool = False, pad_id: int | None = None):
    """The transformers model to train: a causal LM, or (``reward_head``) one scalar-output classifier."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    method = getattr(cfg, "method", "lora")
    dtype = pick_dtype(cfg.dtype)
    kwargs: dict = {"dtype": dtype}
    if method == "qlora":
        why = qlora_available()
        if why:
            raise UserError(f"{why}. Use --method lora (same adapter, full-precision base) instead.")
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype)
        kwargs["device_map"] = {"": torch.cuda.current_device()}
    if reward_head:
        model = AutoModelForSequenceClassification.from_pretrained(base_dir, num_labels=1, **kwargs)
        model.config.pad_token_id = pad_id
    else:
        model = AutoModelForCausalLM.from_pretrained(base_dir, **kwargs)
    model.config.use_cache = False
    if method == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    elif cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    return model


def add_adapter(model, cfg, *, continue_from: Path | None = None, task: str = "CAUSAL_LM"):
    """A fresh LoRA adapter ``default`` (or ``continue_from``'s weights, trainable); ``full`` adds none."""
    if getattr(cfg, "method", "lora") == "full":
        return model
    if continue_from is not None:
        from peft import PeftModel

        return PeftModel.from_pretrained(model, str(continue_from), is_trainable=True)
    return wrap_lora(model, r=cfg.lora_r, alpha=cfg.lora_alpha or 2 * cfg.lora_r, dropout=cfg.lora_dropout,
                     target_modules=getattr(cfg, "target_modules", None), task_type=task)


def load_for_training(base_dir: Path, cfg, log=print):
    """SFT's model: the base (4-bit for QLoRA) with a fresh LoRA adapter, or all weights for ``full``."""
    return add_adapter(load_base(base_dir, cfg), cfg)


def save_trained(model, tokenizer, template: str, out: Path, method: str) -> Path:
    """The adapter ``default`` (lora/qlora) or the full weights (full), with the tokenizer carrying the
    template; written to a temporary folder and renamed, so a crash never leaves half of one."""
    tokenizer.chat_template = template  # serving the folder on its own renders prompts as training did
    dest = Path(out) / ("model" if method == "full" else "adapter")
    tmp = dest.with_name("." + dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    if method == "full":
        from ownchat.train.token_loss import unwrap_causal_lm

        inner = unwrap_causal_lm(model)
        inner.config.use_cache = True
        inner.save_pretrained(tmp, safe_serialization=True)
    else:  # only the trained adapter: DPO may hold a frozen reference copy named "ref" beside it
        model.save_pretrained(tmp, selected_adapters=["default"])
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def adapter_targets(model: Any) -> list[str] | None:
    peft_cfg = getattr(model, "peft_config", {}).get("default")
    return sorted(peft_cfg.target_modules) if peft_cfg is not None and peft_cfg.target_modules else None
