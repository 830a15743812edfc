"""`ownchat serve` under load vs the bare llama.cpp engine with the same load.

N concurrent streaming clients on loopback send chat requests for a fixed time or request count
(then stop launching and let in-flight ones finish). The baseline drives the same prompts,
max_tokens and slots through ``LlamaCppEngine.raw_chat`` in-process (one thread per client), so the
ratio is the cost of HTTP, SSE, validation and queueing. Target: >= 95% of the bare engine's
tokens/s, zero errors.

Then the slot release time after a disconnect, both sides: a client hangs up once tokens flow (the
server: closes its socket; bare: its callback returns True) and again while a ~1,000-token prompt
is being read; the time until llama.cpp's own count of busy slots is back to 0 is reported.
Everything binds to 127.0.0.1 only.

    python benchmarks/serve.py                 # 32 clients, 60 s per side, SmolLM2, 8 slots
    python benchmarks/serve.py --duration 10   # quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import threading
import time
from dataclasses import asdict, dataclass, field

PROMPTS = [
    "Explain what a hash table is in two sentences.",
    "Write a haiku about the sea.",
    "List three uses of a paperclip.",
    "What is the difference between a list and a tuple in Python?",
    "Give me a tip for learning a new language.",
    "Describe the water cycle briefly.",
    "Why is the sky blue?",
    "Suggest a name for a pet turtle and say why.",
    "How do I boil an egg?",
    "Summarise the plot of Romeo and Juliet in one paragraph.",
    "What does HTTP stand for and what is it used for?",
    "Write a short thank-you note to a colleague.",
    "What are prime numbers? Give examples.",
    "Explain recursion to a child.",
    "Name three planets and one fact about each.",
    "How can I make my code easier to read?",
]


@dataclass
class Result:
    side: str
    requests: int = 0
    errors: int = 0
    tokens: int = 0
    seconds: float = 0.0
    ttft: list[float] = field(default_factory=list)
    release_gen: list[float] = field(default_factory=list)  # s from hang-up to a free slot, while generating
    release_prompt: list[float] = field(default_factory=list)  # the same, while the prompt is read

    def releases(self) -> dict:
        med = lambda v: round(1000 * statistics.median(v), 1) if v else float("nan")  # noqa: E731
        return {"side": self.side, "release_generating_p50_ms": med(self.release_gen),
                "release_generating_max_ms": round(1000 * max(self.release_gen), 1) if self.release_gen else None,
                "release_prompt_p50_ms": med(self.release_prompt),
                "release_prompt_max_ms": round(1000 * max(self.release_prompt), 1) if self.release_prompt else None}

    def row(self) -> dict:
        q = sorted(self.ttft) or [float("nan")]
        return {"side": self.side, "requests": self.requests, "errors": self.errors, "tokens": self.tokens,
                "seconds": round(self.seconds, 1), "tok_s": round(self.tokens / self.seconds, 1) if self.seconds else 0,
                "ttft_p50_ms": round(1000 * statistics.median(q), 1),
                "ttft_p95_ms": round(1000 * q[min(len(q) - 1, int(0.95 * len(q)))], 1)}


def _messages(i: int) -> list[dict]:
    return [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}]


# -- the server over HTTP ------------------------------------------------------------------------------
async def _post_stream(host: str, port: int, payload: bytes) -> tuple[float | None, bytes]:
    """One streaming POST on a fresh loopback connection: (time to first content byte, raw response).

    A bare asyncio client, not httpx: on two cores every microsecond the load generator spends is
    taken from the engine it measures, and the baseline side has no client at all.
    """
    reader, writer = await asyncio.open_connection(host, port)
    t0 = time.perf_counter()
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (host.encode(), len(payload), payload))
    first = None
    buf = bytearray()
    try:
        while part := await reader.read(65536):
            if first is None and b'"content":"' in part:
                first = time.perf_counter() - t0
            buf += part
    finally:
        writer.close()
    return first, bytes(buf)


async def _http_load(base_url: str, model: str, clients: int, duration: float, max_tokens: int,
                     max_requests: int) -> Result:
    host, port = base_url.removeprefix("http://").split(":")
    res = Result("ownchat serve (HTTP, SSE)")
    deadline = time.perf_counter() + duration
    launched = 0

    async def client(k: int) -> None:
        nonlocal launched
        i = k
        while time.perf_counter() < deadline and launched < max_requests:
            launched += 1
            body = {"model": model, "messages": _messages(i), "max_tokens": max_tokens, "temperature": 0,
                    "stream": True, "stream_options": {"include_usage": True}}
            i += clients
            try:
                first, raw = await _post_stream(host, int(port), json.dumps(body).encode())
            except OSError:
                first, raw = None, b""
            res.requests += 1
            usage_at = raw.rfind(b'"usage":')
            ok = raw.startswith(b"HTTP/1.1 200") and b'"error"' not in raw and b"[DONE]" in raw
            if not ok or usage_at < 0 or first is None:
                res.errors += 1
                continue
            res.ttft.append(first)
            line = raw[raw.rfind(b"data: {", 0, usage_at) + 6:].split(b"\n", 1)[0]
            res.tokens += json.loads(line)["usage"]["completion_tokens"]

    t0 = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
    res.seconds = time.perf_counter() - t0
    return res


def run_server(args: argparse.Namespace) -> Result:
    from ownchat.serve.process import ServerProcess

    cap = max(args.max_tokens, HANGUP_TOKENS) if args.disconnects else args.max_tokens
    with ServerProcess(args.model, "--parallel", str(args.parallel), "--no-history", "--queue", str(args.clients),
                       "--max-tokens", str(cap)) as srv:
        _warm_http(srv.base_url, args)
        res = asyncio.run(_http_load(srv.base_url, args.model, args.clients, args.duration, args.max_tokens,
                                     args.max_requests))
        for k in range(args.disconnects):  # a new first word each time: nothing comes from the prompt cache
            res.release_gen.append(_http_hangup(srv, args, f"{k}. Count from one to one thousand in words.", True))
            res.release_prompt.append(_http_hangup(srv, args, f"{k}. {LONG_PROMPT}", False))
        return res


HANGUP_TOKENS = 2000  # the hang-up probes ask for long answers: only a hang-up ends them early
LONG_PROMPT = "Summarise this text: " + "the quick brown fox jumps over the lazy dog " * 110  # ~1,000 tokens


def _http_hangup(srv, args: argparse.Namespace, text: str, after_first_token: bool) -> float:
    """Hang up on a streaming request (after its first token, or as soon as the engine holds it);
    return the seconds until the server's engine reports no busy slot."""
    import httpx

    health = lambda: httpx.get(srv.base_url + "/healthz", timeout=60).json()  # noqa: E731
    body = json.dumps({"model": args.model, "messages": [{"role": "user", "content": text}],
                       "max_tokens": HANGUP_TOKENS, "temperature": 0, "stream": True}).encode()
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    if after_first_token:
        got = b""
        while b'"content":"' not in got:
            part = s.recv(4096)
            if not part:
                raise RuntimeError(f"the server closed the stream before a token: {got[:300]!r}")
            got += part
    else:
        while health()["engine_busy"] == 0:
            time.sleep(0.02)
        time.sleep(0.3)
    t0 = time.perf_counter()
    s.shutdown(socket.SHUT_RDWR)
    s.close()
    while health()["engine_busy"]:
        time.sleep(0.02)
    return time.perf_counter() - t0


