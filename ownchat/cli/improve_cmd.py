"""``ownchat improve``: self-consistency decoding and label-free self-improvement (LMSI)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ownchat.cli.common import console, progress, user_errors
from ownchat.cli.eval_cmd import progress_callback

app = typer.Typer(help="Better answers without labels: self-consistency and LMSI.", no_args_is_help=True)


@app.command("sc")
@user_errors
def sc(
    model: str = typer.Option(..., "--model", "-m", help="pack name, .gguf, HF dir or training run dir"),
    questions: Path = typer.Option(..., "--questions", "-q",
                                   help="JSONL: GSM8K records ({question[, answer]}) or chat records"),
    k: int = typer.Option(5, "--k", help="samples per question"),
    temperature: float = typer.Option(0.7, "--temperature"),
    top_p: float = typer.Option(0.95, "--top-p"),
    max_tokens: int = typer.Option(256, "--max-tokens"),
    shots: int = typer.Option(3, "--shots", help="few-shot maths exemplars for {question} records (0-4)"),
    seed: int = typer.Option(0, "--seed", help="sample k uses seed + k"),
    engine: str = typer.Option(None, "--engine", help="llamacpp | hf (default: by model type)"),
    concurrency: int = typer.Option(None, "--concurrency"),
    no_cache: bool = typer.Option(False, "--no-cache"),
    out: Path = typer.Option(Path("runs/sc"), "--out", help="output directory (sc.jsonl, summary.json)"),
) -> None:
    """Sample K answers per question, take the majority; the vote share is the confidence."""
    from ownchat.improve.sc_file import SCFileConfig, run_sc_file

    cfg = SCFileConfig(model=model, questions=questions, out=out, k=k, temperature=temperature, top_p=top_p,
                       max_tokens=max_tokens, seed=seed, shots=shots, engine=engine, concurrency=concurrency,
                       cache=not no_cache)
    with progress("sc") as bar:
        summary = run_sc_file(cfg, log=console.print, on_progress=progress_callback(bar))
    console.print(f"{summary['answered']}/{summary['questions']} answered, mean confidence "
                  f"{summary['mean_confidence']:.2f}")
    if "accuracy" in summary:
        console.print(f"accuracy {json.dumps(summary['accuracy'])}")
    console.print(f"wrote {out}/sc.jsonl")


@app.command("lmsi")
@user_errors
def lmsi(
    model: str = typer.Option(..., "--model", "-m", help="base model (pack name or HF dir)"),
    questions: Path = typer.Option(None, "--questions", "-q",
                                   help="unlabeled JSONL with 'question' (default: GSM8K test beyond the eval block)"),
    pool_size: int = typer.Option(None, "--pool-size", help="use at most this many unlabeled questions"),
    k: int = typer.Option(8, "--k", help="rationales sampled per question"),
    tau: float = typer.Option(0.6, "--tau", help="minimum majority vote share to keep a question"),
    temperature: float = typer.Option(0.7, "--temperature"),
    max_tokens: int = typer.Option(256, "--max-tokens"),
    shots: int = typer.Option(3, "--shots"),
    max_rationales: int = typer.Option(4, "--max-rationales", help="distinct rationales kept per question"),
    keep_truncated: bool = typer.Option(False, "--keep-truncated",
                                        help="also train on rationales cut off by --max-tokens"),
    eval_size: int = typer.Option(300, "--eval-size", help="evaluate on the first N test questions"),
    eval_offset: int = typer.Option(0, "--eval-offset"),
    eval_sc: int = typer.Option(0, "--eval-sc", help="also evaluate with self-consistency (K samples)"),
    max_steps: int = typer.Option(100, "--max-steps"),
    lr: float = typer.Option(2e-4, "--lr"),
    batch_size: int = typer.Option(4, "--batch-size"),
    seq_len: int = typer.Option(512, "--seq-len"),
    lora_r: int = typer.Option(8, "--lora-r"),
    seed: int = typer.Option(0, "--seed"),
    engine: str = typer.Option("hf", "--engine", help="engine for sampling and the before/after evals"),
    concurrency: int = typer.Option(None, "--concurrency"),
    no_cache: bool = typer.Option(False, "--no-cache"),
    out: Path = typer.Option(..., "--out", help="output directory (resumable)"),
) -> None:
    """Sample rationales, keep confident majorities, LoRA-tune on them, evaluate before vs after."""
    from ownchat.improve.lmsi import LMSIConfig, run_lmsi

    cfg = LMSIConfig(model=model, out=out, questions=str(questions) if questions else None, pool_size=pool_size,
                     eval_offset=eval_offset, eval_size=eval_size, k=k, tau=tau, temperature=temperature,
                     max_tokens=max_tokens, shots=shots, max_rationales=max_rationales,
                     keep_truncated=keep_truncated, seed=seed,
                     max_steps=max_steps, lr=lr, batch_size=batch_size, seq_len=seq_len, lora_r=lora_r,
                     eval_sc_k=eval_sc, engine=engine, concurrency=concurrency, cache=not no_cache)
    with progress("lmsi") as bar:
        result = run_lmsi(cfg, log=console.print, on_progress=progress_callback(bar))
    console.print(f"kept {result.kept_questions}/{result.pool} questions, {result.train_examples} training "
                  f"conversations, final loss {result.final_loss}")
    console.print((out / "report.md").read_text())
