"""``ownchat eval``: GSM8K, IFEval and teacher NLL with 95% intervals, and paired before -> after comparisons."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ownchat.cli.common import TemplateOpt, console, progress, template_arg, user_errors

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


@app.command("ifeval")
@user_errors
def ifeval(
    model: str = typer.Option(..., "--model", "-m", help="pack name, .gguf, HF dir, training run dir or openai:NAME"),
    subset: int = typer.Option(None, "--subset", help="the first N prompts of IFEval's fixed spread (nested)"),
    data: Path = typer.Option(None, "--data", help="IFEval-format JSONL (default: the ifeval pack's 541 prompts)"),
    max_tokens: int = typer.Option(512, "--max-tokens", help="answer budget; answers cut here are counted"),
    engine: str = typer.Option(None, "--engine", help="llamacpp | hf | openai (default: by model type)"),
    concurrency: int = typer.Option(None, "--concurrency", help="requests in flight (llama.cpp slots)"),
    chat_template: str = TemplateOpt,
    no_cache: bool = typer.Option(False, "--no-cache", help="do not use the response cache"),
    out: Path = typer.Option(Path("runs/eval-ifeval"), "--out", help="output directory (resumable)"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON on stdout"),
) -> None:
    """Instruction following checked by code (IFEval): prompt/instruction, strict/loose, 95% CIs."""
    from ownchat.judge.ifeval import IFEvalConfig, evaluate_ifeval

    cfg = IFEvalConfig(model=model, out=out, data=str(data) if data else None, subset=subset,
                       max_tokens=max_tokens, engine=engine, concurrency=concurrency, cache=not no_cache,
                       extra={"chat_template": t} if (t := template_arg(chat_template)) else {})
    with progress("ifeval") as bar:
        s = evaluate_ifeval(cfg, log=lambda m: console.print(m, highlight=False, markup=False),
                            on_progress=progress_callback(bar))
    if as_json:
        typer.echo(json.dumps(s, indent=2, ensure_ascii=False))
        return
    avg = s["average"]
    typer.echo(f"{s['label']}: IFEval average {avg['value'] * 100:.1f} [{avg['ci95'][0] * 100:.1f}, "
               f"{avg['ci95'][1] * 100:.1f}] over {s['n']} prompts")
    for key in ("prompt_strict", "instruction_strict", "prompt_loose", "instruction_loose", "stopped"):
        m = s[key]
        typer.echo(f"  {key.replace('_', ' '):20s} {m['accuracy'] * 100:5.1f}%  "
                   f"[{m['ci95'][0] * 100:.1f}, {m['ci95'][1] * 100:.1f}]  n={m['n']}")
    typer.echo(f"wrote {out}/report.md")


@app.command("teacher-nll")
@user_errors
def teacher_nll(
    model: str = typer.Option(..., "--model", "-m", help="pack name, HF dir or training run dir (scored with transformers)"),
    data: Path = typer.Option(..., "--data", "-d", help="held-out teacher answers (JSONL/JSON: messages, Alpaca, ShareGPT)"),
    out: Path = typer.Option(Path("runs/eval-teacher-nll"), "--out", help="output directory (resumable)"),
    max_len: int = typer.Option(1024, "--max-len", help="tokens per conversation (longer ones are cut)"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON on stdout"),
) -> None:
    """Mean NLL per token of held-out teacher answers under the model: distance to the teacher (lower is closer)."""
    from ownchat.judge.teacher_nll import evaluate_nll

    with progress("teacher-nll") as bar:
        s = evaluate_nll(model, data, out, max_len=max_len, log=lambda m: console.print(m, markup=False),
                         on_progress=progress_callback(bar))
    if as_json:
        typer.echo(json.dumps(s, indent=2))
        return
    typer.echo(f"{model}: teacher NLL {s['nll_per_token']:.3f} nats/token [{s['ci95'][0]:.3f}, {s['ci95'][1]:.3f}] "
               f"(perplexity {s['perplexity']:.2f}) over {s['examples']} answers, {s['tokens']} tokens")


@app.command("compare")
@user_errors
def compare(
    before: Path = typer.Argument(..., help="an `eval ifeval` or `eval teacher-nll` output directory (e.g. the base)"),
    after: Path = typer.Argument(..., help="another one on the same items (e.g. the tuned model)"),
    as_json: bool = typer.Option(False, "--json", help="print the comparison as JSON on stdout"),
) -> None:
    """AFTER − BEFORE on the same items: paired bootstrap CIs (and McNemar's exact test for pass/fail)."""
    from ownchat.judge.ifeval_score import compare_runs, describe_comparison

    b_name, a_name = _run_names(before, after)
    if (before / "nll.jsonl").exists() and (after / "nll.jsonl").exists():
        from ownchat.judge.teacher_nll import compare_nll, describe_nll

        c = compare_nll(before, after)
        typer.echo(json.dumps(c, indent=2) if as_json else describe_nll(c, b_name, a_name))
        return
    c = compare_runs(before, after, names=(b_name, a_name))
    if as_json:
        typer.echo(json.dumps(c, indent=2))
        return
    for line in describe_comparison(c):
        typer.echo(line)
    r = c["ratio"]
    typer.echo(f"{a_name} reaches {r['value'] * 100:.0f}% of {b_name}'s IFEval average "
               f"[{r['ci95'][0] * 100:.0f}%, {r['ci95'][1] * 100:.0f}%]")


def _run_names(before: Path, after: Path) -> tuple[str, str]:
    """Folder names, or parent/name when both folders share a name (runs/a/ifeval vs runs/b/ifeval)."""
    b, a = before.resolve(), after.resolve()
    if b.name != a.name:
        return b.name, a.name
    return f"{b.parent.name}/{b.name}", f"{a.parent.name}/{a.name}"
