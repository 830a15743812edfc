"""ownchat: replicate your own ChatGPT offline — learn from a teacher, fine-tune, judge, serve.

The Python API is the primary interface (the CLI wraps it)::

    import ownchat
    print(ownchat.chat("smollm2-135m-instruct", "What is the capital of France?"))
    eng = ownchat.load_engine("qwen2.5-coder-1.5b-instruct", cache=True)
    c = eng.generate(ownchat.ChatRequest.chat(messages, ownchat.SamplingParams(max_tokens=64)))

Names are imported on first use, so ``import ownchat`` stays fast (no torch, no llama.cpp).
"""

from __future__ import annotations

import importlib
import threading
import warnings
from typing import Any

__version__ = "0.1.0"

# PEFT reads transformers' deprecated `is_gradient_checkpointing` on every adapter load; the warning
# is theirs to fix and says nothing a user can act on, yet it cluttered every stage log.
warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)

_LAZY = {
    "load_engine": "ownchat.engines",
    "ChatRequest": "ownchat.engines.base",
    "SamplingParams": "ownchat.engines.base",
    "Completion": "ownchat.engines.base",
    "Engine": "ownchat.engines.base",
    "EngineError": "ownchat.engines.base",
    "UsageMeter": "ownchat.engines.base",
    "resolve": "ownchat.models.resolve",
    "ModelRef": "ownchat.models.resolve",
    "pull": "ownchat.models.store",
    "PACKS": "ownchat.models.packs",
    "generate_file": "ownchat.generate",
    "GenerateConfig": "ownchat.generate",
    "DataError": "ownchat.errors",
    "UserError": "ownchat.errors",
}

__all__ = ["chat", "close_engines", *_LAZY]

_engines: dict[tuple, Any] = {}
_engines_lock = threading.Lock()


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ownchat' has no attribute {name!r}")


def chat(model: str, messages: str | list[dict[str, str]], *, system: str | None = None,
         temperature: float = 0.0, top_p: float = 1.0, max_tokens: int = 256, seed: int | None = None,
         engine: str | None = None, **load_kw: Any) -> str:
    """One answer from ``model``. ``messages`` is a user message or a list of {role, content}.

    The engine is loaded once per (model, engine, options) and kept for later calls; free it with
    ``close_engines()``.
    """
    from ownchat.engines import load_engine
    from ownchat.engines.base import ChatRequest, EngineError, SamplingParams

    msgs = [{"role": "user", "content": messages}] if isinstance(messages, str) else list(messages)
    if system and (not msgs or msgs[0]["role"] != "system"):
        msgs = [{"role": "system", "content": system}, *msgs]
    key = (model, engine, tuple(sorted((k, str(v)) for k, v in load_kw.items())))
    with _engines_lock:
        eng = _engines.get(key)
        if eng is None:
            load_kw.setdefault("log", lambda m: None)
            eng = _engines[key] = load_engine(model, engine, **load_kw)
    params = SamplingParams(temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed)
    comp = eng.generate(ChatRequest.chat(msgs, params))
    if comp.error:
        raise EngineError(comp.error)
    return comp.text


def close_engines() -> None:
    """Release every engine ``chat`` has kept loaded."""
    with _engines_lock:
        for eng in _engines.values():
            eng.close()
        _engines.clear()
