"""``ownchat feedback``: the student samples, the teacher scores, preference pairs come out."""

from __future__ import annotations

from pathlib import Path

import typer

from ownchat.cli.common import console, progress, user_errors


def register(app: typer.Typer) -> None:
    app.command("feedback")(feedback)


@user_errors
def feedback(
    student: str = typer.Option(..., "--student", "-s", help="model or training run that answers"),
    teacher: str = typer.Option(..., "--teacher", "-t", help="model that scores (pack, GGUF, HF dir, openai:NAME)"),
    prompts: Path = typer.Option(..., "--prompts", "-p", help="JSONL with `prompt` or `messages`, optional `reference`"),
    out: Path = typer.Option(..., "--out", "-o", help="preference pairs (JSONL); scores go to <out>.scores.jsonl"),
    k: int = typer.Option(4, "--k", help="student samples per prompt"),
    include_teacher: bool = typer.Option(False, "--include-teacher", help="the teacher's own answer joins the pool"),
    pairs: str = typer.Option("best-worst", "--pairs", help="best-worst | margin (all pairs >= --margin apart)"),
    margin: float = typer.Option(1.0, "--margin", help="minimum score gap for a pair; closer is a tie"),
    temperature: float = typer.Option(0.8, "--temperature", help="student sampling temperature (> 0)"),
    top_p: float = typer.Option(0.95, "--top-p"),
    max_tokens: int = typer.Option(256, "--max-tokens"),
    seed: int = typer.Option(0, "--seed", help="sample j of a prompt uses seed + j"),
    retries: int = typer.Option(2, "--retries", help="follow-up turns when a score cannot be parsed"),
    limit: int = typer.Option(None, "--limit", help="only the first N prompts"),
    student_engine: str = typer.Option(None, "--student-engine", help="llamacpp | hf | openai"),
    teacher_engine: str = typer.Option(None, "--teacher-engine", help="llamacpp | hf | openai"),
    teacher_base_url: str = typer.Option(None, "--teacher-base-url", help="OpenAI-compatible server"),
    concurrency: int = typer.Option(None, "--concurrency"),
    no_cache: bool = typer.Option(False, "--no-cache", help="do not use the response cache"),
) -> None:
    """Teacher scores instead of human labels: k answers per prompt, scored 1-10, paired best vs worst."""
    from ownchat.feedback.collect import FeedbackConfig, collect_feedback

    cfg = FeedbackConfig(student=student, teacher=teacher, prompts=prompts, out=out, k=k,
                         include_teacher=include_teacher, pairs=pairs, margin=margin, temperature=temperature,
                         top_p=top_p, max_tokens=max_tokens, seed=seed, retries=retries, limit=limit,
                         cache=not no_cache, student_engine=student_engine, teacher_engine=teacher_engine,
                         teacher_base_url=teacher_base_url, concurrency=concurrency)
    with progress("feedback") as bar:
        task = bar.add_task("feedback", total=None)

        def on_progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        res = collect_feedback(cfg, log=lambda m: bar.console.print(m, highlight=False, markup=False),
                               on_progress=on_progress)
    c = res.counts
    console.print(f"[bold green]{res.pairs_total} pairs[/] from {res.prompts} prompts "
                  f"({c.get('pairs', 0)} new, {res.resumed} prompts resumed) -> {res.out}\n"
                  f"  dropped: {c.get('tie_prompts', 0)} tied prompts, {c.get('unscored', 0)} unscored answers, "
                  f"{c.get('empty', 0)} empty, {c.get('duplicates', 0)} duplicates; scores in {res.scores}"
                  + (f"\n  {c['garbled_by_rule']} degenerate answers scored 1 by rule (not sent to the teacher)"
                     if c.get("garbled_by_rule") else ""))
    t = res.usage.get("teacher")
    if t:
        console.print(f"  teacher: {int(t['requests'])} requests ({int(t['cached'])} cached), "
                      f"{int(t['prompt_tokens'] + t['completion_tokens']):,} tokens"
                      + (f", sent to {', '.join(res.hosts)}" if res.hosts else ", nothing left this machine"))
