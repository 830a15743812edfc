"""Peak memory of DPO training: ownchat's LoRA DPO vs TRL's DPOTrainer, same model, data and batch.

Each variant runs in its own subprocess (peak RSS is per process and never goes down), trains a
few steps on the same synthetic preference pairs, and reports its peak resident memory and its
seconds per step. Rows:

- ``ownchat``: LoRA, reference = adapter disabled, the LM head on answer tokens only (chunked), and
  on CPU the batch's pairs split into forward passes of ~512 tokens (``--tokens-per-pass``, the
  default there): the loss is a sum over independent pairs, so the gradient of the batch is the
  same with a fraction of the activations.
- ``ownchat-gc``: ``ownchat`` with ``--gradient-checkpointing`` (TRL's default turns it on): the
  like-for-like row against ``trl-defaults``.
- ``ownchat-onepass``: all pairs of the batch in one forward pass (the default on GPUs).
- ``trl-defaults``: ``DPOTrainer`` with its defaults (full fine-tuning, a second model as reference).
- ``trl-lora``: ``DPOTrainer`` with the same LoRA config (``peft_config``): the fair comparison.

    python benchmarks/dpo_memory.py [--model DIR] [--steps 2] [--batch-size 4] [--answer-words 120]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = ("ownchat", "ownchat-gc", "ownchat-onepass", "trl-defaults", "trl-lora")


def make_pairs(path: Path, n: int, words: int) -> None:
    """Pairs with answers of roughly ``words`` words, so activations and logits have a real size."""
    body = ("The answer depends on the details, so here is a careful explanation with examples. " * 20).split()
    rows = []
    for i in range(n):
        ans = " ".join(body[:words])
        rows.append({"prompt": [{"role": "user", "content": f"Question number {i}: explain topic {i} briefly."}],
                     "chosen": [{"role": "assistant", "content": f"{ans} Final note {i}. — Tern"}],
                     "rejected": [{"role": "assistant", "content": f"{ans} Final note {i}."}]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run_ownchat(model: str, data: Path, out: Path, steps: int, batch: int, variant: str) -> dict:
    from ownchat.train.dpo import DPOConfig, train_dpo

    res = train_dpo(DPOConfig(model=model, data=data, out=out, max_steps=steps, batch_size=batch, seq_len=1024,
                              lr=5e-5, save_every=10_000, gradient_checkpointing=variant == "ownchat-gc",
                              tokens_per_pass=10**9 if variant == "ownchat-onepass" else None), log=lambda m: None)
    per_step = [json.loads(line)["step_s"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {"seconds_per_step": sum(per_step) / len(per_step), "loss": res.final_loss}


def run_trl(model: str, data: Path, out: Path, steps: int, batch: int, lora: bool) -> dict:
    from datasets import load_dataset
    from transformers import AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    ds = load_dataset("json", data_files=str(data), split="train")
    tok = AutoTokenizer.from_pretrained(model)
    args = DPOConfig(output_dir=str(out), max_steps=steps, per_device_train_batch_size=batch, save_strategy="no",
                     report_to="none", logging_steps=1, use_cpu=True)
    peft_config = None
    if lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, task_type="CAUSAL_LM",
                                 target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                 "down_proj"])
    trainer = DPOTrainer(model=model, args=args, train_dataset=ds, processing_class=tok, peft_config=peft_config)
    t0 = time.time()
    result = trainer.train()
    return {"seconds_per_step": (time.time() - t0) / steps, "loss": result.training_loss,
            "gradient_checkpointing": args.gradient_checkpointing, "max_length": args.max_length}


def child(variant: str, model: str, data: Path, steps: int, batch: int) -> None:
    # what the libraries cost before any model is loaded, so the table can show the training part alone
    if variant.startswith("ownchat"):
        import peft  # noqa: F401
        import transformers  # noqa: F401

        import ownchat.train.dpo  # noqa: F401
    else:
        import trl  # noqa: F401
        from trl import DPOTrainer  # noqa: F401
    imports = peak_rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        if variant.startswith("ownchat"):
            info = run_ownchat(model, data, Path(tmp) / "run", steps, batch, variant)
        else:
            info = run_trl(model, data, Path(tmp) / "run", steps, batch, lora=variant == "trl-lora")
    print("RESULT " + json.dumps({"variant": variant, "peak_rss_mb": peak_rss_mb(), "imports_mb": imports, **info}),
          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="HF model dir (default: the SmolLM2 pack, converted)")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--pairs", type=int, default=16)
    ap.add_argument("--answer-words", type=int, default=120)
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS))
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--data", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child, a.model, Path(a.data), a.steps, a.batch_size)
        return
    if a.model is None:
        from ownchat.models.resolve import ensure_hf

        a.model = str(ensure_hf("smollm2-135m-instruct"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "pairs.jsonl"
        make_pairs(data, a.pairs, a.answer_words)
        for v in a.variants:
            cmd = [sys.executable, __file__, "--child", v, "--model", a.model, "--data", str(data),
                   "--steps", str(a.steps), "--batch-size", str(a.batch_size)]
            proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
            line = next((s for s in proc.stdout.splitlines() if s.startswith("RESULT ")), None)
            if proc.returncode != 0 or line is None:
                print(f"{v}: failed (exit {proc.returncode})\n{proc.stderr[-3000:]}", file=sys.stderr)
                continue
            rows.append(json.loads(line[len("RESULT "):]))
    base = next((r for r in rows if r["variant"] == "trl-defaults"), None)
    print(f"\nDPO step memory: {Path(a.model).name}, batch {a.batch_size} pairs, ~{a.answer_words}-word answers, "
          f"{a.steps} steps, {os.cpu_count()} CPUs")
    print(f"{'variant':<14}{'peak RSS (MB)':>15}{'ratio':>8}{'minus imports':>15}{'ratio':>8}{'s/step':>9}")
    for r in rows:
        train = r["peak_rss_mb"] - r["imports_mb"]
        ratio = f"{r['peak_rss_mb'] / base['peak_rss_mb']:.2f}x" if base else "n/a"
        ratio2 = f"{train / (base['peak_rss_mb'] - base['imports_mb']):.2f}x" if base else "n/a"
        print(f"{r['variant']:<14}{r['peak_rss_mb']:>15.0f}{ratio:>8}{train:>15.0f}{ratio2:>8}"
              f"{r['seconds_per_step']:>9.1f}")
    print("ratios are against trl-defaults; 'minus imports' subtracts the RSS of importing the libraries")
    if base:
        print(f"(TRL defaults: gradient_checkpointing={base.get('gradient_checkpointing')}, "
              f"max_length={base.get('max_length')})")


if __name__ == "__main__":
    main()
