"""Guard rails: body size, prompt and completion token caps, and a bounded request queue.

A private server on a laptop must never fall over because one client sent a 2 GB body or asked for
a million tokens, and it must say "busy" (429) rather than queue without bound and hang everyone.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass
from typing import Any

from ownchat.serve.guards import lone_surrogate_at


@dataclass
class Limits:
    max_body_bytes: int = 1_000_000
    #: prompt tokens per request; ``None`` means "the engine's context window" (llama.cpp enforces it).
    max_prompt_tokens: int | None = None
    max_tokens: int = 2048  # the largest completion a client may ask for
    default_max_tokens: int = 512  # when the client does not say
    max_n: int = 8  # choices per request
    #: requests waiting for a free slot beyond the ones being generated; the next one gets 429.
    queue_size: int = 64

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LimitError(Exception):
    """A request over a limit; the API turns it into an OpenAI error body with ``status``."""

    def __init__(self, status: int, message: str, *, code: str, param: str | None = None,
                 type_: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param, self.type = status, message, code, param, type_


class Admission:
    """At most ``slots`` choices generate at once and at most ``queue_size`` wait; the rest get 429.

    A request takes one unit per choice (``n``), so ``n=4`` waits for, and occupies, four slots'
    worth of turns like four requests would. The check is immediate, so a full server answers in
    milliseconds instead of holding connections open. A unit is given back when the engine has
    really finished with it (the backend's worker returns), not when the client leaves.
    """

    def __init__(self, slots: int, queue_size: int) -> None:
        self.slots = max(1, slots)
        self.capacity = self.slots + max(0, queue_size)
        self._inside = 0
        self._sem: asyncio.Semaphore | None = None  # made lazily inside the server's event loop

    @property
    def inside(self) -> int:
        return self._inside

    def enter(self, units: int = 1) -> Ticket:
        if units > self.capacity:
            raise LimitError(400, f"n is {units}; this server runs at most {self.capacity} choices at once "
                                  "(slots plus queue)", code="invalid_value", param="n")
        if self._inside + units > self.capacity:
            raise LimitError(429, f"server busy: {self._inside} choices in flight or queued "
                                  f"(limit {self.capacity}); retry shortly",
                             code="rate_limit_exceeded", type_="rate_limit_error")
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.slots)
        self._inside += units
        return Ticket(self, self._sem, units)


class Ticket:
    """``units`` turns at the engine. Each unit ends once: released after its work ran, or abandoned
    when it was never acquired; the ticket leaves the admission count when all have ended."""

    def __init__(self, owner: Admission, sem: asyncio.Semaphore, units: int) -> None:
        self._owner, self._sem, self.units = owner, sem, units
        self._open = units
        self.started = False  # set by whoever takes charge of the units (the backend)

    async def acquire(self) -> None:
        """Wait for one slot. Cancelled while waiting, it holds nothing (asyncio hands the turn on)."""
        await self._sem.acquire()

    def release(self) -> None:
        """A unit whose work has finished."""
        self._sem.release()
        self._end(1)

    def abandon(self, count: int = 1) -> None:
        """Units that never acquired a slot (the client left while they queued)."""
        self._end(count)

    def close_unstarted(self) -> None:
        """The request ended before the backend took charge of its units: give them all back."""
        if not self.started:
            self.started = True
            self._end(self._open)

    def _end(self, count: int) -> None:
        count = min(count, self._open)
        self._open -= count
        if self._open == 0 and count:
            self._owner._inside -= self.units


def text_bytes(messages: list[dict[str, str]] | None, prompt: str | None) -> int:
    if prompt is not None:
        return len(prompt.encode())
    return sum(len(m["content"].encode()) for m in messages or [])


def check_prompt_size(limits: Limits, messages: list[dict[str, str]] | None, prompt: str | None,
                      count_tokens: Any = None) -> None:
    """Reject prompts over ``max_prompt_tokens`` before they reach the engine.

    Byte-level tokenizers never make more tokens than UTF-8 bytes (plus a few template tokens), so a
    prompt under the limit in bytes passes without tokenizing. Longer ones are counted with the
    engine's tokenizer when it has one; otherwise the engine's own context check answers (llama.cpp
    reports it and the API maps it to the same 400).
    """
    cap = limits.max_prompt_tokens
    if cap is None:
        return
    size = text_bytes(messages, prompt)
    if size + 64 <= cap or count_tokens is None:
        return
    text = prompt if prompt is not None else "\n".join(m["content"] for m in messages or [])
    n = count_tokens(text)
    if n > cap:
        raise LimitError(400, f"prompt has {n} tokens; this server accepts at most {cap} "
                              "(shorten the conversation or start a new one)",
                         code="context_length_exceeded", param="messages")


class BodySizeLimit:
    """ASGI middleware: refuse bodies over ``max_bytes`` (by Content-Length, or while reading chunks),
    and JSON bodies whose text is not Unicode (lone surrogates, see ``guards``)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._reject(send)
                return
        # Read the body up front (it is small by construction) so chunked uploads are capped too, then
        # replay it; later receive() calls go to the server, so disconnects still reach streaming replies.
        chunks: list[bytes] = []
        seen = 0
        more = True
        while more:
            msg = await receive()
            if msg["type"] != "http.request":  # client went away before sending the body
                return
            chunks.append(msg.get("body", b""))
            seen += len(chunks[-1])
            if seen > self.max_bytes:
                await self._reject(send)
                return
            more = msg.get("more_body", False)
        where = lone_surrogate_at(b"".join(chunks))
        if where is not None:
            await self._reject(send, 400, f"{where}: the text holds a lone UTF-16 surrogate (such as \\ud800), "
                                          "which is not valid Unicode; send UTF-8 text (a character beyond U+FFFF "
                                          "is escaped as a pair, e.g. \\ud83d\\ude00)", "invalid_value", where)
            return
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, send: Any, status: int = 413, message: str | None = None,
                      code: str = "request_too_large", param: str | None = None) -> None:
        message = message or f"request body too large: the limit is {self.max_bytes} bytes"
        body = json.dumps({"error": {"message": message, "type": "invalid_request_error", "param": param,
                                     "code": code}}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

