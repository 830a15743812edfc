"""How text is generated. ``load_engine`` picks the engine for a model reference."""

from __future__ import annotations

from pathlib import Path

from ownchat.engines.base import ChatRequest, Completion, Engine, EngineError, SamplingParams, UsageMeter
from ownchat.engines.cache import CachedEngine, ResponseCache

__all__ = [
    "ChatRequest", "Completion", "Engine", "EngineError", "SamplingParams", "UsageMeter",
    "CachedEngine", "ResponseCache", "load_engine", "ENGINE_NAMES",
]

ENGINE_NAMES = ("llamacpp", "hf", "openai", "vllm")


def load_engine(model: str, engine: str | None = None, *, cache: bool | str | Path = False,
                adapter: str | Path | None = None, concurrency: int | None = None,
                chat_template: str | None = None, base_url: str | list[str] | None = None,
                api_key: str | None = None, log=print, **opts) -> Engine:
    """Resolve ``model`` and build an engine for it.

    ``engine`` defaults to llama.cpp for GGUF files and packs, transformers for HF directories, and
    the OpenAI-compatible HTTP engine when ``base_url`` is given or the reference starts with
    ``openai:`` / ``http``. ``cache=True`` (or a path) wraps it in the persistent response cache.
    """
    eng = _build(model, engine, adapter=adapter, concurrency=concurrency, chat_template=chat_template,
                 base_url=base_url, api_key=api_key, log=log, **opts)
    if cache:
        db = None if cache is True else cache
        eng = CachedEngine(eng, ResponseCache(db))
    return eng


def _build(model, engine, *, adapter, concurrency, chat_template, base_url, api_key, log, **opts) -> Engine:
    if model.startswith(("http://", "https://")):
        raise EngineError(f"{model!r} looks like a server address: pass the model as openai:NAME and the "
                          f"address with --base-url {model}")
    if engine == "openai" or base_url or model.startswith("openai:"):
        from ownchat.engines.openai_http import OpenAIEngine

        name = model.removeprefix("openai:")
        return OpenAIEngine(name, base_urls=base_url, api_key=api_key, concurrency=concurrency or 8, **opts)

    from ownchat.models.resolve import resolve

    ref = resolve(model, log=log)
    adapter = adapter or ref.adapter
    chat_template = chat_template or ref.chat_template
    # A training run directory (adapter + base reference) resolves through its recorded base.
    kind = engine or ("llamacpp" if ref.kind == "gguf" else "hf")
    if kind == "llamacpp":
        from ownchat.engines.llamacpp import LlamaCppEngine

        path = ref.path
        if ref.meta.get("base") and ref.kind != "gguf":  # a training run: base GGUF + converted adapter
            from ownchat.engines.run_gguf import gguf_for_run

            path, run_lora = gguf_for_run(ref, log=log)
            adapter = run_lora if adapter == ref.adapter else adapter
        elif ref.kind != "gguf":
            raise EngineError(f"llama.cpp needs a GGUF file; {model!r} is a {ref.kind} model. "
                              "Use --engine hf, or `ownchat export --to gguf` first.")
        elif ref.source == "pack":  # the pack's own file, or a q8_0 when its quantisation fails the smoke test
            from ownchat.engines.smoke import llamacpp_file

            path = llamacpp_file(ref.pack.name, log=log)
        template = chat_template
        if template is None and ref.has_chat_template is False:
            template = "chatml"  # base models get the named default template (recorded by train too)
        eng = LlamaCppEngine(path, n_parallel=concurrency or 4, lora=adapter, chat_template=template,
                             model_name=ref.display_name, **opts)
        eng.license = ref.license
        return eng
    if kind == "vllm":
        import importlib.util

        if importlib.util.find_spec("vllm") is None:
            raise EngineError("--engine vllm needs the `vllm` package, which runs on CUDA GPUs: `pip install vllm` "
                              "on a GPU machine, or use --engine llamacpp (GGUF, CPU) or --engine hf (transformers)")
        from ownchat.engines.vllm import VLLMEngine

        return VLLMEngine.from_ref(ref, adapter=adapter, max_concurrency=concurrency or 32, log=log)
    if kind == "hf":
        from ownchat.engines.hf import HFEngine

        return HFEngine.from_ref(ref, adapter=adapter, batch_size=concurrency or 8, chat_template=chat_template,
                                 log=log, **opts)
    raise EngineError(f"unknown engine {kind!r}; choose one of {', '.join(ENGINE_NAMES)}")
