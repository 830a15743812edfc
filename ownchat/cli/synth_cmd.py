"""`ownchat synth self-instruct|alpaca|answer|chat`: a teacher writes training data."""

from __future__ import annotations

from pathlib import Path

import typer

from ownchat.cli.common import console, print_table, progress, user_errors

app = typer.Typer(help="A teacher model writes training data (Self-Instruct, Alpaca, answers, chats).",
                  no_args_is_help=True)

_HELP = {
    "self-instruct": "Self-Instruct bootstrap: grow a task pool from seed tasks until --n tasks.",
    "alpaca": "Alpaca batches: each request asks for --batch-size instruction/input/output triples.",
    "answer": "Distillation: the teacher answers the prompts or conversations in --input.",
    "chat": "Multi-turn chats (ShareGPT output): the teacher plays both the user and the assistant.",
}


def _make(mode: str):
    def command(
        out: Path = typer.Option(..., "--out", "-o", help="output JSONL (appended; rerun to resume)"),
        teacher: str = typer.Option("qwen2.5-coder-1.5b-instruct", help="model ref, or openai:MODEL"),
        n: int = typer.Option(100, "--n", help="records (tasks, examples, conversations) to keep"),
        seeds: Path = typer.Option(None, help="seed tasks JSONL (Self-Instruct format); default: built-in"),
        input_file: Path = typer.Option(None, "--input", "-i",
                                        help="answer: prompts/conversations (Alpaca, ShareGPT, OpenAI...); "
                                             "chat: topics or seed questions, one a line"),
        language: str = typer.Option("en", help="language to ask for and keep, e.g. en, zh-TW"),
        topic: str = typer.Option(None, help="steer every generated task towards this topic"),
        concurrency: int = typer.Option(4, help="teacher requests kept in flight"),
        max_cost: float = typer.Option(None, help="stop once the teacher cost this many USD"),
        max_tokens: int = typer.Option(None, "--max-tokens", help="stop after this many teacher tokens"),
        seed: int = typer.Option(0, help="run seed: sampling and shot choices derive from it"),
        temperature: float = typer.Option(0.7),
        top_p: float = typer.Option(0.95, "--top-p"),
        gen_tokens: int = typer.Option(1024, help="max tokens per teacher request"),
        batch_size: int = typer.Option(20, help="alpaca: triples asked for per request"),
        turns: int = typer.Option(3, help="chat: user/assistant exchanges per conversation"),
        system: str = typer.Option(None, help="answer: system prompt for the teacher"),
        constraints: bool = typer.Option(False, "--constraints",
                                         help="answer: add verifiable constraints (length, format, case...) "
                                              "and keep only answers that pass IFEval's checkers"),
        constraint_samples: int = typer.Option(4, help="answer --constraints: samples per instruction"),
        mix_sharegpt: int = typer.Option(0, "--mix-sharegpt",
                                         help="also append N ShareGPT conversations (ChatGPT's answers: "
                                              "OpenAI's terms, not cleared for a competing model)"),
        engine: str = typer.Option(None, help="llamacpp | hf | openai (default: from the model ref)"),
        base_url: str = typer.Option(None, help="OpenAI-compatible endpoint(s), comma-separated"),
        api_key: str = typer.Option(None, envvar="OPENAI_API_KEY", help="API key for --base-url"),
        cache: bool = typer.Option(True, help="response cache: replays are free, crashes resumable"),
        cache_db: Path = typer.Option(None, help="response cache file (default: OWNCHAT_HOME/responses.sqlite)"),
        min_words: int = typer.Option(3, help="drop instructions shorter than this (tokens)"),
        max_words: int = typer.Option(150, help="drop instructions longer than this (tokens)"),
        blacklist: str = typer.Option(None, help="comma-separated keywords replacing the default blacklist"),
        rouge_threshold: float = typer.Option(0.7, help="drop when ROUGE-L F > this against anything kept"),
    ) -> None:
        from ownchat.data.jsonl import check_input, check_output, read_records
        from ownchat.errors import DataError
        from ownchat.synth import FilterConfig, SynthConfig, run_synth

        check_output(out)
        if input_file is not None:
            check_input(input_file)
            if mode == "answer" and not read_records(input_file):
                raise DataError(input_file, None, "no prompts (the file is empty)",
                                "give a file with one prompt or conversation a line; nothing was written")

        fc = FilterConfig(min_words=min_words, max_words=max_words,
                          rouge_threshold=rouge_threshold)
        if blacklist is not None:
            fc.blacklist = tuple(w.strip() for w in blacklist.split(",") if w.strip())
        cfg = SynthConfig(mode=mode, out=out, teacher=teacher, n=n, seeds=seeds, inputs=input_file,
                          language=language, topic=topic, concurrency=concurrency, max_cost=max_cost,
                          max_tokens=max_tokens, seed=seed, temperature=temperature, top_p=top_p,
                          gen_tokens=gen_tokens, batch_size=batch_size, turns=turns, system=system,
                          constraints=constraints, constraint_samples=constraint_samples,
                          mix_sharegpt=mix_sharegpt, engine=engine,
                          base_url=base_url, api_key=api_key, cache=(cache_db or True) if cache else False,
                          filters=fc)
        log = lambda m: console.print(m, highlight=False)  # noqa: E731
        with progress(f"synth {mode}") as bar:
            task = bar.add_task(f"synth {mode}", total=n)
            res = run_synth(cfg, log=log, on_kept=lambda k, total: bar.update(task, completed=k))
        _report(res)

    command.__doc__ = _HELP[mode]
    return command


def _report(res) -> None:
    from rich.table import Table

    t = Table(title=f"kept {res.kept} of {res.candidates} candidates — stopped: {res.stopped}")
    t.add_column("filter")
    t.add_column("dropped", justify="right")
    for reason, count in sorted(res.filtered.items(), key=lambda kv: -kv[1]):
        t.add_row(reason, str(count))
    print_table(t, err=True)
    console.print(f"teacher: {res.usage['requests']} requests ({res.usage['cached']} from cache), "
                  f"{res.teacher_tokens:,} tokens, ${res.cost_usd:.4f}; {res.wall_s:.0f} s over {res.units} units")
    if res.checks:
        ids = sorted({k.rsplit(":", 1)[0] for k in res.checks})
        c = Table(title="constraint checks (every sample)")
        for col in ("IFEval instruction", "passed", "failed"):
            c.add_column(col, justify="left" if col.startswith("IFEval") else "right")
        for iid in ids:
            c.add_row(iid, str(res.checks.get(f"{iid}:pass", 0)), str(res.checks.get(f"{iid}:fail", 0)))
        console.print(c)
    for pack, count in (res.mixed or {}).items():
        console.print(f"mixed in {count} {pack} records (see their provenance for the terms)")
    console.print(f"wrote {res.out}  (stats: {res.stats_path})", highlight=False)


for _mode in _HELP:
    app.command(_mode, help=_HELP[_mode])(user_errors(_make(_mode)))
