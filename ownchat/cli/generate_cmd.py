"""`ownchat chat MODEL` (terminal chat) and `ownchat generate MODEL --prompts IN --out OUT`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from ownchat.cli.common import (
    MaxTokensOpt,
    SeedOpt,
    TemperatureOpt,
    TemplateOpt,
    TopPOpt,
    console,
    progress,
    template_arg,
    user_errors,
)

EngineOpt = typer.Option(None, "--engine", help="llamacpp | hf | openai (default: picked from the model)")
BaseUrlOpt = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint; repeat to spread the load")
ApiKeyOpt = typer.Option(None, "--api-key", help="default: $OPENAI_API_KEY", show_default=False)
AdapterOpt = typer.Option(None, "--adapter", help="PEFT/LoRA adapter directory to apply")
VerboseOpt = typer.Option(False, "--verbose", help="keep the engine's own logs (llama.cpp, transformers)")


def open_engine(model: str, engine: str | None, base_url: list[str] | None, api_key: str | None,
                adapter: Path | None, chat_template: str | None, concurrency: int | None, cache: bool,
                verbose: bool, retries: int | None = None) -> Any:
    """The CLI's one way to build an engine from its flags."""
    from ownchat.engines import load_engine

    chat_template = template_arg(chat_template)
    remote = engine == "openai" or bool(base_url) or model.startswith(("openai:", "http://", "https://"))
    opts: dict[str, Any] = {"verbose": verbose}
    if remote and retries is not None:
        opts["max_retries"] = retries
    log = (lambda m: console.print(m, highlight=False)) if verbose or not remote else (lambda m: None)
    return load_engine(model, engine, cache=cache, adapter=adapter, concurrency=concurrency,
                       chat_template=chat_template, base_url=list(base_url) if base_url else None,
                       api_key=api_key, log=log, **opts)


def register(app: typer.Typer) -> None:
    app.command("chat")(chat_cmd)
    app.command("generate")(generate_cmd)


@user_errors
def chat_cmd(
    model: str = typer.Argument(..., help="pack name, .gguf, HF directory, training run, or openai:MODEL"),
    system: str = typer.Option(None, "--system", help="system prompt"),
    engine: str = EngineOpt, base_url: list[str] = BaseUrlOpt, api_key: str = ApiKeyOpt,
    adapter: Path = AdapterOpt, chat_template: str = TemplateOpt,
    temperature: float = typer.Option(0.7, "--temperature", help="0 = greedy"),
    top_p: float = typer.Option(0.95, "--top-p"), max_tokens: int = typer.Option(512, "--max-tokens"),
    seed: int = SeedOpt, verbose: bool = VerboseOpt,
) -> None:
    """Chat in the terminal with streaming. Commands: /reset, /save FILE, /exit."""
    from ownchat.data.jsonl import JsonlWriter
    from ownchat.engines.base import ChatRequest, EngineError, SamplingParams

    eng = open_engine(model, engine, base_url, api_key, adapter, chat_template, 1, False, verbose)
    params = SamplingParams(temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed)
    start = [{"role": "system", "content": system}] if system else []
    messages = list(start)
    console.print(f"[bold]chatting with {getattr(eng, 'model_name', model)}[/] — /reset, /save FILE, /exit",
                  highlight=False)
    out = sys.stdout
    while True:
        try:
            line = input("you> ")
        except (EOFError, KeyboardInterrupt):
            out.write("\n")
            break
        text = line.strip()
        if not text:
            continue
        if text in ("/exit", "/quit"):
            break
        if text == "/reset":
            messages = list(start)
            console.print("(conversation cleared)")
            continue
        if text.startswith("/save"):
            target = text[5:].strip()
            if not target:
                console.print("usage: /save FILE")
                continue
            with JsonlWriter(Path(target).expanduser()) as w:
                w.write({"messages": messages})
            console.print(f"(saved {len(messages)} messages to {target})", highlight=False)
            continue
        if text.startswith("/"):
            console.print(f"unknown command {text.split()[0]}: /reset, /save FILE, /exit", highlight=False)
            continue
        messages.append({"role": "user", "content": line})
        out.write("bot> ")
        pieces: list[str] = []
        try:
            for delta in eng.stream(ChatRequest.chat(messages, params)):
                pieces.append(delta)
                out.write(delta)
                out.flush()
        except (EngineError, KeyboardInterrupt) as exc:
            console.print(f"\n[red]{type(exc).__name__}: {exc}[/] (message dropped; try again)", highlight=False)
            messages.pop()
            continue
        out.write("\n")
        messages.append({"role": "assistant", "content": "".join(pieces)})
    eng.close()


