"""LoRA SFT throughput and memory: ownchat's loop vs TRL's SFTTrainer (defaults), same data and knobs.

Each trainer runs in its own subprocess (so peak RSS is its own); tokens/s counts the real (non-pad)
tokens of the batches over the timed steps (the first step, with its one-off allocations, is
excluded from both). Also prints tokens/s as a fraction of this CPU's measured peak matmul rate,
taking ~4 x parameters FLOPs per trained token for LoRA (forward 2N, input gradients 2N; the
frozen weights get no weight gradient).

    flock /tmp/ownchat-cpu.lock .venv/bin/python benchmarks/train.py [--steps 8]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = ("the model learns to answer questions about data training loss token batch memory speed cpu "
         "assistant user system language small large fast slow good better best why how what when "
         "because therefore example result value number list file path run step epoch").split()


def make_data(path: Path, n: int = 240, seed: int = 0) -> Path:
    """Conversations of mixed lengths (like real chat data: short questions, longer answers)."""
    rng = random.Random(seed)

    def text(lo: int, hi: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi))).capitalize() + "."

    with open(path, "w") as f:
        for _ in range(n):
            msgs = [{"role": "user", "content": text(8, 60)}, {"role": "assistant", "content": text(10, 150)}]
            f.write(json.dumps({"messages": msgs}) + "\n")
    return path


def peak_flops() -> dict[str, float]:
    import torch

    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a = torch.randn(2048, 2048, dtype=dtype)
        b = torch.randn(2048, 2048, dtype=dtype)
        a @ b
        n, t0 = 0, time.perf_counter()
        while n == 0 or time.perf_counter() - t0 < 2.0:  # bf16 can take seconds per product on CPUs
            a @ b
            n += 1
        out[name] = 2 * 2048**3 * n / (time.perf_counter() - t0)
    return out


WORKERS = ("trl", "trl-fp32", "ours", "ours-gc")


def worker_ours(data: Path, model: str, steps: int, bs: int, seq: int, gc: bool = False) -> dict:
    from ownchat.train.sft import SFTConfig, train_sft

    out = Path(tempfile.mkdtemp()) / "run"
    train_sft(SFTConfig(model=model, data=[data], out=out, max_steps=steps, batch_size=bs, seq_len=seq, lr=2e-4,
                        lora_r=8, lora_alpha=16, save_every=10_000, eval_fraction=0.0, gradient_checkpointing=gc),
              log=lambda *_: None)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()][1:]
    return {"tokens": sum(r["tokens"] for r in rows), "seconds": sum(r["step_s"] for r in rows)}


def worker_trl(data: Path, model: str, steps: int, bs: int, seq: int, fp32: bool = False) -> dict:
    import torch
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from ownchat.models.resolve import ensure_hf

    stats = {"tokens": 0, "seconds": 0.0, "step": 0}
    partial = os.environ.get("BENCH_PARTIAL")  # the parent reads this if the run is cut short

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            stats["step"] += 1
            if stats["step"] > 1:  # skip the first step, as for ours
                stats["seconds"] += time.perf_counter() - self.t0

        def on_log(self, args, state, control, logs=None, **kw):
            # TRL logs the cumulative count of real (attention-mask) tokens at every step
            seen = [float(h["num_tokens"]) for h in state.log_history if "num_tokens" in h]
            if partial and len(seen) >= 2:
                Path(partial).write_text(json.dumps({**stats, "tokens": seen[-1] - seen[0], "partial": True,
                                                     "peak_rss_mb": resource.getrusage(
                                                         resource.RUSAGE_SELF).ru_maxrss / 1024}))

    ds = load_dataset("json", data_files=str(data), split="train")
    args = SFTConfig(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=bs, max_length=seq,
                     learning_rate=2e-4, max_steps=steps, save_strategy="no", report_to=[], logging_steps=1,
                     seed=0, use_cpu=not torch.cuda.is_available(),  # TRL defaults bf16=True: needs this flag on CPU
                     **({"bf16": False, "gradient_checkpointing": False} if fp32 else {}))
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, task_type="CAUSAL_LM",
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    trainer = SFTTrainer(model=str(ensure_hf(model, log=lambda *_: None)), args=args, train_dataset=ds,
                         peft_config=lora, callbacks=[Timer()])
    trainer.train()
    # TRL logs the cumulative count of real (attention-mask) tokens it trained on at every step
    seen = [float(h["num_tokens"]) for h in trainer.state.log_history if "num_tokens" in h]
    stats["tokens"] = seen[-1] - seen[0]
    return stats


def run_worker(kind: str, a) -> dict | None:
    """One trainer in its own process (peak RSS is per process); None when it fails or runs too long."""
    cmd = [sys.executable, __file__, "--worker", kind, "--steps", str(a.steps), "--batch-size", str(a.batch_size),
           "--seq-len", str(a.seq_len), "--data", str(a.data), "--model", a.model]
    partial = Path(tempfile.mkdtemp()) / "partial.json"
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=a.worker_timeout,
                              env={**os.environ, "BENCH_PARTIAL": str(partial)})
    except subprocess.TimeoutExpired:
        if partial.exists():  # the steps it finished still give a rate
            res = json.loads(partial.read_text())
            print(f"{kind}: cut at {a.worker_timeout} s after {res['step']} steps; rate from those", file=sys.stderr)
            return res
        print(f"{kind}: no result within {a.worker_timeout} s", file=sys.stderr)
        return None
    if proc.returncode != 0:
        print(f"{kind} worker failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--data", type=Path)
    p.add_argument("--worker-timeout", type=float, default=900, help="seconds before a trainer is given up")
    p.add_argument("--worker", choices=WORKERS)
    p.add_argument("--only", nargs="+", choices=WORKERS, help="run only these trainers")
    a = p.parse_args()
    if a.worker:
        if a.worker.startswith("trl"):
            res = worker_trl(a.data, a.model, a.steps, a.batch_size, a.seq_len, fp32=a.worker == "trl-fp32")
        else:
            res = worker_ours(a.data, a.model, a.steps, a.batch_size, a.seq_len, gc=a.worker == "ours-gc")
        res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(res))
        return
    a.data = a.data or make_data(Path(tempfile.mkdtemp()) / "bench.jsonl")
    from ownchat.models.packs import PACKS

    params = PACKS[a.model].params if a.model in PACKS else None
    # TRL's defaults (bf16 autocast + gradient checkpointing) are the baseline the target names; the
    # fp32/no-checkpointing TRL row shows how much of the gap is those defaults rather than the loop.
    res = {k: run_worker(k, a) if not a.only or k in a.only else None for k in WORKERS}
    for r in res.values():
        if r:
            r["tok_s"] = r["tokens"] / max(1e-9, r["seconds"])
    peak = peak_flops()
    print(f"\nLoRA r=8 SFT, {a.model}, batch {a.batch_size} x {a.seq_len}, {a.steps} steps (first excluded)\n")
    print(f"{'trainer':<22}{'tokens/s':>10}{'peak RSS MB':>13}{'% fp32 peak':>13}{'% bf16 peak':>13}")
    names = {"trl": "TRL SFTTrainer", "trl-fp32": "TRL fp32, no ckpt", "ours": "ownchat", "ours-gc": "ownchat --grad-ckpt"}
    for key, name in names.items():
        r = res[key]
        if r is None:
            print(f"{name:<22}{'not run, failed or timed out':>36}")
            continue
        f32 = f"{100 * r['tok_s'] * 4 * params / peak['fp32']:.1f}%" if params else "?"
        b16 = f"{100 * r['tok_s'] * 4 * params / peak['bf16']:.1f}%" if params else "?"
        cut = f"  ({r['step']} steps, cut short)" if r.get("partial") else ""
        print(f"{name:<22}{r['tok_s']:>10.1f}{r['peak_rss_mb']:>13.0f}{f32:>13}{b16:>13}{cut}")
    print()
    for key in ("ours", "ours-gc"):
        for base, target in (("trl", " (target >= 1.5x at <= 1.0x)"), ("trl-fp32", "")):
            if res[key] and res[base]:
                speed = res[key]["tok_s"] / res[base]["tok_s"]
                mem = res[key]["peak_rss_mb"] / res[base]["peak_rss_mb"]
                print(f"{names[key]} / {names[base]}: {speed:.2f}x tokens/s, {mem:.2f}x peak RSS{target}")
    # torch's CPU bf16 GEMM can be hundreds of times slower than fp32 (no AMX): TRL's bf16 default then crawls
    print(f"peak matmul (2048x2048): fp32 {peak['fp32'] / 1e9:.1f} GFLOP/s, bf16 {peak['bf16'] / 1e9:.2f} GFLOP/s")


if __name__ == "__main__":
    main()
