"""Best-of-N: sample N answers, return the one a reward model likes best.

An ``Engine`` wrapper, so everything that takes an engine (generate, serve, judge, recipes) gets
reranking for free. It trades N times the decode cost for quality without touching the weights —
often a good deal for a small student and a cheap reward model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from ownchat.engines.base import ChatRequest, Completion, Engine, Message


class Scorer(Protocol):
    model_id: str

    def score(self, prompt: Sequence[Message], answers: Sequence[str]) -> list[float]: ...


class BestOfNEngine(Engine):
    """``generate`` draws ``n`` samples from ``inner`` and returns the highest-reward one.

    Greedy requests (temperature 0) would give N copies of one answer, so they are sampled at
    ``temperature`` instead; a request that already samples keeps its own temperature. Sample j of
    request sample k uses ``sample_index = k * n + j``: distinct seeds, and cache entries of its own.
    The chosen completion reports the tokens of *all* N samples (that is what was paid) and carries
    the rewards in ``extra["best_of"]``.
    """

    name = "bestof"

    def __init__(self, inner: Engine, reward_model: Scorer, n: int = 4, temperature: float = 0.8,
                 reproducible: bool = True) -> None:
        if n < 1:
            raise ValueError("n must be >= 1")
        self.inner = inner
        self.reproducible = reproducible  # False for a chat server: a repeated question gets fresh samples
        self.reward_model = reward_model
        self.n = n
        self.temperature = temperature
        self.model_id = f"{inner.model_id}+bestof{n}:{reward_model.model_id}"
        self.max_concurrency = max(1, inner.max_concurrency // n)
        self.license = getattr(inner, "license", None)
        self.model_name = getattr(inner, "model_name", inner.model_id)

    def __getattr__(self, item: str):  # engine extras (tokenizer, base_urls, ...) come from the sampler
        # raw_chat/raw_completion would let the server talk to llama.cpp directly and skip the reranking
        if item in ("inner", "raw_chat", "raw_completion"):
            raise AttributeError(item)
        return getattr(self.inner, item)

    def _samples(self, request: ChatRequest) -> list[ChatRequest]:
        params = request.params
        if params.temperature <= 0:
            params = replace(params, temperature=self.temperature)
        if params.seed is None and self.reproducible:
            params = replace(params, seed=0)  # reproducible samples (and cacheable ones)
        return [replace(request, params=params, sample_index=request.sample_index * self.n + j)
                for j in range(self.n)]

    def generate(self, request: ChatRequest) -> Completion:
        if self.n == 1:
            return self.inner.generate(request)
        comps: list[Completion | None] = [None] * self.n
        for j, comp in self.inner.generate_many(self._samples(request), concurrency=self.inner.max_concurrency):
            comps[j] = comp
        done = [c for c in comps if c is not None]
        ok = [c for c in done if c.ok and c.text.strip()]
        if not ok:
            return done[0] if done else Completion("", "error", error="no samples")
        prompt = list(request.messages) if request.messages is not None else \
            [{"role": "user", "content": request.prompt or ""}]
        scores = self.reward_model.score(prompt, [c.text for c in ok])
        best = max(range(len(ok)), key=lambda i: scores[i])
        chosen = ok[best]
        return Completion(
            text=chosen.text, finish_reason=chosen.finish_reason,
            prompt_tokens=sum(c.prompt_tokens for c in done),
            completion_tokens=sum(c.completion_tokens for c in done),
            cached=all(c.cached for c in done), model=self.model_id,
            extra={**chosen.extra, "best_of": {"n": self.n, "rewards": [round(s, 4) for s in scores],
                                               "chosen": best}},
        )

    def close(self) -> None:
        self.inner.close()


def check_best_of(n: int, reward_model: str | Path | None) -> None:
    """The flag pair's rule, checkable before any model loads."""
    if n > 1 and reward_model is None:
        from ownchat.errors import UserError

        raise UserError("--best-of needs --reward-model RUN (train one with `ownchat train rm`)")


def with_best_of(engine: Engine, reward_model: str | Path | None, n: int, log=print,
                 reproducible: bool = True) -> Engine:
    """What a ``--best-of N --reward-model RUN`` flag pair does: wrap ``engine``, or return it as is."""
    if n <= 1:
        return engine
    check_best_of(n, reward_model)
    from ownchat.train.rm import RewardModel

    return BestOfNEngine(engine, RewardModel(reward_model, log=log), n, reproducible=reproducible)
