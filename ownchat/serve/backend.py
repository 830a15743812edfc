"""The engine behind the API, seen from asyncio: OpenAI-shaped bodies and chunks in and out.

llama.cpp speaks OpenAI already, so its requests go straight through (``raw_chat``): no
re-tokenising, native stop strings and usage. They always stream internally, even for a
non-streaming client, because llama.cpp's chunk callback is the only way to stop a request: with
``return_progress`` it is called between prompt batches too, so a request whose client left stops
while its prompt is still being read. Every other engine goes through the engine protocol
(``generate`` / ``stream``) and the OpenAI shapes are built here.

``n`` choices run as ``n`` one-choice engine calls, each holding one admission unit, so a request
for four answers queues like four requests instead of taking every slot under one ticket.

With several API keys the prompt cache is not shared: llama.cpp would reuse the longest matching
prefix of whatever the slot held before, and the reuse shows in ``cached_tokens`` and in timing,
so one key could read another's prompt a token at a time. Each request then reads its whole prompt.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ownchat.engines.base import ChatRequest, Engine, EngineError, SamplingParams
from ownchat.serve.limits import LimitError, Ticket

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


class _Job:
    def __init__(self, n: int) -> None:
        self.cancelled = False
        self.holding = [False] * n  # choice i holds an admission unit (its worker will give it back)


class Backend:
    def __init__(self, engine: Engine, model_name: str, *, isolate_cache: bool = False) -> None:
        self.engine = engine
        self.model_name = model_name
        self.created = int(time.time())
        self.slots = max(1, engine.max_concurrency)
        self.isolate_cache = isolate_cache
        # One thread per generating choice: llama.cpp blocks the calling thread for the whole reply.
        # Spare threads cover workers that were told to stop and have not returned yet.
        self._pool = ThreadPoolExecutor(max_workers=self.slots * 2, thread_name_prefix="serve-gen")
        self.passthrough = hasattr(engine, "raw_chat") and hasattr(engine, "raw_completion")
        self._lock = threading.Lock()
        self.generating = 0  # engine calls running now

    def engine_busy(self) -> int | None:
        """The engine's own count of requests it is working on (llama.cpp), None when it has none."""
        fn = getattr(self.engine, "busy_slots", None)
        return fn() if callable(fn) else None

    # -- llama.cpp body ----------------------------------------------------------------------------
    def _body(self, messages: list[dict] | None, prompt: str | None, p: GenParams, index: int) -> dict:
        body: dict[str, Any] = {"temperature": p.temperature, "top_p": p.top_p, "max_tokens": p.max_tokens,
                                "stream": True, "stream_options": {"include_usage": True},
                                "return_progress": True, "cache_prompt": not self.isolate_cache}
        if p.stop:
            body["stop"] = p.stop
        if p.seed is not None:
            body["seed"] = p.seed + index  # n choices with one seed: distinct, and replayable
        if messages is not None:
            body["messages"] = messages
        else:
            body["prompt"] = prompt or ""
        return body

    # -- whole replies -----------------------------------------------------------------------------
    async def complete(self, messages: list[dict] | None, prompt: str | None, p: GenParams,
                       ticket: Ticket) -> dict:
        """The non-streaming answer, gathered from the stream (so that it too can be stopped)."""
        chat = messages is not None
        texts: list[list[str]] = [[] for _ in range(p.n)]
        finish: list[str | None] = [None] * p.n
        usage: dict = {}
        cid = _new_id(messages)
        async for chunk in self.stream(messages, prompt, p, ticket, whole=True):
            cid = chunk.get("id", cid)
            usage = chunk.get("usage") or usage
            for c in chunk["choices"]:
                piece = (c.get("delta") or {}).get("content") if chat else c.get("text")
                texts[c["index"]].append(piece or "")
                finish[c["index"]] = c.get("finish_reason") or finish[c["index"]]
        choices = []
        for i in range(p.n):
            text, why = "".join(texts[i]), finish[i] or "stop"
            choices.append({"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": why}
                           if chat else {"index": i, "text": text, "logprobs": None, "finish_reason": why})
        return {"id": cid, "object": "chat.completion" if chat else "text_completion", "created": int(time.time()),
                "model": self.model_name, "choices": choices, "usage": usage}

    # -- streams -----------------------------------------------------------------------------------
    async def stream(self, messages: list[dict] | None, prompt: str | None, p: GenParams, ticket: Ticket,
                     whole: bool = False) -> AsyncIterator[dict]:
        """OpenAI chunks of all ``n`` choices as they come, then one chunk with ``usage`` and no choices.

        Each choice waits for an admission unit, runs in a worker thread and gives the unit back when
        the engine has returned. Closing the iterator (client gone, stop button, cancellation while
        queued) stops every choice: queued ones leave the queue, running ones stop at llama.cpp's
        next callback (a token, or a prompt batch).
        """
        loop = asyncio.get_running_loop()
        q: asyncio.Queue = asyncio.Queue()
        job = _Job(p.n)
        ticket.started = True
        cid, created = _new_id(messages), int(time.time())
        obj = "chat.completion.chunk" if messages is not None else "text_completion"

        def put(i: int, item: Any) -> None:
            loop.call_soon_threadsafe(q.put_nowait, (i, item))

        def worker(i: int) -> None:
            with self._lock:
                self.generating += 1
            try:
                if not job.cancelled:
                    if self.passthrough:
                        self._raw_choice(messages, prompt, p, i, put, job)
                    else:
                        self._generic_choice(messages, prompt, p, i, put, job, whole)
            except Exception as exc:  # noqa: BLE001 - handed to the event loop, which reports it
                put(i, exc)
            finally:
                with self._lock:
                    self.generating -= 1
                try:
                    loop.call_soon_threadsafe(ticket.release)
                    put(i, _END)
                except RuntimeError:  # the event loop is gone (server shutting down)
                    pass

        async def start(i: int) -> None:
            await ticket.acquire()
            job.holding[i] = True  # no await between the acquire and this line: the unit is ours
            loop.run_in_executor(self._pool, worker, i)

        tasks = [asyncio.ensure_future(start(i)) for i in range(p.n)]
        usage: dict | None = None
        ended = 0
        try:
            while ended < p.n:
                i, item = await q.get()
                if item is _END:
                    ended += 1
                    continue
                if isinstance(item, BaseException):
                    raise item
                if "error" in item:
                    raise engine_error(item["error"])
                if "prompt_progress" in item:
                    continue  # llama.cpp's between-batches call: only there so we can stop
                if item.get("usage"):
                    usage = self._add_usage(usage, item.pop("usage"))
                if item.get("choices"):
                    yield self._tidy(item, i, cid, created)
            if usage is not None:
                yield {"id": cid, "object": obj, "created": created, "model": self.model_name, "choices": [],
                       "usage": usage}
        finally:
            # No await here: under a cancelled task every await would be cancelled again.
            job.cancelled = True
            for i, t in enumerate(tasks):
                if not job.holding[i]:
                    t.cancel()  # still queued: leaves the queue without taking a slot
                    ticket.abandon()

    def _raw_choice(self, messages, prompt, p: GenParams, i: int, put, job: _Job) -> None:
        def on_chunk(chunk: dict) -> bool:
            put(i, chunk)
            return job.cancelled  # True makes llama.cpp stop and free the slot

        fn = self.engine.raw_chat if messages is not None else self.engine.raw_completion  # type: ignore[attr-defined]
        res = fn(self._body(messages, prompt, p, i), on_chunk)
        if isinstance(res, dict) and "error" in res:
            put(i, engine_error(res["error"]))

    def _generic_choice(self, messages, prompt, p: GenParams, i: int, put, job: _Job, whole: bool) -> None:
        chat = messages is not None
        req = (ChatRequest.chat(messages, p.sampling(), sample_index=i) if chat
               else ChatRequest.completion(prompt or "", p.sampling(), sample_index=i))
        if chat:
            put(i, _chunk(i, {"role": "assistant", "content": ""}, None, True))
        if whole:  # one generate call: exact finish reason and token counts
            try:
                c = self.engine.generate(req)
            except EngineError as exc:
                raise generic_error(exc) from exc
            if c.error:
                raise generic_error(c.error)
            put(i, _chunk(i, c.text, None, chat))
            put(i, _chunk(i, None, c.finish_reason, chat))
            put(i, {"choices": [], "usage": {"prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens,
                                             "total_tokens": c.prompt_tokens + c.completion_tokens}})
            return
        pieces = 0
        it = iter(self.engine.stream(req))
        try:
            for delta in it:
                if job.cancelled:
                    return
                pieces += 1
                put(i, _chunk(i, delta, None, chat))
        except EngineError as exc:
            raise generic_error(exc) from exc
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()  # an engine generator stops its own work when closed
        finish = "length" if pieces >= p.max_tokens else "stop"  # one delta is about one token here
        put(i, _chunk(i, None, finish, chat))
        put(i, {"choices": [], "usage": {"prompt_tokens": 0, "completion_tokens": pieces, "total_tokens": pieces}})

    def _add_usage(self, acc: dict | None, u: dict) -> dict:
        """Usage over all choices: the prompt once, every choice's completion tokens."""
        if acc is None:
            acc = {"prompt_tokens": u.get("prompt_tokens", 0), "completion_tokens": 0, "total_tokens": 0}
            if not self.isolate_cache and "prompt_tokens_details" in u:
                acc["prompt_tokens_details"] = u["prompt_tokens_details"]
        acc["completion_tokens"] += u.get("completion_tokens", 0)
        acc["total_tokens"] = acc["prompt_tokens"] + acc["completion_tokens"]
        return acc

    def _tidy(self, chunk: dict, index: int, cid: str, created: int) -> dict:
        chunk.pop("timings", None)
        chunk.update(id=cid, created=created, model=self.model_name)  # not the GGUF's path on this disk
        for c in chunk["choices"]:
            c["index"] = index
        return chunk

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _new_id(messages: list[dict] | None) -> str:
    return ("chatcmpl-" if messages is not None else "cmpl-") + uuid.uuid4().hex[:24]


def _chunk(index: int, delta: Any, finish: str | None, chat: bool) -> dict:
    """A chunk from an engine-protocol engine; ``Backend._tidy`` adds the id, time and model name."""
    if chat:
        d = delta if isinstance(delta, dict) else ({"content": delta} if delta is not None else {})
        choice = {"index": index, "delta": d, "finish_reason": finish}
    else:
        choice = {"index": index, "text": delta or "", "logprobs": None, "finish_reason": finish}
    return {"object": "chat.completion.chunk" if chat else "text_completion", "choices": [choice]}
