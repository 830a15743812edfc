"""Which linear layers get LoRA adapters, per architecture, and the PEFT model around them.

The table covers the families ownchat ships packs for and their close relatives; anything else
falls back to scanning the model for the projections of attention and MLP blocks by name (never
the output head, which would tie LoRA into the embeddings on tied-weight models).
"""

from __future__ import annotations

from ownchat.errors import UserError

_ALL_PROJ = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

TARGETS: dict[str, list[str]] = {
    "llama": _ALL_PROJ, "mistral": _ALL_PROJ, "qwen2": _ALL_PROJ, "qwen3": _ALL_PROJ,
    "gemma": _ALL_PROJ, "gemma2": _ALL_PROJ, "gemma3": _ALL_PROJ, "gemma3_text": _ALL_PROJ,
    "phi3": ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "gpt_neox": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
    "falcon": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
}

_SKIP = ("lm_head", "embed", "wte", "wpe", "score", "classifier")


def detect_target_modules(model) -> list[str]:
    """Module-name suffixes to adapt: the table entry for ``model_type`` or a scan of Linear layers."""
    import torch.nn as nn

    mtype = getattr(model.config, "model_type", "")
    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules()
             if isinstance(m, nn.Linear) or type(m).__name__ in ("Conv1D", "Linear4bit", "Linear8bitLt")}
    if mtype in TARGETS:
        found = [t for t in TARGETS[mtype] if t in names]
        if found:
            return found
    found = sorted(n for n in names if not any(s in n for s in _SKIP))
    if not found:
        raise UserError(f"no linear layers found to adapt in a {mtype!r} model: pass --target-modules")
    return found


def wrap_lora(model, *, r: int, alpha: int, dropout: float, target_modules: list[str] | None,
              task_type: str = "CAUSAL_LM"):
    """The PEFT model, with only the adapter weights trainable (and, for ``SEQ_CLS``, the score head)."""
    from peft import LoraConfig, get_peft_model

    targets = target_modules or detect_target_modules(model)
    cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets,
                     bias="none", task_type=task_type)
    return get_peft_model(model, cfg)


def count_parameters(model) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
