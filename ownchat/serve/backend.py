"""The engine behind the API, seen from asyncio: OpenAI-shaped bodies and chunks in and out.

llama.cpp speaks OpenAI already, so its requests go straight through (``raw_chat``): no
re-tokenising, native ``n``, native stop strings and usage, and a callback that can stop generation
the moment a client disconnects. Every other engine goes through the engine protocol (``generate`` /
``stream``) and the OpenAI shapes are built here.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ownchat.engines.base import ChatRequest, Engine, EngineError, SamplingParams
from ownchat.serve.limits import LimitError

_END = object()


@dataclass
class GenParams:
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 512
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    n: int = 1

    def sampling(self) -> SamplingParams:
        return SamplingParams(temperature=self.temperature, top_p=self.top_p, max_tokens=self.max_tokens,
                              seed=self.seed, stop=tuple(self.stop))


def engine_error(err: Any) -> LimitError:
    """llama.cpp's error dicts (``{"code", "message", "type"}``) as the API's error."""
    if not isinstance(err, dict):
        return LimitError(500, f"engine error: {err}", code="engine_error", type_="server_error")
    status = int(err.get("code") or 500) if str(err.get("code", "")).isdigit() else 500
    if err.get("type") == "exceed_context_size_error":
        return LimitError(400, f"{err.get('message')} (shorten the conversation or start a new one)",
                          code="context_length_exceeded", param="messages")
    kind = "invalid_request_error" if 400 <= status < 500 else "server_error"
    return LimitError(status, str(err.get("message", err)), code=str(err.get("type") or "engine_error"),
                      type_=kind)


def generic_error(err: object) -> LimitError:
    """An engine-protocol failure: a prompt over the context is the client's to fix (400), the rest ours."""
    msg = str(err)
    if "context" in msg and ("fit" in msg or "exceed" in msg):
        return LimitError(400, f"{msg} (shorten the conversation or start a new one)",
                          code="context_length_exceeded", param="messages")
    return LimitError(500, f"engine error: {msg}", code="engine_error", type_="server_error")