def _warm_http(base_url: str, args: argparse.Namespace) -> None:
    import httpx

    for i in range(len(PROMPTS)):  # same warm-up both sides: every prompt once (fills the prompt cache)
        httpx.post(base_url + "/v1/chat/completions", timeout=120,
                   json={"model": args.model, "messages": _messages(i), "max_tokens": 1})


# -- the bare engine in-process ------------------------------------------------------------------------
def run_bare(args: argparse.Namespace) -> Result:
    from ownchat.engines import load_engine

    eng = load_engine(args.model, "llamacpp", concurrency=args.parallel, log=lambda *a: None)
    for i in range(len(PROMPTS)):
        eng.raw_chat({"messages": _messages(i), "max_tokens": 1})
    res = Result("bare llama.cpp (in-process)")
    lock = threading.Lock()
    # At most `parallel` calls inside llama.cpp at once, as the server admits them: threads parked in
    # xllamacpp's own queue cost CPU, and the baseline should be the engine at its best.
    gate = threading.Semaphore(args.parallel) if not args.ungated else None
    deadline = time.perf_counter() + args.duration
    launched = [0]

    def client(k: int) -> None:
        i = k
        while time.perf_counter() < deadline:
            with lock:
                if launched[0] >= args.max_requests:
                    return
                launched[0] += 1
            body = {"messages": _messages(i), "max_tokens": args.max_tokens, "temperature": 0, "stream": True,
                    "stream_options": {"include_usage": True}, "cache_prompt": True}
            i += args.clients
            t0 = time.perf_counter()
            state: dict = {"first": None, "tokens": None, "error": False}

            def on_chunk(chunk: dict, state: dict = state, t0: float = t0) -> bool:
                if state["first"] is None and any(c.get("delta", {}).get("content") for c in chunk.get("choices", ())):
                    state["first"] = time.perf_counter() - t0
                if "usage" in chunk:
                    state["tokens"] = chunk["usage"]["completion_tokens"]
                if "error" in chunk:
                    state["error"] = True
                return False

            if gate is not None:
                with gate:
                    out = eng.raw_chat(body, on_chunk)
            else:
                out = eng.raw_chat(body, on_chunk)
            with lock:
                res.requests += 1
                if state["error"] or state["tokens"] is None or state["first"] is None or (out and "error" in out):
                    res.errors += 1
                    continue
                res.ttft.append(state["first"])
                res.tokens += state["tokens"]

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    res.seconds = time.perf_counter() - t0
    for k in range(args.disconnects):
        res.release_gen.append(_bare_hangup(eng, f"{k}. Count from one to one thousand in words.", True))
        res.release_prompt.append(_bare_hangup(eng, f"{k}. {LONG_PROMPT}", False))
    eng.close()
    return res


