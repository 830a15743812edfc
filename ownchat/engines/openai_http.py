"""Remote teachers over the OpenAI-compatible HTTP API (OpenAI, vLLM, llama.cpp server, Ollama, ...).

httpx with bounded concurrency, several base URLs sharing the load (least busy first), retries with
exponential backoff and full jitter on everything transient (429, 5xx, timeouts, dropped connections,
malformed bodies) honouring ``Retry-After``, SSE streaming, and token + cost accounting per run.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx

from ownchat.engines.base import ChatRequest, Completion, Engine, EngineError, UsageMeter
from ownchat.engines.logprobs import TOP_K, ChoiceLogprobs, from_openai_response
from ownchat.engines.pricing import Prices, load_prices

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529}


class Retryable(Exception):
    """A transient failure: worth another try, after ``wait`` seconds if the server said so."""

    def __init__(self, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.wait = wait


class OpenAIEngine(Engine):
    name = "openai"

    def __init__(self, model: str, base_urls: str | list[str] | None = None, api_key: str | None = None,
                 concurrency: int = 8, timeout: float = 120.0, max_retries: int = 6, backoff: float = 1.0,
                 max_backoff: float = 60.0, prices: Prices | dict | str | Path | None = None,
                 connect_timeout: float = 10.0, verbose: bool = False) -> None:
        if isinstance(base_urls, str):
            base_urls = [u for u in base_urls.split(",") if u.strip()]
        urls = base_urls or [os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL]
        self.base_urls = [u.strip().rstrip("/") for u in urls]
        self.base_url = self.base_urls[0]  # provenance / licence terms look at this one
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY")
        if not self.api_key and any("api.openai.com" in u for u in self.base_urls):
            raise EngineError("no API key for api.openai.com: pass --api-key or set OPENAI_API_KEY")
        self.model_name = model
        self.max_concurrency = max(1, concurrency)
        self.max_retries = max_retries
        self.verbose = verbose
        self.backoff, self.max_backoff = backoff, max_backoff
        self.prices = load_prices(prices)
        self.meter = UsageMeter()
        self.license = None  # terms come from the endpoint: licensing.teacher_terms
        hosts = ",".join(sorted(httpx.URL(u).host + httpx.URL(u).path for u in self.base_urls))
        self.model_id = f"openai:{model}@{hosts}"
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        limits = httpx.Limits(max_connections=self.max_concurrency * 2, max_keepalive_connections=self.max_concurrency)
        self._client = httpx.Client(headers=headers, limits=limits,
                                    timeout=httpx.Timeout(timeout, connect=connect_timeout))
        self._gate = threading.BoundedSemaphore(self.max_concurrency)
        self._lock = threading.Lock()
        self._busy = dict.fromkeys(self.base_urls, 0)
        self._turn = 0

    # -- load spreading ---------------------------------------------------------------------------
    def _pick(self, avoid: str | None) -> str:
        """Least busy URL; ties go round-robin; a URL that just failed is avoided when others exist."""
        with self._lock:
            self._turn += 1
            order = self.base_urls[self._turn % len(self.base_urls):] + self.base_urls[:self._turn % len(self.base_urls)]
            choices = [u for u in order if u != avoid] or order
            url = min(choices, key=lambda u: self._busy[u])
            self._busy[url] += 1
            return url

    def _release(self, url: str) -> None:
        with self._lock:
            self._busy[url] -= 1

    # -- request bodies ---------------------------------------------------------------------------
    def _body(self, request: ChatRequest, stream: bool) -> tuple[str, dict[str, Any]]:
        p = request.params
        body: dict[str, Any] = {"model": self.model_name, "temperature": p.temperature, "top_p": p.top_p,
                                "max_tokens": p.max_tokens}
        seed = request.effective_seed()
        if seed is not None:
            body["seed"] = seed
        if p.stop:
            body["stop"] = list(p.stop)
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        if request.messages is not None:
            body["messages"] = list(request.messages)
            return "/chat/completions", body
        body["prompt"] = request.prompt or ""
        return "/completions", body

    # -- the retry loop ---------------------------------------------------------------------------
    def _with_retries(self, attempt_fn) -> Any:
        last_url: str | None = None
        errors: list[str] = []
        for attempt in range(self.max_retries + 1):
            wait: float | None = None
            with self._gate:  # held while talking to a server, not while backing off
                url = self._pick(avoid=last_url)
                try:
                    return attempt_fn(url)
                except Retryable as exc:
                    errors.append(f"{url}: {exc}")
                    last_url, wait = url, exc.wait
                except httpx.TimeoutException as exc:
                    errors.append(f"{url}: timed out ({type(exc).__name__})")
                    last_url = url
                except httpx.TransportError as exc:  # refused, reset, dropped mid-response
                    errors.append(f"{url}: connection failed ({type(exc).__name__}: {exc})")
                    last_url = url
                finally:
                    self._release(url)
            if attempt == self.max_retries:
                break
            self.meter.add_retry()
            delay = self._delay(attempt, wait)
            if self.verbose:
                print(f"retry {attempt + 1}/{self.max_retries} in {delay:.1f}s: {errors[-1]}", file=sys.stderr)
            time.sleep(delay)
        raise EngineError(f"{self.model_name}: gave up after {self.max_retries + 1} attempts; last error: "
                          f"{errors[-1]}")

    def _delay(self, attempt: int, server_wait: float | None) -> float:
        if server_wait is not None:
            return min(server_wait, self.max_backoff)
        # full jitter: many clients that failed together do not retry together
        return random.uniform(0, min(self.max_backoff, self.backoff * 2**attempt))

    # -- one request ------------------------------------------------------------------------------
    def generate(self, request: ChatRequest) -> Completion:
        path, body = self._body(request, stream=False)

        def attempt(url: str) -> Completion:
            resp = self._client.post(url + path, json=body)
            check_status(resp)
            try:
                data = resp.json()
                choice = data["choices"][0]
                text = choice["message"]["content"] if "message" in choice else choice["text"]
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise Retryable(f"malformed response ({type(exc).__name__}): {resp.text[:200]!r}") from None
            usage = data.get("usage") or {}
            return Completion(text=text or "", finish_reason=choice.get("finish_reason") or "stop",
                              prompt_tokens=int(usage.get("prompt_tokens") or 0),
                              completion_tokens=int(usage.get("completion_tokens") or 0),
                              model=self.model_id, extra={"base_url": url})

        try:
            comp = self._with_retries(attempt)
        except EngineError:
            self.meter.add(Completion("", "error", error="failed"))
            raise
        self.meter.add(comp, self.prices.cost(self.model_name, comp.prompt_tokens, comp.completion_tokens))
        return comp

    def choice_logprobs(self, request: ChatRequest, choices: Sequence[str]) -> ChoiceLogprobs:
        if request.messages is None:
            raise EngineError("one-token verdicts need a chat request")
        path, body = self._body(request, stream=False)
        body.update(max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=TOP_K)

        def attempt(url: str) -> ChoiceLogprobs:
            resp = self._client.post(url + path, json=body)
            check_status(resp)
            try:
                data = resp.json()
            except ValueError:
                raise Retryable(f"malformed response: {resp.text[:200]!r}") from None
            usage = data.get("usage") or {}
            self.meter.add(Completion("", "stop", int(usage.get("prompt_tokens") or 0),
                                      int(usage.get("completion_tokens") or 0), model=self.model_id))
            try:
                return from_openai_response(data, choices)
            except ValueError as exc:  # a server that ignores `logprobs` will not start giving them
                raise EngineError(f"{self.model_name}: {exc}; this server gives no logprobs: use text verdicts") from None

        return self._with_retries(attempt)

    def stream(self, request: ChatRequest) -> Iterator[str]:
        """SSE deltas. Failures before the first token are retried; after it they raise EngineError."""
        path, body = self._body(request, stream=True)
        usage: dict[str, int] = {}

        def open_stream(url: str) -> tuple[httpx.Response, Iterator[str]]:
            resp = self._client.send(self._client.build_request("POST", url + path, json=body), stream=True)
            try:
                check_status(resp)
                lines = resp.iter_lines()
                first = next(_sse_events(lines, usage), None)  # wait for the first event inside the retry loop
            except BaseException:
                resp.close()
                raise
            return resp, _chain(first, _sse_events(lines, usage))

        resp, events = self._with_retries(open_stream)
        pieces: list[str] = []
        try:
            for delta in events:
                pieces.append(delta)
                yield delta
        except (httpx.HTTPError, Retryable) as exc:
            raise EngineError(f"{self.model_name}: stream broke after {len(pieces)} chunks: {exc}") from exc
        finally:
            resp.close()
        self.meter.add(Completion("".join(pieces), "stop", usage.get("prompt_tokens", 0),
                                  usage.get("completion_tokens", 0)),
                       self.prices.cost(self.model_name, usage.get("prompt_tokens", 0),
                                        usage.get("completion_tokens", 0)))

    def close(self) -> None:
        self._client.close()


def check_status(resp: httpx.Response) -> None:
    """Raise Retryable for transient statuses and EngineError for the rest (bad key, bad model, ...)."""
    if resp.status_code < 400:
        return
    if not resp.is_stream_consumed:
        resp.read()
    detail = resp.text[:300]
    if resp.status_code in RETRY_STATUS:
        raise Retryable(f"HTTP {resp.status_code}: {detail}", retry_after(resp.headers.get("retry-after")))
    raise EngineError(f"HTTP {resp.status_code} from {resp.request.url}: {detail}")


def retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: either a number or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _sse_events(lines: Iterator[str], usage: dict[str, int]) -> Iterator[str]:
    """Text deltas from ``data:`` lines; records usage when the final chunk carries it."""
    for line in lines:
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        try:
            chunk = json.loads(payload)
        except json.JSONDecodeError:
            raise Retryable(f"malformed stream chunk: {payload[:120]!r}") from None
        if chunk.get("usage"):
            usage.update({k: int(v) for k, v in chunk["usage"].items() if isinstance(v, int)})
        for choice in chunk.get("choices") or []:
            delta = (choice.get("delta") or {}).get("content") if "delta" in choice else choice.get("text")
            if delta:
                yield delta


def _chain(first: str | None, rest: Iterator[str]) -> Iterator[str]:
    if first is not None:
        yield first
        yield from rest
