"""A random-weight miniature of a real model (same tokenizer and chat template) for dry runs.

Training plumbing (data, masks, resume, multi-process) is checked in seconds on this instead of
minutes on real weights; it is what the resume and accelerate tests use.
"""

from __future__ import annotations

from pathlib import Path


def make_tiny_model(out: Path, tokenizer_dir: Path, *, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out = Path(out)
    if (out / "config.json").exists():
        return out
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                      num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=1,
                      max_position_embeddings=2048, tie_word_embeddings=True,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out
