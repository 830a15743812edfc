"""Majority vote over sampled answers; the winner's vote share is the confidence.

The share is taken over *all* K samples, including those with no extractable answer: a question where
only 2 of 8 samples produced a number, both "12", is not a confident 100%, it is 25%. Ties go to the
answer that appeared first (lowest sample index), which keeps the vote deterministic and replayable.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Vote:
    answer: str | None  # the majority answer; None when no sample had an answer
    count: int  # votes for it
    total: int  # samples drawn (K)
    valid: int  # samples with an extractable answer
    counts: dict[str, int] = field(default_factory=dict)  # every answer's votes, most common first

    @property
    def share(self) -> float:
        return self.count / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["share"] = round(self.share, 4)
        return d


def majority_vote(answers: Sequence[str | None]) -> Vote:
    """Vote over extracted answers (None = no answer). Deterministic ties: first seen wins."""
    counter: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    for i, a in enumerate(answers):
        if a is None:
            continue
        counter[a] += 1
        first_seen.setdefault(a, i)
    ordered = sorted(counter.items(), key=lambda kv: (-kv[1], first_seen[kv[0]]))
    if not ordered:
        return Vote(None, 0, len(answers), 0, {})
    best, count = ordered[0]
    return Vote(best, count, len(answers), sum(counter.values()), dict(ordered))


def vote_curve(answers: Sequence[str | None], gold: str | None, match) -> list[bool]:
    """Correctness of the majority over the first k samples, for k = 1..K (accuracy-vs-K plots)."""
    return [match(majority_vote(answers[:k]).answer, gold) for k in range(1, len(answers) + 1)]
