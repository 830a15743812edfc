"""A client that disconnects stops its work at every stage: queued, reading the prompt, generating;
streaming or not. Driven at the ASGI level so the disconnect happens exactly where the test says."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from serve_fakes import PassThroughFake, chat

from ownchat.serve.app import ServeSettings, create_app
from ownchat.serve.limits import Limits


class Call:
    """One HTTP request sent straight to the ASGI app; ``hang_up()`` is the client closing the socket."""

    def __init__(self, app, path: str, body: dict) -> None:
        self._body = json.dumps(body).encode()
        self._gone = asyncio.Event()
        self.sent: list[dict] = []
        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
                 "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
                 "root_path": "", "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json")],
                 "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}
        self.task = asyncio.ensure_future(app(scope, self._receive, self._send))

    async def _receive(self) -> dict:
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": False}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def _send(self, msg: dict) -> None:
        if not self._gone.is_set():  # like uvicorn (ASGI 2.3): sends to a closed connection are dropped
            self.sent.append(msg)

    def hang_up(self) -> None:
        self._gone.set()

    def text(self) -> str:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body").decode()


async def until(cond, timeout: float = 5.0) -> float:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)
    return time.monotonic() - t0


def make_app(eng, queue_size: int = 8):
    return create_app(eng, ServeSettings(model_name="tiny", history=False,
                                         limits=Limits(max_tokens=4000, queue_size=queue_size)))


@pytest.mark.parametrize("stream", [False, True])
def test_disconnect_while_queued_leaves_the_queue(stream):
    eng = PassThroughFake(delay=0.01)

    async def go():
        app = make_app(eng)
        adm = app.state.admission
        busy = Call(app, "/v1/chat/completions", chat(max_tokens=4000, n=2, stream=True))  # both slots
        await until(lambda: eng.active == 2)
        queued = Call(app, "/v1/chat/completions", chat("wait", max_tokens=5, stream=stream))
        await until(lambda: adm.inside == 3)
        queued.hang_up()
        await until(lambda: adm.inside == 2, timeout=2)  # out of the queue without waiting for a slot
        await queued.task
        busy.hang_up()
        await until(lambda: eng.active == 0 and adm.inside == 0, timeout=5)
        await busy.task
        assert not any("wait" in json.dumps(b) for b in eng.bodies)  # never reached the engine

    asyncio.run(go())


@pytest.mark.parametrize("stream", [False, True])
def test_disconnect_while_the_prompt_is_read_stops_the_engine(stream):
    eng = PassThroughFake(prompt_delay=8.0)  # a long prompt: four batches of 2 s

    async def go():
        app = make_app(eng)
        call = Call(app, "/v1/chat/completions", chat("long prompt", max_tokens=3000, stream=stream))
        await until(lambda: eng.active == 1)
        call.hang_up()
        freed = await until(lambda: eng.active == 0 and app.state.admission.inside == 0, timeout=5)
        assert eng.stopped_in_prompt.is_set() and freed < 4  # stopped at the next batch, not after 8 s
        await call.task
        eng.prompt_delay = 0.0
        nxt = Call(app, "/v1/chat/completions", chat("next", max_tokens=1))  # not delayed by the dead one
        await asyncio.wait_for(nxt.task, 30)
        assert '"w0 "' in nxt.text()

    asyncio.run(go())


@pytest.mark.parametrize("stream", [False, True])
def test_disconnect_while_generating_stops_the_engine(stream):
    eng = PassThroughFake(delay=0.02)  # 3000 tokens would take a minute

    async def go():
        app = make_app(eng)
        call = Call(app, "/v1/completions", {"model": "tiny", "prompt": "1, 2, 3,", "max_tokens": 3000,
                                             "stream": stream})
        await until(lambda: eng.active == 1)
        await asyncio.sleep(0.3)  # some tokens are out
        call.hang_up()
        await until(lambda: eng.active == 0 and app.state.admission.inside == 0, timeout=5)
        assert eng.stopped_early.is_set() and not eng.stopped_in_prompt.is_set()
        await call.task

    asyncio.run(go())


def test_whole_reply_is_the_streamed_reply():
    """Non-streaming requests run on the stream internally: same text, finish reason and usage."""
    eng = PassThroughFake()

    async def go():
        app = make_app(eng)
        whole = Call(app, "/v1/chat/completions", chat("hi", max_tokens=3))
        await whole.task
        body = json.loads(whole.text())
        assert body["choices"] == [{"index": 0, "message": {"role": "assistant", "content": "w0 w1 w2 "},
                                    "finish_reason": "length"}]
        assert body["model"] == "tiny" and body["usage"]["completion_tokens"] == 3 and "timings" not in body
        assert all(b["stream"] and b["return_progress"] for b in eng.bodies)

    asyncio.run(go())
