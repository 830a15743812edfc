"""Teacher scores for student answers: the scoring rubric through the judge's one verdict path.

The reply is read by ``ownchat.judge.parse.parse_rating`` ("Score: 8/10", "**Rating:** 7", "[[6]]",
"9 out of 10", a bare "8"; anything ambiguous or outside 1–10 is refused: a wrong score is worse than
none, because it silently turns into a wrong preference pair) and a reply without one gets the
follow-up turn of ``ownchat.judge.runner.VerdictCall``.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field

from ownchat.engines.base import ChatRequest, Completion, Engine, Message, UsageMeter
from ownchat.feedback.prompts import scoring_messages
from ownchat.judge.parse import parse_rating
from ownchat.judge.runner import JudgeJob, JudgeSettings, VerdictCall

SCORE_FOLLOWUP = "'Score: N', N an integer from 1 to 10"


@dataclass
class ScoreItem:
    prompt: list[Message]
    answer: str
    reference: str | None = None


@dataclass
class Scored:
    score: float | None
    reply: str  # the grader's last reply (kept for audit)
    attempts: int
    errors: list[str] = field(default_factory=list)


def score_steps(items: Sequence[ScoreItem], *, retries: int = 2,
                max_tokens: int = 160) -> Generator[list[ChatRequest], list[Completion], list[Scored]]:
    """The scoring conversation as steps: yields requests, receives their completions, returns scores.

    Greedy decoding keeps scores reproducible and cacheable. Callers drive it (``score_answers`` in
    batches, ``collect_feedback`` on a rolling queue).
    """
    settings = JudgeSettings(max_tokens=max_tokens, retries=retries)
    calls = [VerdictCall(JudgeJob(i, scoring_messages(it.prompt, it.answer, it.reference), SCORE_FOLLOWUP),
                         parse_rating, settings) for i, it in enumerate(items)]
    todo = list(calls)
    while todo:
        comps = yield [c.request() for c in todo]
        todo = [c for c, comp in zip(todo, comps, strict=True) if not c.receive(comp)]
    return [Scored(c.verdict, c.text, len(c.attempts), c.errors) for c in calls]


def score_answers(teacher: Engine, items: Sequence[ScoreItem], *, retries: int = 2, max_tokens: int = 160,
                  meter: UsageMeter | None = None, concurrency: int | None = None) -> list[Scored]:
    """Score every item with ``teacher``; unparseable replies get up to ``retries`` follow-up turns."""
    steps = score_steps(items, retries=retries, max_tokens=max_tokens)
    try:
        reqs = next(steps)
        while True:
            comps: list[Completion | None] = [None] * len(reqs)
            for j, comp in teacher.generate_many(reqs, concurrency=concurrency):
                if meter is not None:
                    meter.add(comp)
                comps[j] = comp
            reqs = steps.send(comps)  # type: ignore[arg-type]
    except StopIteration as stop:
        return stop.value
