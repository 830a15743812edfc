"""`ownchat serve MODEL`: a private OpenAI-compatible API and web chat on this machine."""

from __future__ import annotations

from pathlib import Path

import typer

from ownchat.cli.common import console, user_errors


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cmd)


@user_errors
def serve_cmd(
    model: str = typer.Argument(..., help="pack name, .gguf file, HF directory, training run or exported model"),
    adapter: Path = typer.Option(None, "--adapter", help="LoRA adapter (PEFT dir for hf, GGUF LoRA for llamacpp)"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on; beyond loopback needs API keys"),
    allow_host: list[str] = typer.Option(None, "--allow-host",
                                         help="another host name clients use to reach this server (repeatable); "
                                              "requests naming any other host get 421"),
    port: int = typer.Option(8000, "--port"),
    engine: str = typer.Option(None, "--engine", help="llamacpp | hf | vllm (default: llamacpp for GGUF, hf otherwise)"),
    parallel: int = typer.Option(None, "--parallel", help="requests generated at once (llama.cpp slots, batch size)"),
    history: Path = typer.Option(None, "--history", help="SQLite file for chat history (default: OWNCHAT_HOME/history.sqlite)"),
    no_history: bool = typer.Option(False, "--no-history", help="store nothing: the web chat keeps chats in the page"),
    api_key: list[str] = typer.Option(None, "--api-key", help="accept this key (repeatable); clients send it as a Bearer token"),
    keys_file: Path = typer.Option(None, "--keys-file", help="file with one API key per line"),
    max_tokens: int = typer.Option(2048, "--max-tokens", help="largest completion a client may ask for"),
    max_prompt_tokens: int = typer.Option(None, "--max-prompt-tokens", help="prompt limit (default: the model's context per slot)"),
    max_body: int = typer.Option(1_000_000, "--max-body-bytes", help="largest request body"),
    queue: int = typer.Option(64, "--queue", help="requests that may wait for a slot; more get HTTP 429"),
    best_of: int = typer.Option(1, "--best-of", help="sample N answers per reply and send the reward model's favourite"),
    reward_model: Path = typer.Option(None, "--reward-model", help="run dir of `ownchat train rm` (for --best-of)"),
) -> None:
    """Serve MODEL privately: OpenAI API at /v1, web chat at /, history in a local SQLite file."""
    from ownchat.errors import UserError
    from ownchat.serve.limits import Limits
    from ownchat.serve.server import serve

    if history is not None and no_history:
        raise UserError("--history and --no-history contradict each other: pick one")
    for name, value in (("--port", port), ("--max-tokens", max_tokens), ("--max-body-bytes", max_body)):
        if value is not None and value < 1:
            raise UserError(f"{name} must be a positive number (got {value})")
    if best_of < 1:
        raise UserError(f"--best-of must be 1 or more (got {best_of})")
    if queue < 0:
        raise UserError(f"--queue must be 0 or more (got {queue})")
    limits = Limits(max_body_bytes=max_body, max_prompt_tokens=max_prompt_tokens, max_tokens=max_tokens,
                    default_max_tokens=min(512, max_tokens), queue_size=queue)
    serve(model, engine=engine, adapter=adapter, host=host, port=port, parallel=parallel, history=not no_history,
          history_path=history, api_keys=list(api_key or []), keys_file=keys_file, limits=limits,
          best_of=best_of, reward_model=reward_model, allowed_hosts=tuple(allow_host or ()),
          log=lambda m: console.print(m, highlight=False, markup=False))
