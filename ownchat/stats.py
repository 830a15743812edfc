"""The project's one statistics module: intervals and paired comparisons for every measure.

Judge win rates, GSM8K and IFEval accuracies, teacher NLL: each claim carries a 95% interval, and
"B is better than A" is always answered *paired* on the same items. Two models scored on one item
set are correlated (easy items are easy for both), so per-model intervals are the wrong tool for the
difference; the paired view resamples items and, for pass/fail outcomes, adds McNemar's exact test.
Every bootstrap takes a seed, so a report rebuilt from the same files prints the same intervals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from math import comb
from typing import Any

import numpy as np


def wilson(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval: honest at small n and near 0% or 100%, unlike the normal one."""
    if n == 0:
        return (0.0, 1.0)
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def normal_ci(p: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wald interval, used by the tests as an independent check of the bootstrap."""
    z = {0.95: 1.959964, 0.9: 1.644854, 0.99: 2.575829}[level]
    half = z * math.sqrt(max(p * (1 - p), 0.0) / max(n, 1))
    return (p - half, p + half)


def group_index(groups: Sequence[Any]) -> np.ndarray:
    """Dense integer ids for arbitrary group labels, in order of first appearance."""
    ids: dict[Any, int] = {}
    return np.array([ids.setdefault(g, len(ids)) for g in groups], dtype=int)


def bootstrap_ci(values: Sequence[float], groups: Sequence[Any] | None = None, *, n_boot: int = 2000,
                 seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile CI of the mean; with ``groups``, whole groups are resampled (cluster bootstrap)."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return (math.nan, math.nan)
    g = group_index(groups) if groups is not None else np.arange(v.size)
    n_groups = int(g.max()) + 1
    sums = np.bincount(g, weights=v, minlength=n_groups)
    counts = np.bincount(g, minlength=n_groups).astype(float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_groups, size=(n_boot, n_groups))
    means = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return (float(lo), float(hi))


def proportion(correct: int, n: int) -> dict[str, Any]:
    """``{"correct", "n", "accuracy", "ci95"}`` with the Wilson interval (what reports print)."""
    lo, hi = wilson(correct, n)
    return {"correct": correct, "n": n, "accuracy": round(correct / n, 4) if n else None,
            "ci95": [round(lo, 4), round(hi, 4)]}


def bootstrap_stat(stat: Callable[[np.ndarray], float], n_items: int, *, n_boot: int = 2000, seed: int = 0,
                   level: float = 0.95) -> tuple[float, float]:
    """Percentile CI of any statistic of the items, resampling item indices (for ratios and averages
    of several measures over the same items, where a plain mean's bootstrap does not apply)."""
    if n_items == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    values = [stat(rng.integers(0, n_items, n_items)) for _ in range(n_boot)]
    alpha = (1 - level) / 2
    lo, hi = np.quantile(values, [alpha, 1 - alpha])
    return (float(lo), float(hi))


def mean_with_ci(values: Sequence[float], groups: Sequence[Any] | None = None, **kw: Any) -> dict[str, Any]:
    """``{"n", "mean", "ci95"}`` for a list of per-item values (bootstrap over items or groups)."""
    if len(values) == 0:
        return {"n": 0, "mean": None, "ci95": [None, None]}
    lo, hi = bootstrap_ci(values, groups, **kw)
    return {"n": len(values), "mean": float(np.mean(values)), "ci95": [lo, hi]}


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact p-value: the discordant items as fair coin flips between A and B."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(comb(n, k) for k in range(min(only_a, only_b) + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_gain(before: Sequence[float], after: Sequence[float], *, groups: Sequence[Any] | None = None,
                n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """``after`` minus ``before`` per item, its mean and a 95% bootstrap CI (clustered by ``groups``).

    For pass/fail items (bools or 0/1) the result also counts the discordant items and gives
    McNemar's exact p; for scores (NLL, partial credit) ``mcnemar_p`` is None.
    """
    if len(before) != len(after):
        raise ValueError(f"paired results need the same items ({len(before)} vs {len(after)})")
    diffs = [float(b) - float(a) for a, b in zip(before, after, strict=True)]
    lo, hi = bootstrap_ci(diffs, groups, n_boot=n_boot, seed=seed) if diffs else (0.0, 0.0)
    binary = all(float(x) in (0.0, 1.0) for x in (*before, *after))
    only_after = sum(d > 0 for d in diffs)
    only_before = sum(d < 0 for d in diffs)
    return {"n": len(diffs), "gain": round(sum(diffs) / max(1, len(diffs)), 4),
            "ci": [round(lo, 4), round(hi, 4)], "only_after": only_after, "only_before": only_before,
            "mcnemar_p": round(mcnemar_exact(only_before, only_after), 4) if binary else None}


def clear_of_zero(p: dict[str, Any]) -> int:
    """+1 when the paired CI lies above zero, -1 below, 0 when it straddles zero."""
    lo, hi = p["ci"]
    return 1 if lo > 0 else -1 if hi < 0 else 0


def describe_paired(p: dict[str, Any], before: str, after: str, *, unit: str = "points", scale: float = 100,
                    items: str = "questions") -> str:
    """One report line, e.g. 'self-consistency − greedy CoT: +13.0 points, 95% CI [+3.0, +23.0] ...'."""
    lo, hi = p["ci"]
    text = (f"{after} − {before}, paired over the same {p['n']} {items}: {p['gain'] * scale:+.1f} {unit}, "
            f"95% CI [{lo * scale:+.1f}, {hi * scale:+.1f}] (bootstrap over {items})")
    if p.get("mcnemar_p") is not None:
        text += (f"; McNemar exact p = {p['mcnemar_p']:.3g} ({p['only_after']} right only with {after}, "
                 f"{p['only_before']} only with {before})")
    return text
