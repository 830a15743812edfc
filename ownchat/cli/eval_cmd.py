"""``ownchat eval gsm8k``: grade-school maths accuracy with 95% intervals, greedy and self-consistency."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ownchat.cli.common import console, progress, user_errors

app = typer.Typer(help="Benchmarks with confidence intervals.", no_args_is_help=True)


def progress_callback(bar):
    """Adapt ``(phase, done, total)`` callbacks to one Rich task per phase."""
    tasks: dict[str, int] = {}

    def update(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(phase, total=total)
        bar.update(tasks[phase], completed=done, total=total)

    return update


@app.command("gsm8k")
@user_errors
def gsm8k(
    model: str = typer.Option(..., "--model", "-m", help="pack name, .gguf, HF dir or training run dir"),
    data: Path = typer.Option(None, "--data", help="GSM8K-format JSONL (default: the gsm8k pack's test set)"),
    subset: int = typer.Option(None, "--subset", help="evaluate this many questions"),
    offset: int = typer.Option(0, "--offset", help="skip this many questions first"),
    sc: int = typer.Option(0, "--sc", help="also run self-consistency with K samples (0 = greedy only)"),
    no_greedy: bool = typer.Option(False, "--no-greedy", help="skip the greedy pass (SC only)"),
    shots: int = typer.Option(3, "--shots", help="few-shot chain-of-thought exemplars (0-4)"),
    max_tokens: int = typer.Option(256, "--max-tokens"),
    temperature: float = typer.Option(0.7, "--temperature", help="sampling temperature for SC"),
    top_p: float = typer.Option(0.95, "--top-p"),
    seed: int = typer.Option(0, "--seed", help="sample k uses seed + k"),
    engine: str = typer.Option(None, "--engine", help="llamacpp | hf (default: by model type)"),
    concurrency: int = typer.Option(None, "--concurrency", help="requests in flight (llama.cpp slots)"),
    no_cache: bool = typer.Option(False, "--no-cache", help="do not use the response cache"),
    out: Path = typer.Option(Path("runs/eval-gsm8k"), "--out", help="output directory (resumable)"),
) -> None:
    """Accuracy on GSM8K with a 95% Wilson interval; --sc K adds majority voting and an accuracy-vs-K plot."""
    from ownchat.improve.evaluate import EvalConfig, evaluate_gsm8k

    cfg = EvalConfig(model=model, out=out, data=str(data) if data else None, offset=offset, subset=subset,
                     shots=shots, max_tokens=max_tokens, greedy=not no_greedy, sc_k=sc,
                     temperature=temperature, top_p=top_p, seed=seed, engine=engine, concurrency=concurrency,
                     cache=not no_cache)
    with progress("gsm8k") as bar:
        result = evaluate_gsm8k(cfg, log=console.print, on_progress=progress_callback(bar))
    console.print(f"[bold]n = {result.n}[/]  timings {json.dumps(result.timings)}")
    if result.greedy:
        console.print(f"greedy CoT        {result.greedy}")
    if result.sc:
        console.print(f"self-consistency  {result.sc}  (K={result.sc_k})")
    console.print(f"wrote {out}/summary.json")
