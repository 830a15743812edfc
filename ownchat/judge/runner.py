"""Running judge prompts in bulk, with retries for verdicts that cannot be parsed.

Attempt 0 is greedy. A reply without a readable verdict is asked again as a new *sample* (sample
index k, temperature ``retry_temperature``): the response cache keys on the sample index, so a retry
is a genuinely different draw, and a re-run replays every attempt for free. After ``retries`` failed
attempts the job comes back with ``verdict=None`` and all its raw replies, to be counted and shown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ownchat.engines.base import ChatRequest, Engine, Message, SamplingParams, UsageMeter


@dataclass
class JudgeJob:
    key: Any
    messages: list[Message]


@dataclass
class JudgeOutcome:
    key: Any
    verdict: Any  # parsed value, or None when every attempt failed
    text: str  # the reply the verdict came from (the last attempt's when it failed)
    attempts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.verdict is not None


@dataclass(frozen=True)
class JudgeSettings:
    max_tokens: int = 256
    retries: int = 2
    retry_temperature: float = 0.7
    concurrency: int | None = None

    def params(self, attempt: int) -> SamplingParams:
        return SamplingParams(temperature=0.0 if attempt == 0 else self.retry_temperature,
                              max_tokens=self.max_tokens)


def run_jobs(engine: Engine, jobs: Sequence[JudgeJob], parse: Callable[[str], Any], settings: JudgeSettings,
             meter: UsageMeter | None = None) -> Iterator[JudgeOutcome]:
    """Yield one outcome per job, in completion order (resolved jobs first, retried ones later)."""
    history: dict[int, list[dict[str, Any]]] = {i: [] for i in range(len(jobs))}
    pending = list(range(len(jobs)))
    for attempt in range(settings.retries + 1):
        if not pending:
            return
        params = settings.params(attempt)
        reqs = [ChatRequest.chat(jobs[j].messages, params, sample_index=attempt) for j in pending]
        retry: list[int] = []
        for i, comp in engine.generate_many(reqs, concurrency=settings.concurrency):
            j = pending[i]
            if meter is not None:
                meter.add(comp)
                if attempt:
                    meter.add_retry()
            verdict = None if comp.error else parse(comp.text)
            history[j].append({"attempt": attempt, "temperature": params.temperature, "text": comp.text,
                               "error": comp.error, "cached": comp.cached,
                               "prompt_tokens": comp.prompt_tokens, "completion_tokens": comp.completion_tokens})
            if verdict is not None:
                yield JudgeOutcome(jobs[j].key, verdict, comp.text, history[j])
            elif attempt < settings.retries:
                retry.append(j)
            else:
                yield JudgeOutcome(jobs[j].key, None, comp.text, history[j])
        pending = retry
