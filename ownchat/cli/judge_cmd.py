"""`ownchat judge`: question sets, answers, single grades, pairwise verdicts, reports."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ownchat.cli.common import console, progress, user_errors

app = typer.Typer(help="Judge models rigorously: MT-bench-style answers, grades, pairwise verdicts, reports.",
                  no_args_is_help=True)

QuestionsOpt = typer.Option("ownchat", "--questions", "-q",
                            help="'ownchat' (shipped bench), 'mt-bench' (the pack) or a JSONL file")
LimitOpt = typer.Option(None, "--limit", help="at most N questions, spread over the categories")
TurnsOpt = typer.Option(None, "--turns", help="judge/answer only the first N turns (e.g. 1)")
CategoryOpt = typer.Option([], "--category", help="only these categories (repeatable)")
LangOpt = typer.Option(None, "--lang", help="only questions in this language (en, zh-TW)")


def _questions(spec: str, limit: int | None, turns: int | None, categories: list[str], lang: str | None):
    from ownchat.judge.questions import resolve_questions, select

    return select(resolve_questions(spec), limit=limit, categories=categories, lang=lang, max_turns=turns)


def _run(label: str, fn, **kwargs):
    """Run an API call with a progress bar fed by its ``on_progress`` callback."""
    with progress(label) as bar:
        task = bar.add_task(label, total=None)

        def on_progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return fn(on_progress=on_progress, log=lambda m: console.print(m, highlight=False), **kwargs)


@app.command("questions")
@user_errors
def questions_cmd(
    questions: str = QuestionsOpt,
    mt_bench: bool = typer.Option(False, "--mt-bench", help="locate the MT-bench pack's question file"),
    out: Path = typer.Option(None, "--out", help="write the (filtered) questions here as JSONL"),
    limit: int = LimitOpt, turns: int = TurnsOpt, category: list[str] = CategoryOpt, lang: str = LangOpt,
) -> None:
    """Show a question set's path and counts (and optionally write a filtered copy)."""
    from ownchat.judge.questions import OWN_BENCH, describe, dump_questions, mt_bench_files

    if mt_bench:
        files = mt_bench_files()
        if files is None:
            from ownchat.errors import UserError

            raise UserError("the MT-bench pack is not installed. Run: ownchat models pull mt-bench")
        questions = "mt-bench"
        for k, p in files.items():
            typer.echo(f"{k}: {p}")
    elif questions in ("ownchat", "own", "default"):
        typer.echo(f"questions: {OWN_BENCH}")
    qs = _questions(questions, limit, turns, category, lang)
    typer.echo(json.dumps(describe(qs), ensure_ascii=False, indent=2))
    if out:
        typer.echo(f"wrote {dump_questions(qs, out)}")


@app.command("answer")
@user_errors
def answer_cmd(
    model: str = typer.Option(..., "--model", "-m", help="pack name, .gguf, HF dir or training run"),
    out: Path = typer.Option(..., "--out", "-o", help="answer file (MT-bench format); resumed if present"),
    questions: str = QuestionsOpt, limit: int = LimitOpt, turns: int = TurnsOpt,
    category: list[str] = CategoryOpt, lang: str = LangOpt,
    model_id: str = typer.Option(None, "--model-id", help="name recorded in the file (default: --model)"),
    max_tokens: int = typer.Option(512, "--max-tokens"),
    temperature: float = typer.Option(0.0, "--temperature"),
    concurrency: int = typer.Option(None, "--concurrency", help="requests in flight (engine slots)"),
    engine: str = typer.Option(None, "--engine", help="llamacpp | hf | openai (default: by model kind)"),
) -> None:
    """Answer every turn of a question set (turn 2 sees the model's own first answer)."""
    from ownchat.judge.answer import answer_questions

    qs = _questions(questions, limit, turns, category, lang)
    res = _run("answering", answer_questions, model=model, questions=qs, out=out, model_id=model_id,
               max_tokens=max_tokens, temperature=temperature, concurrency=concurrency, engine=engine)
    typer.echo(json.dumps(res.to_dict(), indent=2))


def _settings(max_tokens: int, retries: int, concurrency: int | None):
    from ownchat.judge.runner import JudgeSettings

    return JudgeSettings(max_tokens=max_tokens, retries=retries, concurrency=concurrency)


JudgeOpt = typer.Option("qwen2.5-coder-1.5b-instruct", "--judge", "-j", help="judge model")
JudgeTokensOpt = typer.Option(256, "--max-tokens", help="judge reply budget (explanation + verdict)")
RetriesOpt = typer.Option(2, "--retries", help="extra samples when a verdict cannot be parsed")
ConcOpt = typer.Option(None, "--concurrency")


# `--answers A B` and `-a A -a B` both work: click options take one value each, so the files after
# the first land in this trailing argument and are joined back on.
MoreAnswersArg = typer.Argument(None, help="more answer files (so that `--answers A B` works)", show_default=False)
MethodOpt = typer.Option("text", "--method",
                         help="text: explanation + [[A]]/[[B]]; prob: one-letter verdicts from token probabilities, "
                              "both orders calibrated (llama.cpp, transformers, OpenAI logprobs)")


