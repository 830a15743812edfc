"""Fake engines and helpers for the serve API tests (no model)."""

from __future__ import annotations

import json
import threading
import time

from fastapi.testclient import TestClient

from ownchat.engines.base import Completion, Engine
from ownchat.serve.app import ServeSettings, create_app
from ownchat.serve.limits import Limits


class PassThroughFake(Engine):
    """Speaks llama.cpp's raw OpenAI dialect: replies 'w0 w1 w2 ...' up to max_tokens words.

    Like llama.cpp it reads the prompt in batches (``prompt_delay`` seconds over four batches, with a
    ``prompt_progress`` callback between them when asked), stops when a callback returns True,
    reports ``cached_tokens`` as the prefix shared with the previous prompt when ``cache_prompt``
    is on, and counts the requests it holds (``active``) like llama.cpp's slot metrics.
    """

    name = "fake"
    max_concurrency = 2
    license = "Apache-2.0"

    def __init__(self, delay: float = 0.0, prompt_delay: float = 0.0) -> None:
        self.delay, self.prompt_delay = delay, prompt_delay
        self.bodies: list[dict] = []
        self.stopped_early = threading.Event()  # stopped while generating
        self.stopped_in_prompt = threading.Event()  # stopped while reading the prompt
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()
        self._last_prompt = ""

    def busy_slots(self) -> int:
        return self.active

    def _words(self, body: dict) -> list[str]:
        return [f"w{i} " for i in range(body.get("max_tokens", 16))]

    def raw_chat(self, body: dict, on_chunk=None):
        with self._lock:
            self.bodies.append(body)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            return self._run(body, on_chunk)
        finally:
            with self._lock:
                self.active -= 1

    raw_completion = raw_chat

    def _run(self, body: dict, on_chunk):
        text_in = json.dumps(body.get("messages", body.get("prompt")))
        if "TOOLONG" in text_in:
            return {"error": {"code": 400, "message": "request (9999 tokens) exceeds the available context size",
                              "type": "exceed_context_size_error"}}
        with self._lock:
            cached = 0
            if body.get("cache_prompt", True):
                while cached < min(len(text_in), len(self._last_prompt)) and text_in[cached] == self._last_prompt[cached]:
                    cached += 1
            self._last_prompt = text_in
        words = self._words(body)
        chat = "messages" in body
        usage = {"prompt_tokens": len(text_in), "completion_tokens": len(words),
                 "total_tokens": len(text_in) + len(words), "prompt_tokens_details": {"cached_tokens": cached}}
        if on_chunk is None:
            time.sleep(self.prompt_delay + self.delay * len(words))
            choices = [{"index": i, "finish_reason": "length",
                        **({"message": {"role": "assistant", "content": "".join(words)}} if chat
                           else {"text": "".join(words)})} for i in range(body.get("n", 1))]
            return {"id": "x", "object": "chat.completion" if chat else "text_completion", "created": 1,
                    "model": "/secret/path.gguf", "choices": choices, "timings": {}, "usage": usage}
        for batch in range(4):
            if body.get("return_progress") and on_chunk({"choices": [], "prompt_progress": {"processed": batch}}):
                self.stopped_in_prompt.set()
                return None
            time.sleep(self.prompt_delay / 4)
        for w in words:
            if self.delay:
                time.sleep(self.delay)
            choice = {"index": 0, "finish_reason": None, **({"delta": {"content": w}} if chat else {"text": w})}
            if on_chunk({"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "/p",
                         "choices": [choice]}):
                self.stopped_early.set()
                return None
        on_chunk({"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "/p",
                  "choices": [{"index": 0, "finish_reason": "length", "delta": {}}]})
        on_chunk({"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "/p", "choices": [],
                  "usage": usage, "timings": {"cache_n": cached}})
        return None


class GenericFake(Engine):
    """Only the engine protocol (like the transformers engine): the API builds the OpenAI shapes."""

    name = "generic"
    max_concurrency = 1

    def generate(self, request):
        return Completion(text=f"seen {len(request.messages or [])} messages", finish_reason="stop",
                          prompt_tokens=5, completion_tokens=3)

    def stream(self, request):
        yield from ["seen ", "it"]


def make_client(engine=None, tmp_path=None, **kw) -> TestClient:
    limits = kw.pop("limits", Limits(max_body_bytes=20_000, max_prompt_tokens=1000, max_tokens=64, queue_size=1))
    settings = ServeSettings(model_name="tiny", aliases=("tiny-alias",), license="Apache-2.0",
                             history_path=tmp_path / "h.sqlite" if tmp_path else None, limits=limits, **kw)
    return TestClient(create_app(engine or PassThroughFake(), settings), base_url="http://127.0.0.1")


def chat(content="hi", **extra):
    return {"model": "tiny", "messages": [{"role": "user", "content": content}], **extra}


def sse_events(text: str) -> list:
    out = []
    for line in text.splitlines():
        if line.startswith("data: "):
            data = line[6:]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def assert_error(r, status: int, code: str | None = None):
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    if code:
        assert err["code"] == code, err
