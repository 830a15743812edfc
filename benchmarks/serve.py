"""`ownchat serve` under load vs the bare llama.cpp engine with the same load.

N concurrent streaming clients on loopback send chat requests for a fixed time (then stop launching
and let in-flight ones finish). The baseline drives the same prompts, max_tokens and slots through
``LlamaCppEngine.raw_chat`` in-process (one thread per client), so the ratio is the cost of HTTP,
SSE, validation and queueing. Target: >= 95% of the bare engine's tokens/s, zero errors.

    python benchmarks/serve.py                 # 32 clients, 60 s per side, SmolLM2, 8 slots
    python benchmarks/serve.py --duration 10   # quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
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


async def _http_load(base_url: str, model: str, clients: int, duration: float, max_tokens: int) -> Result:
    host, port = base_url.removeprefix("http://").split(":")
    res = Result("ownchat serve (HTTP, SSE)")
    deadline = time.perf_counter() + duration

    async def client(k: int) -> None:
        i = k
        while time.perf_counter() < deadline:
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

    with ServerProcess(args.model, "--parallel", str(args.parallel), "--no-history", "--queue", str(args.clients),
                       "--max-tokens", str(args.max_tokens)) as srv:
        _warm_http(srv.base_url, args)
        return asyncio.run(_http_load(srv.base_url, args.model, args.clients, args.duration, args.max_tokens))


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

    def client(k: int) -> None:
        i = k
        while time.perf_counter() < deadline:
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
    eng.close()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of load per side")
    ap.add_argument("--parallel", type=int, default=8, help="llama.cpp slots, both sides")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--ungated", action="store_true",
                    help="baseline: let all clients call llama.cpp at once (its own queue) instead of N slots")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()

    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"{args.clients} streaming clients, {args.duration:.0f} s per side, {args.model}, "
                  f"{args.parallel} slots, max_tokens={args.max_tokens}")
    bare = run_bare(args)
    served = run_server(args)
    rows = [served.row(), bare.row()]
    ratio = rows[0]["tok_s"] / rows[1]["tok_s"] if rows[1]["tok_s"] else float("nan")
    t = Table(title="ownchat serve vs bare llama.cpp")
    for col in rows[0]:
        t.add_column(col)
    for r in rows:
        t.add_row(*[str(v) for v in r.values()])
    console.print(t)
    verdict = "PASS" if ratio >= 0.95 and served.errors == 0 else "FAIL"
    console.print(f"throughput ratio serve/bare = {ratio:.3f} (target >= 0.95), errors = {served.errors}: {verdict}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": rows, "ratio": ratio, "verdict": verdict,
                       "bare": asdict(bare) | {"ttft": None}, "served": asdict(served) | {"ttft": None}}, f, indent=1)


if __name__ == "__main__":
    main()