class Backend:
    def __init__(self, engine: Engine, model_name: str) -> None:
        self.engine = engine
        self.model_name = model_name
        self.created = int(time.time())
        self.slots = max(1, engine.max_concurrency)
        # One thread per generating request: llama.cpp blocks the calling thread for the whole reply.
        self._pool = ThreadPoolExecutor(max_workers=self.slots * 2, thread_name_prefix="serve-gen")
        self.passthrough = hasattr(engine, "raw_chat") and hasattr(engine, "raw_completion")

    # -- llama.cpp body ----------------------------------------------------------------------------
    def _body(self, messages: list[dict] | None, prompt: str | None, p: GenParams, stream: bool) -> dict:
        body: dict[str, Any] = {"temperature": p.temperature, "top_p": p.top_p, "max_tokens": p.max_tokens,
                                "n": p.n, "stream": stream, "cache_prompt": True}
        if stream:
            body["stream_options"] = {"include_usage": True}
        if p.stop:
            body["stop"] = p.stop
        if p.seed is not None:
            body["seed"] = p.seed
        if messages is not None:
            body["messages"] = messages
        else:
            body["prompt"] = prompt or ""
        return body

    def _call(self, messages: list[dict] | None, prompt: str | None, body: dict, on_chunk=None) -> Any:
        fn = self.engine.raw_chat if messages is not None else self.engine.raw_completion  # type: ignore[attr-defined]
        return fn(body, on_chunk)

    def _tidy(self, out: dict) -> dict:
        out.pop("timings", None)
        out["model"] = self.model_name  # not the GGUF's path on this disk
        return out

    # -- whole replies -----------------------------------------------------------------------------
    async def complete(self, messages: list[dict] | None, prompt: str | None, p: GenParams) -> dict:
        loop = asyncio.get_running_loop()
        if self.passthrough:
            out = await loop.run_in_executor(self._pool, self._call, messages, prompt,
                                             self._body(messages, prompt, p, False))
            if "error" in out:
                raise engine_error(out["error"])
            return self._tidy(out)
        return await loop.run_in_executor(self._pool, self._generic_complete, messages, prompt, p)

    def _generic_complete(self, messages: list[dict] | None, prompt: str | None, p: GenParams) -> dict:
        choices, usage = [], {"prompt_tokens": 0, "completion_tokens": 0}
        for i in range(p.n):
            req = (ChatRequest.chat(messages, p.sampling(), sample_index=i) if messages is not None
                   else ChatRequest.completion(prompt or "", p.sampling(), sample_index=i))
            try:
                c = self.engine.generate(req)
            except EngineError as exc:
                raise generic_error(exc) from exc
            if c.error:
                raise generic_error(c.error)
            usage["prompt_tokens"] = c.prompt_tokens
            usage["completion_tokens"] += c.completion_tokens
            if messages is not None:
                choices.append({"index": i, "message": {"role": "assistant", "content": c.text},
                                "finish_reason": c.finish_reason})
            else:
                choices.append({"index": i, "text": c.text, "logprobs": None, "finish_reason": c.finish_reason})
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return {"id": _new_id(messages), "object": "chat.completion" if messages is not None else "text_completion",
                "created": int(time.time()), "model": self.model_name, "choices": choices, "usage": usage}

    # -- streams -----------------------------------------------------------------------------------
    async def stream(self, messages: list[dict] | None, prompt: str | None, p: GenParams) -> AsyncIterator[dict]:
        """OpenAI chunks as they come; the last one carries ``usage`` with empty ``choices``.

        Closing the iterator (client gone, stop button) tells the engine to stop at its next token.
        """
        loop = asyncio.get_running_loop()
        q: asyncio.Queue = asyncio.Queue()
        cancelled = False

        def put(item: Any) -> None:
            loop.call_soon_threadsafe(q.put_nowait, item)

        def on_chunk(chunk: dict) -> bool:
            put(chunk)
            return cancelled  # True makes llama.cpp stop and free the slot

        def run() -> None:
            try:
                if self.passthrough:
                    res = self._call(messages, prompt, self._body(messages, prompt, p, True), on_chunk)
                    if isinstance(res, dict) and "error" in res:
                        put(engine_error(res["error"]))
                else:
                    self._generic_stream(messages, prompt, p, put, lambda: cancelled)
            except Exception as exc:  # noqa: BLE001 - handed to the event loop, which reports it
                put(exc)
            finally:
                put(_END)

        loop.run_in_executor(self._pool, run)
        try:
            while True:
                item = await q.get()
                if item is _END:
                    break
                if isinstance(item, Exception):
                    raise item
                if "error" in item:
                    raise engine_error(item["error"])
                yield self._tidy(item)
        finally:
            # No await here: under a cancelled task every await would be cancelled again. The worker
            # sees the flag at its next token and returns; its late chunks land in a dropped queue.
            cancelled = True

    def _generic_stream(self, messages, prompt, p: GenParams, put, is_cancelled) -> None:
        cid, created = _new_id(messages), int(time.time())
        obj = "chat.completion.chunk" if messages is not None else "text_completion"
        completion_tokens = 0
        for i in range(p.n):
            req = (ChatRequest.chat(messages, p.sampling(), sample_index=i) if messages is not None
                   else ChatRequest.completion(prompt or "", p.sampling(), sample_index=i))
            if messages is not None:
                put(_chunk(cid, obj, created, i, {"role": "assistant", "content": ""}, None, True))
            pieces = 0
            try:
                for delta in self.engine.stream(req):
                    if is_cancelled():
                        return
                    pieces += 1
                    put(_chunk(cid, obj, created, i, delta, None, messages is not None))
            except EngineError as exc:
                put(generic_error(exc))
                return
            completion_tokens += pieces  # one delta is about one token for streaming engines
            finish = "length" if pieces >= p.max_tokens else "stop"
            put(_chunk(cid, obj, created, i, None, finish, messages is not None))
        put({"id": cid, "object": obj, "created": created, "choices": [],
             "usage": {"prompt_tokens": 0, "completion_tokens": completion_tokens,
                       "total_tokens": completion_tokens}})

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _new_id(messages: list[dict] | None) -> str:
    return ("chatcmpl-" if messages is not None else "cmpl-") + uuid.uuid4().hex[:24]


def _chunk(cid: str, obj: str, created: int, index: int, delta: Any, finish: str | None, chat: bool) -> dict:
    if chat:
        d = delta if isinstance(delta, dict) else ({"content": delta} if delta is not None else {})
        choice = {"index": index, "delta": d, "finish_reason": finish}
    else:
        choice = {"index": index, "text": delta or "", "logprobs": None, "finish_reason": finish}
    return {"id": cid, "object": obj, "created": created, "choices": [choice]}
