"""Turn a grader's free-text reply into a 1–10 score, and ask again when it forgot to give one.

Small teachers rarely follow the output format exactly: they write "Score: 8/10", "**Rating:** 7",
"[[6]]", "I would give it a 9 out of 10", or a bare "8". ``parse_score`` accepts those and refuses
anything ambiguous (a number outside 1–10, no number at all): a wrong score is worse than none,
because it silently turns into a wrong preference pair.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field

from ownchat.engines.base import ChatRequest, Completion, Engine, Message, SamplingParams, UsageMeter
from ownchat.feedback.prompts import retry_messages, scoring_messages

_NUM = r"(\d{1,2}(?:\.\d+)?)"
# Ordered by how explicit they are; within a pattern the *last* match wins (graders often restate
# the scale, e.g. "on a scale of 1 to 10 ... Score: 7").
_PATTERNS = [
    re.compile(r"\bscore\s*[:=]\s*\**\s*\[{0,2}\s*" + _NUM + r"(?:\s*/\s*10)?", re.I),
    re.compile(r"\brating\s*[:=]\s*\**\s*\[{0,2}\s*" + _NUM + r"(?:\s*/\s*10)?", re.I),
    re.compile(r"\[\[\s*" + _NUM + r"\s*\]\]"),
    re.compile(_NUM + r"\s*(?:/|out of)\s*10\b", re.I),
]
_BARE = re.compile(r"^\W*" + _NUM + r"\W*$")


def parse_score(text: str, low: float = 1, high: float = 10) -> float | None:
    """The score in ``text``, or None when there is none (or it lies outside ``low..high``)."""
    if not text:
        return None
    text = text.replace("**", "")
    for pat in _PATTERNS:
        found = pat.findall(text)
        if found:
            value = float(found[-1])
            return value if low <= value <= high else None
    m = _BARE.match(text.strip())
    if m:
        value = float(m.group(1))
        return value if low <= value <= high else None
    return None


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

    Greedy decoding keeps scores reproducible and cacheable. A retry first asks for just the score
    line after showing the grader its own reply; that fixes most format slips without paying for a
    second judgement. Items still without a score come back with ``score=None``. Callers drive it
    (``score_answers`` in batches, ``collect_feedback`` on a rolling queue).
    """
    params = SamplingParams(temperature=0.0, max_tokens=max_tokens)
    short = SamplingParams(temperature=0.0, max_tokens=16)
    convs = [scoring_messages(it.prompt, it.answer, it.reference) for it in items]
    results = [Scored(None, "", 0) for _ in items]
    todo = list(range(len(items)))
    for attempt in range(retries + 1):
        if not todo:
            break
        # a follow-up turn only needs the score line; a request that errored is simply sent again
        comps = yield [ChatRequest.chat(convs[i], params if len(convs[i]) <= 2 else short) for i in todo]
        failed: list[int] = []
        for i, comp in zip(todo, comps, strict=True):
            res = results[i]
            res.attempts = attempt + 1
            if comp.error:
                res.errors.append(comp.error)
                failed.append(i)
                continue
            res.reply = comp.text
            res.score = parse_score(comp.text)
            if res.score is None:
                failed.append(i)
                # the follow-up turn shows the grader what it wrote and asks for the score line only
                convs[i] = retry_messages(convs[i][:2], comp.text)
        todo = sorted(failed)
    return results


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
