"""Pairwise verdicts from token probabilities, with balanced position calibration.

The judge reads the two replies in both orders and answers one letter; we keep the log-odds
``l = log P("A") − log P("B")`` of each order instead of the letter it would print. If the judge
prefers whatever is shown first by a constant ``c`` nats, then with model A shown first
``l_ab = d + c`` and with model B shown first ``l_ba = −d + c``, so

    d = (l_ab − l_ba) / 2      (evidence for model A, the position preference cancelled)
    c = (l_ab + l_ba) / 2      (the position preference itself, reported)

(balanced position calibration, after Wang et al., 2023, "Large Language Models are not Fair
Evaluators"). A verdict is a win for A when ``d > margin``, for B when ``d < −margin``, else a tie.
Text verdicts stay for engines that give no probabilities (most remote APIs besides OpenAI's).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from ownchat.engines.base import ChatRequest, Completion, Engine, Message, SamplingParams, UsageMeter
from ownchat.engines.logprobs import ChoiceLogprobs

LETTERS = ("A", "B")
#: |d| below this many nats is a tie: the two orders' evidence is too weak to call either way
TIE_MARGIN = 0.1


@dataclass(frozen=True)
class ProbJob:
    key: Any
    messages: list[Message]


@dataclass(frozen=True)
class ProbOutcome:
    key: Any
    result: ChoiceLogprobs | None
    error: str | None = None

    @property
    def log_odds(self) -> float | None:
        """log P("A") − log P("B") for this order; None when the request failed (or was not a pair)."""
        if self.result is None or "A" not in self.result.logprobs:
            return None
        return self.result.logprobs["A"] - self.result.logprobs["B"]

    @property
    def label(self) -> str | None:
        if self.result is None or "A" not in self.result.logprobs:
            return None
        lo = self.log_odds
        return None if lo is None else ("A" if lo > 0 else "B" if lo < 0 else "tie")

    def to_dict(self) -> dict[str, Any]:
        return {"log_odds": self.log_odds, "label": self.label, "error": self.error,
                **(self.result.to_dict() if self.result else {})}


def run_prob_jobs(engine: Engine, jobs: Sequence[ProbJob], *, concurrency: int | None = None,
                  meter: UsageMeter | None = None, choices: Sequence[str] = LETTERS) -> Iterator[ProbOutcome]:
    """First-token probabilities of ``choices`` for every job, ``concurrency`` requests in flight."""
    params = SamplingParams(temperature=0.0, max_tokens=1)
    limit = max(1, concurrency or engine.max_concurrency)

    def one(job: ProbJob) -> ProbOutcome:
        try:
            return ProbOutcome(job.key, engine.choice_logprobs(ChatRequest.chat(job.messages, params), choices))
        except Exception as exc:  # noqa: BLE001 - a failed verdict is counted and shown, never dropped
            return ProbOutcome(job.key, None, f"{type(exc).__name__}: {exc}")

    it = iter(jobs)
    with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="judge-prob") as pool:
        pending: set[Future] = set()
        for job in it:
            pending.add(pool.submit(one, job))
            if len(pending) >= limit:
                break
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                out = fut.result()
                if meter is not None:
                    meter.add(Completion("", "error" if out.error else "stop", error=out.error))
                yield out
                nxt = next(it, None)
                if nxt is not None:
                    pending.add(pool.submit(one, nxt))


DIGITS = tuple(str(i) for i in range(1, 10))


def expected_score(result: ChoiceLogprobs | None) -> float | None:
    """A 1–9 rating read as the expectation over the digit tokens, put on the 1–10 scale of text grades."""
    if result is None:
        return None
    p = result.normalised()
    s9 = sum(int(d) * p[d] for d in DIGITS)
    return round(1 + (s9 - 1) * 9 / 8, 4)


def calibrated(l_ab: float | None, l_ba: float | None, margin: float = TIE_MARGIN) -> dict[str, Any]:
    """Combine both orders' log-odds into a verdict for model A (shown first in order "ab")."""
    if l_ab is None or l_ba is None:
        return {"winner": None, "d": None, "bias": None, "p_a": None, "consistent": False}
    d, c = (l_ab - l_ba) / 2, (l_ab + l_ba) / 2
    winner = "model_a" if d > margin else "model_b" if d < -margin else "tie"
    # position-consistent: each order's own letter names the same model
    consistent = (l_ab > 0) == (l_ba < 0) and l_ab != 0 and l_ba != 0
    return {"winner": winner, "d": round(d, 4), "bias": round(c, 4), "p_a": round(1 / (1 + math.exp(-d)), 4),
            "consistent": consistent}
