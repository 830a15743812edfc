"""Loading the base model for LoRA / QLoRA / full fine-tuning, and saving what was trained."""

from __future__ import annotations

from pathlib import Path

import torch

from ownchat.errors import UserError
from ownchat.train.config import SFTConfig
from ownchat.train.lora import wrap_lora


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


def load_for_training(base_dir: Path, cfg: SFTConfig, log=print):
    from transformers import AutoModelForCausalLM

    dtype = pick_dtype(cfg.dtype)
    kwargs: dict = {"dtype": dtype}
    if cfg.method == "qlora":
        why = qlora_available()
        if why:
            raise UserError(f"{why}. Use --method lora (same adapter, full-precision base) instead.")
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype)
        kwargs["device_map"] = {"": torch.cuda.current_device()}
    model = AutoModelForCausalLM.from_pretrained(base_dir, **kwargs)
    model.config.use_cache = False
    if cfg.method == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    elif cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    if cfg.method in ("lora", "qlora"):
        model = wrap_lora(model, r=cfg.lora_r, alpha=cfg.lora_alpha, dropout=cfg.lora_dropout,
                          target_modules=cfg.target_modules)
    return model


def save_trained(model, inner, tokenizer, template: str, out: Path, cfg: SFTConfig) -> Path:
    """The adapter (lora/qlora) or the full weights (full), with the tokenizer carrying the template."""
    tokenizer.chat_template = template  # serving the folder on its own renders prompts as training did
    if cfg.method in ("lora", "qlora"):
        dest = out / "adapter"
        model.save_pretrained(dest)
    else:
        dest = out / "model"
        inner.config.use_cache = True
        inner.save_pretrained(dest, safe_serialization=True)
    tokenizer.save_pretrained(dest)
    return dest
