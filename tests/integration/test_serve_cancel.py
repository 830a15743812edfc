"""Abandoned requests against the real server: the client hangs up while queued, while its prompt is
read, or while tokens come, streaming or not; llama.cpp's own slot count must drop at once.

The bounds are relative to this machine's speed at the moment (one prompt batch, measured first), so
a loaded machine does not make them flaky: before the fix a 3,000-token prompt plus a 3,000-token
answer kept the slot for a dozen batches and minutes of decoding.
"""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from ownchat.serve.process import ServerProcess

pytestmark = pytest.mark.model
MODEL = "smollm2-135m-instruct"
LONG_PROMPT = "word " * 3000  # about 3,000 tokens: twelve batches of 256


@pytest.fixture(scope="module")
def server(smollm2_gguf, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cancel")
    with ServerProcess(MODEL, "--parallel", "1", "--no-history", "--max-tokens", "3000",
                       log_path=tmp / "server.log") as srv:
        yield srv


@pytest.fixture(scope="module")
def batch_s(server) -> float:
    """Seconds llama.cpp takes for one 256-token prompt batch right now (plus the reply's first token)."""
    httpx.post(server.base_url + "/v1/completions", json={"model": MODEL, "prompt": "warm up", "max_tokens": 1},
               timeout=120)
    t0 = time.monotonic()
    r = httpx.post(server.base_url + "/v1/completions", json={"model": MODEL, "prompt": "word " * 250,
                                                               "max_tokens": 1, "seed": 1}, timeout=120)
    assert r.status_code == 200, r.text
    return time.monotonic() - t0


def health(server) -> dict:
    return httpx.get(server.base_url + "/healthz", timeout=60).json()


def wait_for(server, cond, timeout: float) -> float:
    t0 = time.monotonic()
    while True:
        h = health(server)
        if cond(h):
            return time.monotonic() - t0
        assert time.monotonic() - t0 < timeout, f"not reached within {timeout:.1f}s: {h}"
        time.sleep(0.05)


def send(server, path: str, body: dict) -> socket.socket:
    """A raw HTTP request whose socket the test closes when it likes: that is the client leaving."""
    data = json.dumps(body).encode()
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Type: application/json\r\n"
              f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
    return s


def hang_up(s: socket.socket) -> None:
    s.shutdown(socket.SHUT_RDWR)
    s.close()


@pytest.mark.parametrize("stream", [False, True])
def test_hang_up_while_queued(server, batch_s, stream):
    busy = send(server, "/v1/completions", {"model": MODEL, "prompt": "1, 2, 3,", "max_tokens": 3000,
                                             "stream": True, "temperature": 0})
    wait_for(server, lambda h: h["engine_busy"] == 1, 60)
    queued = send(server, "/v1/chat/completions", {"model": MODEL, "stream": stream, "max_tokens": 5,
                                                   "messages": [{"role": "user", "content": "queued"}]})
    wait_for(server, lambda h: h["in_flight"] == 2, 10)
    hang_up(queued)
    wait_for(server, lambda h: h["in_flight"] == 1, 3)  # left the queue; never took the slot
    hang_up(busy)
    wait_for(server, lambda h: h["engine_busy"] == 0 and h["in_flight"] == 0, 3 * batch_s + 5)


@pytest.mark.parametrize("stream", [False, True])
def test_hang_up_while_the_prompt_is_read(server, batch_s, stream):
    s = send(server, "/v1/completions", {"model": MODEL, "prompt": LONG_PROMPT, "max_tokens": 3000,
                                          "stream": stream, "temperature": 0})
    wait_for(server, lambda h: h["engine_busy"] == 1, 60)
    time.sleep(min(batch_s, 2.0))  # inside the prompt: a dozen batches of it remain
    hang_up(s)
    freed = wait_for(server, lambda h: h["engine_busy"] == 0 and h["in_flight"] == 0, 3 * batch_s + 5)
    # the next request is not held up behind the abandoned prompt
    t0 = time.monotonic()
    r = httpx.post(server.base_url + "/v1/completions", json={"model": MODEL, "prompt": "Hi", "max_tokens": 1},
                   timeout=120)
    assert r.status_code == 200 and time.monotonic() - t0 < 2 * batch_s + 5
    print(f"prompt batch {batch_s:.2f}s; slot freed {freed:.2f}s after the hang-up")


@pytest.mark.parametrize("stream", [False, True])
def test_hang_up_while_generating(server, batch_s, stream):
    s = send(server, "/v1/completions", {"model": MODEL, "prompt": "1, 2, 3, 4, 5,", "max_tokens": 3000,
                                          "stream": stream, "temperature": 0})
    if stream:
        got = b""
        while got.count(b"data: ") < 8:  # eight chunks: tokens are coming
            part = s.recv(4096)
            assert part, f"the stream ended early: {got[:300]!r}"
            got += part
    else:
        wait_for(server, lambda h: h["engine_busy"] == 1, 60)
        time.sleep(batch_s + 0.5)  # the short prompt is read; tokens are being made
    hang_up(s)
    freed = wait_for(server, lambda h: h["engine_busy"] == 0 and h["in_flight"] == 0, batch_s + 5)
    print(f"slot freed {freed:.2f}s after the hang-up")