@app.command("grade")
@user_errors
def grade_cmd(
    answers: list[Path] = typer.Option(..., "--answers", "-a", help="answer file(s), one model each"),
    more: list[Path] = MoreAnswersArg,
    out: Path = typer.Option(..., "--out", "-o"), questions: str = QuestionsOpt, judge: str = JudgeOpt,
    turns: int = TurnsOpt, max_tokens: int = JudgeTokensOpt, retries: int = RetriesOpt,
    concurrency: int = ConcOpt, engine: str = typer.Option(None, "--engine"), method: str = MethodOpt,
) -> None:
    """Grade each answer 1–10 (reference-guided where the question has a reference)."""
    from ownchat.judge.grade import grade_answers

    answers = [*answers, *(more or [])]
    res = _run("grading", grade_answers, questions=questions, answer_files=answers, judge=judge, out=out,
               turns=range(1, turns + 1) if turns else None, settings=_settings(max_tokens, retries, concurrency),
               engine=engine, method=method)
    typer.echo(json.dumps(res.to_dict(), indent=2, default=str))


@app.command("compare")
@user_errors
def compare_cmd(
    answers: list[Path] = typer.Option(..., "--answers", "-a", help="two answer files: A then B"),
    more: list[Path] = MoreAnswersArg,
    out: Path = typer.Option(..., "--out", "-o"), questions: str = QuestionsOpt, judge: str = JudgeOpt,
    turns: int = TurnsOpt, max_tokens: int = JudgeTokensOpt, retries: int = RetriesOpt,
    concurrency: int = ConcOpt, engine: str = typer.Option(None, "--engine"), method: str = MethodOpt,
) -> None:
    """Pairwise A/B/tie verdicts, each judged in both orders (a win needs both orders to agree)."""
    from ownchat.errors import UserError
    from ownchat.judge.compare import compare_answers

    answers = [*answers, *(more or [])]
    if len(answers) != 2:
        raise UserError(f"--answers takes exactly two files (A and B), got {len(answers)}")
    res = _run("comparing", compare_answers, questions=questions, answers_a=answers[0], answers_b=answers[1],
               judge=judge, out=out, turns=range(1, turns + 1) if turns else None,
               settings=_settings(max_tokens, retries, concurrency), engine=engine, method=method)
    typer.echo(json.dumps(res.to_dict(), indent=2, default=str))


@app.command("validate")
@user_errors
def validate_cmd(
    judge: str = JudgeOpt, method: str = MethodOpt,
    pairs: Path = typer.Option(None, "--pairs", help="known-answer pairs (default: the set ownchat ships)"),
    limit: int = typer.Option(None, "--limit", help="only the first N pairs (a quick look; too few to validate)"),
    lang: str = LangOpt, max_tokens: int = JudgeTokensOpt, retries: int = RetriesOpt,
    concurrency: int = ConcOpt, engine: str = typer.Option(None, "--engine"),
    grades: bool = typer.Option(False, "--grades", help="validate single-answer grading instead of pairwise"),
    as_json: bool = typer.Option(False, "--json", help="print the whole result as JSON on stdout"),
) -> None:
    """Can this judge be trusted? Known-answer pairs judged in both orders: accuracy, position bias, verdict."""
    from ownchat.judge.validate import load_pairs, validate_judge

    chosen = [p for p in load_pairs(pairs) if lang is None or p.lang == lang][:limit]
    s = _run("validating", validate_judge, judge=judge, method=method, pairs=chosen,
             settings=_settings(max_tokens, retries, concurrency), engine=engine, store=limit is None,
             grades=grades)
    if as_json:
        typer.echo(json.dumps(s, indent=2, ensure_ascii=False))
        return
    w = s["win_rate_better"]
    typer.echo(f"{s['judge']} ({s['method']} verdicts) on {s['n_pairs']} known-answer pairs, both orders:")
    typer.echo(f"  win rate for the better reply  {w['win_rate']:.3f}  [{w['ci95'][0]:.3f}, {w['ci95'][1]:.3f}]"
               if w["win_rate"] is not None else "  no verdict could be read")
    typer.echo(f"  better reply chosen in both orders {s['both_orders_right']:.1%}; position-consistent "
               f"{s['position_consistency']:.1%}; verdicts naming the first reply {s['first_position_share']}")
    for name, table in (("kind", s["by_kind"]), ("language", s["by_lang"])):
        typer.echo(f"  by {name}: " + ", ".join(f"{k} {v['win_rate']:.2f} (n={v['n']})" for k, v in table.items()
                                              if v["win_rate"] is not None))
    typer.echo(s["verdict"])
    if limit is not None:
        typer.echo("(a --limit run is not stored: reports still treat this judge as unvalidated)")


@app.command("report")
@user_errors
def report_cmd(
    verdicts: list[Path] = typer.Argument(..., help="verdict files from `judge compare`"),
    out: Path = typer.Option(..., "--out", "-o", help="directory for report.html, report.md, summary.json"),
    grades: list[Path] = typer.Option([], "--grades", "-g", help="grade files from `judge grade`"),
    n_boot: int = typer.Option(2000, "--bootstrap", help="bootstrap resamples"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Statistics and charts: win rates with bootstrap CIs, biases, agreement, Elo."""
    from ownchat.judge.report import build_report

    summary = build_report(verdicts, out, grade_files=grades, n_boot=n_boot, seed=seed)
    for p in summary["pairs"]:
        lo, hi = p["ci95_a"]
        typer.echo(f"{p['model_a']} vs {p['model_b']}: win rate {p['win_rate_a']:.3f} [{lo:.3f}, {hi:.3f}] "
                   f"(W/T/L {p['wins_a']}/{p['ties']}/{p['wins_b']}, inconsistent {p['inconsistency']:.1%})")
        typer.echo(f"  {p['judge_validity']}")
    typer.echo(f"report: {out / 'report.html'}")
