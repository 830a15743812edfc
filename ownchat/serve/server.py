"""Start serving: load the engine, check the bind address against the keys, run uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ownchat.engines.base import Engine
from ownchat.errors import UserError
from ownchat.serve.app import ServeSettings, create_app
from ownchat.serve.auth import KeyRing, check_bind
from ownchat.serve.limits import Limits

ENGINES = ("llamacpp", "hf", "vllm")


def load_serving_engine(model: str, engine: str | None = None, adapter: str | Path | None = None,
                        parallel: int | None = None, log: Any = print) -> Engine:
    """The engine for ``model`` (the one factory, ``load_engine``). No response cache: a chat server
    must sample afresh every time."""
    if engine not in (None, *ENGINES):
        raise UserError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")
    from ownchat.engines import load_engine

    return load_engine(model, engine, adapter=adapter, concurrency=parallel, log=log)


def served_name(model: str, engine: Engine) -> str:
    name = getattr(engine, "model_name", None) or Path(model).name or model
    return str(name)


def build_settings(model: str, engine: Engine, *, history: bool = True, history_path: str | Path | None = None,
                   api_keys: list[str] | None = None, keys_file: str | Path | None = None,
                   limits: Limits | None = None, host: str = "127.0.0.1",
                   allowed_hosts: tuple[str, ...] = ()) -> ServeSettings:
    limits = limits or Limits()
    ctx = getattr(engine, "n_ctx_per_slot", None) or getattr(engine, "context", None)
    if limits.max_prompt_tokens is None and ctx:
        limits.max_prompt_tokens = int(ctx)
    name = served_name(model, engine)
    return ServeSettings(model_name=name, aliases=(model,), license=getattr(engine, "license", None),
                         history=history, history_path=history_path,
                         keys=KeyRing.load(api_keys or [], keys_file), limits=limits, host=host,
                         allowed_hosts=tuple(allowed_hosts))


def serve(model: str, *, engine: str | None = None, adapter: str | Path | None = None, host: str = "127.0.0.1",
          port: int = 8000, parallel: int | None = None, history: bool = True,
          history_path: str | Path | None = None, api_keys: list[str] | None = None,
          keys_file: str | Path | None = None, limits: Limits | None = None, best_of: int = 1,
          reward_model: str | Path | None = None, allowed_hosts: tuple[str, ...] = (), log: Any = print) -> None:
    """Blocking: serve ``model`` until interrupted. ``best_of`` > 1 reranks that many samples by a reward model."""
    import uvicorn

    keys = KeyRing.load(api_keys or [], keys_file)
    check_bind(host, keys)  # before the model loads: a refused start should be instant
    from ownchat.feedback.bestof import check_best_of, with_best_of

    check_best_of(best_of, reward_model)  # before the model loads: a refused start should be instant
    eng = load_serving_engine(model, engine, adapter, parallel, log=log)
    eng = with_best_of(eng, reward_model, best_of, log=log, reproducible=False)
    settings = build_settings(model, eng, history=history, history_path=history_path, api_keys=api_keys,
                              keys_file=keys_file, limits=limits, host=host, allowed_hosts=allowed_hosts)
    app = create_app(eng, settings)
    shown = f"[{host}]" if ":" in host else host
    where = "history off: nothing is stored" if not history else f"history: {app.state.history.path}"
    log(f"serving {settings.model_name} on http://{shown}:{port}  (web chat at /, OpenAI API at /v1; {where}"
        f"{'; API keys required' if keys.enabled else ''})")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False,
                    timeout_graceful_shutdown=5)
    finally:
        eng.close()
