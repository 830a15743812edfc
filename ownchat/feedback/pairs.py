"""Scored candidates -> (chosen, rejected) pairs.

Two policies:
- ``best-worst``: one pair per prompt, the top-scored answer against the bottom-scored one. Few
  pairs, but each carries the clearest signal the teacher gave.
- ``margin``: every pair whose scores differ by at least ``margin``. More pairs from the same
  samples (up to k(k-1)/2 per prompt), at the cost of correlated, noisier comparisons.

Candidates without a score are dropped; pairs closer than ``margin`` are ties and dropped; both are
counted so the user sees how much of the teacher's work turned into training signal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

PAIR_MODES = ("best-worst", "margin")


@dataclass
class Candidate:
    text: str
    score: float | None
    source: str = "student"  # "student" | "teacher"
    sample_index: int = 0
    finish_reason: str = "stop"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Pair:
    chosen: Candidate
    rejected: Candidate

    @property
    def gap(self) -> float:
        return float(self.chosen.score or 0) - float(self.rejected.score or 0)


def make_pairs(candidates: Sequence[Candidate], mode: str = "best-worst", margin: float = 1.0,
               counts: Counter | None = None) -> list[Pair]:
    """Pairs for one prompt. ``counts`` (if given) gains: candidates, unscored, empty, ties, pairs."""
    if mode not in PAIR_MODES:
        raise ValueError(f"unknown pair mode {mode!r}; choose one of {', '.join(PAIR_MODES)}")
    if margin <= 0:
        raise ValueError("margin must be > 0: a pair of equally scored answers teaches nothing")
    c = counts if counts is not None else Counter()
    c["candidates"] += len(candidates)
    usable: list[Candidate] = []
    seen: set[str] = set()
    for cand in candidates:
        if cand.score is None:
            c["unscored"] += 1
        elif not cand.text.strip():
            c["empty"] += 1
        elif cand.text.strip() in seen:
            c["duplicates"] += 1  # the same text twice would be paired with itself
        else:
            seen.add(cand.text.strip())
            usable.append(cand)
    # a stable order makes ties between equal scores break the same way on every run
    ranked = sorted(usable, key=lambda x: (-float(x.score or 0), x.source != "student", x.sample_index))
    pairs: list[Pair] = []
    if len(ranked) >= 2:
        if mode == "best-worst":
            best, worst = ranked[0], ranked[-1]
            if float(best.score or 0) - float(worst.score or 0) >= margin:
                pairs.append(Pair(best, worst))
        else:
            for i, hi in enumerate(ranked):
                for lo in ranked[i + 1:]:
                    if float(hi.score or 0) - float(lo.score or 0) >= margin:
                        pairs.append(Pair(hi, lo))
    if not pairs:
        # all answers scored within the margin (or fewer than two usable): nothing to learn here
        c["tie_prompts" if len(ranked) >= 2 else "short_prompts"] += 1
    c["pairs"] += len(pairs)
    return pairs