@user_errors
def generate_cmd(
    model: str = typer.Argument(..., help="pack name, .gguf, HF directory, training run, or openai:MODEL"),
    prompts: Path = typer.Option(..., "--prompts", help="JSONL: one {messages} or {prompt} record per line"),
    out: Path = typer.Option(..., "--out", help="JSONL output; appended, and resumed on re-run"),
    engine: str = EngineOpt, base_url: list[str] = BaseUrlOpt, api_key: str = ApiKeyOpt,
    adapter: Path = AdapterOpt, chat_template: str = TemplateOpt,
    temperature: float = TemperatureOpt, top_p: float = TopPOpt, max_tokens: int = MaxTokensOpt,
    seed: int = SeedOpt,
    system: str = typer.Option(None, "--system", help="system prompt for records without one"),
    completion: bool = typer.Option(False, "--completion", help="treat `prompt` as raw text (base models)"),
    concurrency: int = typer.Option(None, "--concurrency", help="requests in flight / batch size"),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="persistent response cache"),
    retries: int = typer.Option(None, "--retries", help="HTTP retries per request (remote engines)"),
    best_of: int = typer.Option(1, "--best-of", help="sample N answers and keep the reward model's favourite"),
    reward_model: Path = typer.Option(None, "--reward-model", help="run dir of `ownchat train rm` (for --best-of)"),
    verbose: bool = VerboseOpt,
) -> None:
    """Answer every prompt in a JSONL file; output = input record + output + usage + finish_reason."""
    from ownchat.data.jsonl import check_input, check_output
    from ownchat.engines.base import SamplingParams
    from ownchat.errors import DataError
    from ownchat.generate import GenerateConfig, generate_file, load_prompts

    params = SamplingParams(temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed)
    config = GenerateConfig(params=params, concurrency=concurrency, system=system, completion=completion)
    check_input(prompts)
    check_output(out)
    total = len(load_prompts(prompts, config))  # fail on a malformed line before loading any model
    if total == 0:
        raise DataError(prompts, None, "no prompts (the file is empty)",
                        'one JSON object a line: {"messages": [...]} or {"prompt": "..."}; nothing was written')
    eng = open_engine(model, engine, base_url, api_key, adapter, chat_template, concurrency, cache, verbose,
                      retries)
    if best_of > 1:
        from ownchat.feedback.bestof import with_best_of

        eng = with_best_of(eng, reward_model, best_of, log=lambda m: console.print(m, highlight=False))
    with progress("generating", extra="info") as bar:
        task = bar.add_task("generating", total=total, info="")

        def on_record(done: int, total: int, meter: Any) -> None:
            secs = max(1e-6, bar.tasks[task].elapsed or 0.0)
            bar.update(task, completed=done, total=total,
                       info=f"{meter.completion_tokens / secs:,.1f} tok/s, {meter.errors} errors")

        try:
            res = generate_file(eng, prompts, out, config, log=lambda m: console.print(m, highlight=False),
                                on_record=on_record)
        finally:
            eng.close()
    usage = res.usage
    cost = f", ${usage['cost_usd']:.4f}" if usage.get("cost_usd") else ""
    console.print(
        f"wrote {res.written} records to {res.out} ({res.skipped} already there, {res.errors} failed) in "
        f"{res.seconds:.1f}s: {int(usage['completion_tokens']):,} new tokens, {res.tokens_per_s:,.1f} tok/s, "
        f"{int(usage['cached'])} from cache{cost}", highlight=False)
    if res.errors:
        raise typer.Exit(1)
