"""Two methods scored on the *same* questions: the gain with a CI, and McNemar's exact test.

Per-method Wilson intervals answer "how accurate is this method"; they are the wrong tool for "is B
better than A" when both ran on one question set, because the two scores are correlated (easy
questions are easy for both). The paired view looks only at the questions where the methods
disagree: the gain's CI comes from resampling questions, and McNemar's exact test asks whether
"only B right" outnumbers "only A right" by more than chance.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import comb
from typing import Any

from ownchat.judge.stats import bootstrap_ci


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact p-value: the discordant questions as fair coin flips between A and B."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(comb(n, k) for k in range(min(only_a, only_b) + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_gain(before: Sequence[bool], after: Sequence[bool], *, n_boot: int = 2000,
                seed: int = 0) -> dict[str, Any]:
    """``after`` minus ``before`` accuracy, per question pair, with a 95% bootstrap CI."""
    if len(before) != len(after):
        raise ValueError(f"paired results need the same questions ({len(before)} vs {len(after)})")
    diffs = [int(b) - int(a) for a, b in zip(before, after, strict=True)]
    only_after = sum(d > 0 for d in diffs)
    only_before = sum(d < 0 for d in diffs)
    lo, hi = bootstrap_ci(diffs, n_boot=n_boot, seed=seed) if diffs else (0.0, 0.0)
    return {"n": len(diffs), "gain": round(sum(diffs) / max(1, len(diffs)), 4), "ci": [round(lo, 4), round(hi, 4)],
            "only_after": only_after, "only_before": only_before,
            "mcnemar_p": round(mcnemar_exact(only_before, only_after), 4)}


def describe(p: dict[str, Any], before: str, after: str) -> str:
    """One report line, e.g. 'self-consistency − greedy CoT: +13.0 points, 95% CI [+3.0, +23.0] ...'."""
    lo, hi = p["ci"]
    return (f"{after} − {before}, paired over the same {p['n']} questions: {p['gain'] * 100:+.1f} points, "
            f"95% CI [{lo * 100:+.1f}, {hi * 100:+.1f}] (bootstrap over questions); McNemar exact "
            f"p = {p['mcnemar_p']:.3g} ({p['only_after']} right only with {after}, {p['only_before']} only "
            f"with {before})")
