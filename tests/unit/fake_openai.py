"""A real HTTP server on 127.0.0.1 that misbehaves on cue, standing in for a remote teacher.

``FakeOpenAI(script)`` serves /v1/chat/completions and /v1/completions. Each request takes the next
behaviour from ``script`` (then ``default``): "ok", "429" (with Retry-After), "500", "401",
"malformed" (200 with a broken body), "slow" (sleeps past the client's timeout), "drop" (closes the
connection without answering), "stream-broken" (SSE that stops mid-way).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeOpenAI:
    def __init__(self, script: list[str] | None = None, default: str = "ok", retry_after: str = "0",
                 slow_s: float = 1.0, answer: str = "Paris is the capital.") -> None:
        self.script = list(script or [])
        self.default = default
        self.retry_after = retry_after
        self.slow_s = slow_s
        self.answer = answer
        self.requests: list[dict[str, Any]] = []
        self.times: list[float] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    fake.requests.append({"path": self.path, "body": body,
                                          "auth": self.headers.get("Authorization")})
                    fake.times.append(time.monotonic())
                    what = fake.script.pop(0) if fake.script else fake.default
                try:
                    fake.respond(self, what, body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up first (timeouts): expected

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- behaviours -------------------------------------------------------------------------------
    def respond(self, h: BaseHTTPRequestHandler, what: str, body: dict[str, Any]) -> None:
        if what == "drop":
            h.close_connection = True
            h.connection.shutdown(2)  # the client sees the connection die with no response
            return
        if what == "slow":
            time.sleep(self.slow_s)
            what = "ok"
        if what in ("429", "500", "401"):
            msg = json.dumps({"error": {"message": f"fake {what}"}}).encode()
            h.send_response(int(what))
            if what == "429":
                h.send_header("Retry-After", self.retry_after)
            self._send(h, msg, "application/json")
            return
        if what == "malformed":
            h.send_response(200)
            self._send(h, b'{"choices": [ {"mess', "application/json")
            return
        if body.get("stream"):
            self._stream(h, body, broken=what == "stream-broken")
            return
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        if "messages" in body:
            choice = {"index": 0, "message": {"role": "assistant", "content": self.answer}, "finish_reason": "stop"}
        else:
            choice = {"index": 0, "text": " " + self.answer, "finish_reason": "length"}
        data = json.dumps({"id": "x", "object": "chat.completion", "model": body.get("model"),
                           "choices": [choice], "usage": usage}).encode()
        h.send_response(200)
        self._send(h, data, "application/json")

    def _stream(self, h: BaseHTTPRequestHandler, body: dict[str, Any], broken: bool) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Connection", "close")
        h.end_headers()
        words = self.answer.split(" ")
        for k, word in enumerate(words):
            piece = word if k == 0 else " " + word
            chunk = {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
            h.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            h.wfile.flush()
            if broken and k == 1:
                h.wfile.write(b"data: {not json\n\n")
                h.close_connection = True
                return
        final = {"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": len(words)}}
        h.wfile.write(f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode())
        h.close_connection = True

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, data: bytes, ctype: str) -> None:
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
