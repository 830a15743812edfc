"""llama.cpp in-process through xllamacpp: GGUF files, parallel slots, optional LoRA adapter.

Several Python threads may call the server at once; xllamacpp batches them across its slots, so
``generate_many`` (threads from the base class) is all the batching we need.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ownchat.engines.base import ChatRequest, Completion, Engine, EngineError
from ownchat.engines.logprobs import TOP_K, ChoiceLogprobs, from_openai_response, from_top_list
from ownchat.models.identity import file_identity


class LlamaCppEngine(Engine):
    name = "llamacpp"

    def __init__(self, gguf: str | Path, *, n_parallel: int = 4, n_ctx_per_slot: int = 4096,
                 n_threads: int | None = None, lora: str | Path | None = None, lora_scale: float = 1.0,
                 chat_template: str | None = None, model_name: str | None = None, verbose: bool = False) -> None:
        from xllamacpp import CommonAdapterLoraInfo, CommonParams, Server

        self.path = Path(gguf)
        if not self.path.exists():
            raise EngineError(f"GGUF file not found: {self.path}")
        threads = n_threads or max(1, os.cpu_count() or 1)
        p = CommonParams()
        p.model.path = str(self.path)
        p.n_parallel = n_parallel
        p.n_ctx = n_ctx_per_slot * n_parallel  # llama.cpp splits n_ctx evenly across slots
        p.cpuparams.n_threads = threads
        p.cpuparams_batch.n_threads = threads
        p.cache_prompt = True
        if not verbose:
            p.verbosity = -1
        if chat_template:
            p.chat_template = chat_template
        if lora:
            info = CommonAdapterLoraInfo()
            info.path = str(lora)
            info.scale = lora_scale
            p.lora_adapters = [info]
        self._server = Server(p)
        self.max_concurrency = n_parallel
        self.n_ctx_per_slot = n_ctx_per_slot
        self.model_name = model_name or self.path.stem
        ident = file_identity(self.path)
        if lora:
            ident += "+lora:" + file_identity(Path(lora)) + f"@{lora_scale}"
        if chat_template:
            ident += f"+tpl:{chat_template}"
        self.model_id = f"llamacpp:{ident}"

    # -- request building -------------------------------------------------------------------------
    def _body(self, request: ChatRequest, stream: bool = False) -> dict[str, Any]:
        prm = request.params
        body: dict[str, Any] = {
            "temperature": prm.temperature,
            "top_p": prm.top_p,
            "max_tokens": prm.max_tokens,
            "cache_prompt": True,
            "stream": stream,
        }
        seed = request.effective_seed()
        if seed is not None:
            body["seed"] = seed
        elif prm.temperature > 0 and request.sample_index:
            body["seed"] = 1_000_003 * request.sample_index  # distinct samples stay distinct and replayable
        if prm.stop:
            body["stop"] = list(prm.stop)
        if request.messages is not None:
            body["messages"] = list(request.messages)
        else:
            body["prompt"] = request.prompt or ""
        return body

    def generate(self, request: ChatRequest) -> Completion:
        body = self._body(request)
        if request.messages is not None:
            out = self._server.handle_chat_completions(body)
        else:
            out = self._server.handle_completions(body)
        if "error" in out:
            err = out["error"]
            raise EngineError(err.get("message", str(err)) if isinstance(err, dict) else str(err))
        choice = out["choices"][0]
        text = choice["message"]["content"] if "message" in choice else choice.get("text", "")
        usage = out.get("usage", {})
        return Completion(
            text=text or "",
            finish_reason=choice.get("finish_reason") or "stop",
            prompt_tokens=usage.get("prompt_tokens", 0),
            completion_tokens=usage.get("completion_tokens", 0),
            model=self.model_id,
            extra={"timings": out.get("timings", {})},
        )

    def choice_logprobs(self, request: ChatRequest, choices: Sequence[str]) -> ChoiceLogprobs:
        body = self._body(request)
        body.update(max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=TOP_K)
        out = (self._server.handle_chat_completions(body) if request.messages is not None
               else self._server.handle_completions(body))
        if "error" in out:
            err = out["error"]
            raise EngineError(err.get("message", str(err)) if isinstance(err, dict) else str(err))
        if request.messages is None:  # completions give {"tokens": [...], "top_logprobs": [{tok: lp}]}
            top = out["choices"][0].get("logprobs", {}).get("top_logprobs") or [{}]
            return from_top_list(list(top[0].items()), choices)
        return from_openai_response(out, choices)

    def stream(self, request: ChatRequest) -> Iterator[str]:
        """Run the blocking streaming call in a thread and hand its chunks over through a queue."""
        q: queue.Queue = queue.Queue()
        done = object()
        body = self._body(request, stream=True)

        def on_chunk(chunk: dict[str, Any]) -> bool:
            q.put(chunk)
            return False  # keep going

        def run() -> None:
            try:
                if request.messages is not None:
                    res = self._server.handle_chat_completions(body, on_chunk)
                else:
                    res = self._server.handle_completions(body, on_chunk)
                if isinstance(res, dict) and "error" in res:
                    q.put(EngineError(str(res["error"])))
            except Exception as exc:  # noqa: BLE001 - re-raised in the consumer thread
                q.put(exc)
            finally:
                q.put(done)

        threading.Thread(target=run, daemon=True, name="llamacpp-stream").start()
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, Exception):
                raise item
            for choice in item.get("choices", []):
                delta = choice.get("delta", {}).get("content") if "delta" in choice else choice.get("text")
                if delta:
                    yield delta

    def raw_chat(self, body: dict[str, Any], on_chunk=None) -> dict[str, Any] | None:
        """Pass an OpenAI-style body straight through (used by ``ownchat serve``)."""
        if on_chunk is None:
            return self._server.handle_chat_completions(body)
        return self._server.handle_chat_completions(body, on_chunk)

    def raw_completion(self, body: dict[str, Any], on_chunk=None) -> dict[str, Any] | None:
        if on_chunk is None:
            return self._server.handle_completions(body)
        return self._server.handle_completions(body, on_chunk)

    def close(self) -> None:
        self._server = None  # the C++ server shuts down when released
