"""The one way ownchat asks a model for a verdict: judge verdicts, judge grades and feedback scores.

Attempt 0 is greedy. A reply without a readable verdict gets a follow-up turn: the judge sees its
own reply and is asked for the verdict line only (a few tokens, greedy), which fixes most format slips
without paying for a second judgement and keeps every attempt replayable from the response cache. A
request that errored is sent again unchanged. After ``retries`` failed attempts the call ends with
``verdict=None`` and every raw reply kept, to be counted and shown, never guessed.

``VerdictCall`` holds one call's state; ``run_jobs`` drives many in batches (``judge compare``,
``judge grade``, ``judge validate``); ``feedback.collect`` drives them inside its rolling queue.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ownchat.engines.base import ChatRequest, Completion, Engine, Message, SamplingParams, UsageMeter

FOLLOWUP_TOKENS = 16  # a follow-up asks for one short line


@dataclass
class JudgeJob:
    key: Any
    messages: list[Message]
    #: the reply format asked for when the first reply had none (e.g. "[[A]] or [[B]]")
    followup: str = "the verdict line in the format asked for"


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
    concurrency: int | None = None

    def params(self, attempt: int = 0) -> SamplingParams:
        return SamplingParams(temperature=0.0, max_tokens=self.max_tokens if attempt == 0 else FOLLOWUP_TOKENS)


class VerdictCall:
    """One verdict, over as many turns as it takes: ``request()``, then ``receive(completion)``."""

    def __init__(self, job: JudgeJob, parse: Callable[[str], Any], settings: JudgeSettings) -> None:
        self.job, self.parse, self.settings = job, parse, settings
        self.conv: list[Message] = list(job.messages)
        self.attempts: list[dict[str, Any]] = []
        self.verdict: Any = None
        self.text = ""
        self.errors: list[str] = []

    @property
    def done(self) -> bool:
        return self.verdict is not None or len(self.attempts) > self.settings.retries

    def request(self) -> ChatRequest:
        followup = len(self.conv) > len(self.job.messages)
        return ChatRequest.chat(self.conv, self.settings.params(1 if followup else 0))

    def receive(self, comp: Completion) -> bool:
        """Record one completion; True when the call is finished (verdict read, or out of attempts)."""
        followup = len(self.conv) > len(self.job.messages)
        self.attempts.append({"attempt": len(self.attempts), "followup": followup, "text": comp.text,
                              "error": comp.error, "cached": comp.cached, "prompt_tokens": comp.prompt_tokens,
                              "completion_tokens": comp.completion_tokens})
        if comp.error:  # sent again unchanged
            self.errors.append(comp.error)
            return self.done
        self.text = comp.text
        self.verdict = self.parse(comp.text)
        if self.verdict is None:
            self.conv = [*self.job.messages, {"role": "assistant", "content": comp.text},
                         {"role": "user", "content": f"Your reply did not end with a verdict in the required "
                                                     f"format. Reply with only {self.job.followup}."}]
        return self.done

    def outcome(self) -> JudgeOutcome:
        return JudgeOutcome(self.job.key, self.verdict, self.text, self.attempts)


def run_jobs(engine: Engine, jobs: Sequence[JudgeJob], parse: Callable[[str], Any], settings: JudgeSettings,
             meter: UsageMeter | None = None) -> Iterator[JudgeOutcome]:
    """Yield one outcome per job, in completion order (resolved jobs first, follow-ups later)."""
    pending = [VerdictCall(j, parse, settings) for j in jobs]
    while pending:
        still: list[VerdictCall] = []
        for i, comp in engine.generate_many([c.request() for c in pending], concurrency=settings.concurrency):
            call = pending[i]
            if meter is not None:
                meter.add(comp)
                if call.attempts:
                    meter.add_retry()
            if call.receive(comp):
                yield call.outcome()
            else:
                still.append(call)
        pending = still