def _bare_hangup(eng, text: str, after_first_token: bool) -> float:
    """The bare engine's best case: the callback says stop at the first chance (a token, or a prompt
    batch with return_progress); seconds from that decision to no busy slot."""
    gone = threading.Event()
    started = threading.Event()
    t_stop: list[float] = []

    def on_chunk(chunk: dict) -> bool:
        if "prompt_progress" in chunk:
            started.set()
            if not after_first_token and gone.is_set():
                t_stop.append(time.perf_counter())
                return True
            return False
        if any((c.get("delta") or {}).get("content") for c in chunk.get("choices", ())):
            started.set()
            if after_first_token or gone.is_set():
                t_stop.append(time.perf_counter())
                return True
        return False

    body = {"messages": [{"role": "user", "content": text}], "max_tokens": HANGUP_TOKENS, "temperature": 0,
            "stream": True,
            "return_progress": True, "cache_prompt": False}
    th = threading.Thread(target=eng.raw_chat, args=(body, on_chunk))
    th.start()
    started.wait(120)
    if not after_first_token:
        time.sleep(0.3)
    t0 = time.perf_counter()
    gone.set()  # the client leaves now; the engine learns it at its next callback
    th.join()
    while eng.busy_slots():
        time.sleep(0.02)
    return time.perf_counter() - (t0 if not after_first_token else t_stop[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of load per side")
    ap.add_argument("--parallel", type=int, default=8, help="llama.cpp slots, both sides")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--max-requests", type=int, default=5000, help="stop launching after this many, per side")
    ap.add_argument("--disconnects", type=int, default=3, help="hang-ups measured per side and stage")
    ap.add_argument("--ungated", action="store_true",
                    help="baseline: let all clients call llama.cpp at once (its own queue) instead of N slots")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()

    from rich.console import Console
    from rich.table import Table

    from ownchat.cli.common import print_table

    console = Console()
    console.print(f"{args.clients} streaming clients, {args.duration:.0f} s or {args.max_requests} requests per "
                  f"side, {args.model}, {args.parallel} slots, max_tokens={args.max_tokens}")
    bare = run_bare(args)
    served = run_server(args)
    rows = [served.row(), bare.row()]
    ratio = rows[0]["tok_s"] / rows[1]["tok_s"] if rows[1]["tok_s"] else float("nan")
    t = Table(title="ownchat serve vs bare llama.cpp")
    for col in rows[0]:
        t.add_column(col)
    for r in rows:
        t.add_row(*[str(v) for v in r.values()])
    print_table(t)  # whole when piped
    verdict = "PASS" if ratio >= 0.95 and served.errors == 0 else "FAIL"
    console.print(f"throughput ratio serve/bare = {ratio:.3f} (target >= 0.95), errors = {served.errors}: {verdict}")
    if args.disconnects:
        rel = [served.releases(), bare.releases()]
        t = Table(title="slot release after a hang-up (llama.cpp's busy-slot count back to 0)")
        for col in rel[0]:
            t.add_column(col)
        for r in rel:
            t.add_row(*[str(v) for v in r.values()])
        print_table(t)
        rows.extend(rel)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": rows, "ratio": ratio, "verdict": verdict,
                       "bare": asdict(bare) | {"ttft": None}, "served": asdict(served) | {"ttft": None}}, f, indent=1)


if __name__ == "__main__":
    main()
