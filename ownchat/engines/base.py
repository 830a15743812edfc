"""The one protocol every generation engine speaks.

Chat messages + sampling params in; text, finish reason and token usage out. ``generate_many`` runs
many requests at once (threads for engines that batch internally, real batches for torch) and yields
results as they finish, so callers can write them out and resume after a crash.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import Any

from ownchat.engines.logprobs import ChoiceLogprobs
from ownchat.errors import UserError

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SamplingParams:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if "stop" in known:
            stop = known["stop"]
            known["stop"] = (stop,) if isinstance(stop, str) else tuple(stop or ())
        return cls(**known)


@dataclass(frozen=True)
class ChatRequest:
    """One generation. ``messages`` for chat; ``prompt`` (raw text, no template) for completions.

    ``sample_index`` tells apart several samples of the same request (self-consistency, feedback):
    the cache keys on it so that sample 3 of a prompt is paid for once and replayed, not re-drawn.
    """

    messages: tuple[Message, ...] | None = None
    prompt: str | None = None
    params: SamplingParams = field(default_factory=SamplingParams)
    sample_index: int = 0

    @classmethod
    def chat(cls, messages: Iterable[Message], params: SamplingParams | None = None,
             sample_index: int = 0) -> ChatRequest:
        msgs = tuple({"role": m["role"], "content": m["content"]} for m in messages)
        return cls(messages=msgs, params=params or SamplingParams(), sample_index=sample_index)

    @classmethod
    def completion(cls, prompt: str, params: SamplingParams | None = None, sample_index: int = 0) -> ChatRequest:
        return cls(prompt=prompt, params=params or SamplingParams(), sample_index=sample_index)

    def effective_seed(self) -> int | None:
        """Distinct samples need distinct seeds; derive one from the index when the caller gave a seed."""
        if self.params.seed is None:
            return None
        return self.params.seed + self.sample_index


@dataclass
class Completion:
    text: str
    finish_reason: str  # "stop" | "length" | "error"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    error: str | None = None
    model: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    def usage(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}


class EngineError(UserError):
    """A request that could not be served (after retries, for remote engines), or an engine that
    cannot run this model; the message says which and what to do."""


class Engine:
    """Base class. Subclasses implement ``generate`` (one request, blocking) and may override the rest."""

    name: str = "engine"
    #: identity used by the response cache: changes whenever the weights, adapter or template change.
    model_id: str = ""
    #: how many requests are useful in flight at once (parallel slots, HTTP concurrency, batch size).
    max_concurrency: int = 1
    #: licence of the weights (pack table or ownchat.json), for provenance and the licence ledger.
    license: str | None = None

    def generate(self, request: ChatRequest) -> Completion:  # pragma: no cover - interface
        raise NotImplementedError

    def stream(self, request: ChatRequest) -> Iterator[str]:
        """Text deltas. Engines without native streaming yield the whole text once."""
        yield self.generate(request).text

    def generate_many(self, requests: Iterable[ChatRequest], concurrency: int | None = None,
                      on_done: Callable[[int, Completion], None] | None = None) -> Iterator[tuple[int, Completion]]:
        """Yield ``(index, completion)`` in completion order, keeping ``concurrency`` requests in flight.

        Requests are pulled lazily, so a huge iterable costs no memory. A request that raises becomes a
        Completion with ``finish_reason="error"``: one bad request never sinks a batch.
        """
        limit = max(1, concurrency or self.max_concurrency)
        it = iter(enumerate(requests))
        with ThreadPoolExecutor(max_workers=limit, thread_name_prefix=f"{self.name}-gen") as pool:
            pending: dict[Future, int] = {}

            def submit_next() -> bool:
                try:
                    i, req = next(it)
                except StopIteration:
                    return False
                pending[pool.submit(self._safe_generate, req)] = i
                return True

            for _ in range(limit):
                if not submit_next():
                    break
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    comp = fut.result()
                    if on_done:
                        on_done(i, comp)
                    yield i, comp
                    submit_next()

    def choice_logprobs(self, request: ChatRequest, choices: Sequence[str]) -> ChoiceLogprobs:
        """Log-probability of each choice as the reply's first token (one-token verdicts).

        Engines that expose token probabilities (llama.cpp, transformers, OpenAI-compatible servers
        that return ``logprobs``) override this; the rest say so plainly.
        """
        raise EngineError(f"the {self.name} engine gives no token probabilities: use text verdicts")

    def _safe_generate(self, request: ChatRequest) -> Completion:
        try:
            return self.generate(request)
        except Exception as exc:  # noqa: BLE001 - turned into a visible error record, never dropped
            return Completion(text="", finish_reason="error", error=f"{type(exc).__name__}: {exc}",
                              model=self.model_id)

    def close(self) -> None:
        pass

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class UsageMeter:
    """Thread-safe running totals of requests and tokens (and money, for priced remote models)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.cached = 0
        self.errors = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.retries = 0
        self.cost_usd = 0.0

    def add(self, comp: Completion, cost: float = 0.0) -> None:
        with self._lock:
            self.requests += 1
            if comp.cached:
                self.cached += 1
                return
            if comp.error:
                self.errors += 1
            self.prompt_tokens += comp.prompt_tokens
            self.completion_tokens += comp.completion_tokens
            self.cost_usd += cost

    def add_retry(self) -> None:
        with self._lock:
            self.retries += 1

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return {
                "requests": self.requests, "cached": self.cached, "errors": self.errors,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "retries": self.retries, "cost_usd": round(self.cost_usd, 6),
            }
