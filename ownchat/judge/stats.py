"""Statistics over verdicts: win rates with bootstrap CIs, judge biases, agreement, Bradley–Terry/Elo.

Conventions: an outcome for model A is 1 (A wins), 0.5 (tie) or 0 (B wins); failed verdicts are
counted separately and never enter a rate. Bootstraps are *clustered by question*: the turns of one
question are not independent, so we resample whole questions. Every bootstrap takes a seed, so a
report rebuilt from the same files prints the same intervals.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from ownchat.stats import bootstrap_ci, group_index

Record = dict[str, Any]


def outcome_a(rec: Record) -> float | None:
    return {"model_a": 1.0, "model_b": 0.0, "tie": 0.5}.get(rec.get("winner"))  # type: ignore[arg-type]


def rate_with_ci(outcomes: Sequence[float], groups: Sequence[Any], **kw: Any) -> dict[str, Any]:
    if not outcomes:
        return {"n": 0, "win_rate": None, "ci95": [None, None]}
    lo, hi = bootstrap_ci(outcomes, groups, **kw)
    return {"n": len(outcomes), "win_rate": float(np.mean(outcomes)), "ci95": [lo, hi]}


# -- logistic regression for the length-controlled win rate -----------------------------------------
def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, iters: int = 50) -> tuple[float, float]:
    """Intercept and slope of P(A wins) = sigmoid(b0 + b1 x), y in [0, 1] (ties are 0.5: soft labels).

    Newton's method on the cross-entropy; a small ridge penalty keeps the fit finite when one model
    wins everything (perfect separation), which is common with few questions.
    """
    b = np.zeros(2)
    X = np.column_stack([np.ones_like(x), x])
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(X @ b)))
        grad = X.T @ (p - y) + l2 * b
        hess = (X * (p * (1 - p))[:, None]).T @ X + l2 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        b -= step
        if np.abs(step).max() < 1e-8:
            break
    return float(b[0]), float(b[1])


def length_stats(recs: Sequence[Record], *, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """How often the longer reply wins, and the win rate the regression implies at equal length.

    x = log((len_a + 1) / (len_b + 1)) (a ratio, so 100 vs 200 characters weighs like 1000 vs 2000);
    the intercept's sigmoid is A's win rate when both replies are equally long.
    """
    ok = [r for r in recs if outcome_a(r) is not None and "len_a" in r and "len_b" in r]
    decisive = [r for r in ok if r["winner"] != "tie" and r["len_a"] != r["len_b"]]
    longer = [float((r["winner"] == "model_a") == (r["len_a"] > r["len_b"])) for r in decisive]
    out: dict[str, Any] = {"longer_wins_rate": float(np.mean(longer)) if longer else None,
                           "n_decisive": len(decisive),
                           "mean_len_a": float(np.mean([r["len_a"] for r in ok])) if ok else None,
                           "mean_len_b": float(np.mean([r["len_b"] for r in ok])) if ok else None,
                           "lc_win_rate_a": None, "lc_ci95_a": [None, None], "length_coef": None,
                           "lc_extrapolated": None}
    if len(ok) < 5 or len({r["len_a"] - r["len_b"] for r in ok}) < 2:
        return out  # too little variation in length to regress on
    x = np.array([math.log((r["len_a"] + 1) / (r["len_b"] + 1)) for r in ok])
    y = np.array([outcome_a(r) for r in ok], dtype=float)
    b0, b1 = fit_logistic(x, y)
    qids = group_index([r["question_id"] for r in ok])
    rng = np.random.default_rng(seed)
    n_groups = int(qids.max()) + 1
    members = [np.flatnonzero(qids == k) for k in range(n_groups)]
    boots = []
    for _ in range(n_boot):
        pick = np.concatenate([members[k] for k in rng.integers(0, n_groups, n_groups)])
        boots.append(1 / (1 + math.exp(-fit_logistic(x[pick], y[pick])[0])))
    lo, hi = np.quantile(boots, [0.025, 0.975])
    # if one model is always longer, "equal length" lies outside the data: the rate is an extrapolation
    out.update(lc_win_rate_a=1 / (1 + math.exp(-b0)), lc_ci95_a=[float(lo), float(hi)], length_coef=b1,
               lc_extrapolated=not (x.min() <= 0 <= x.max()))
    return out


def position_stats(recs: Sequence[Record]) -> dict[str, Any]:
    """Position bias: when the two orders disagree, how often the judge picked the reply shown first.

    0.5 means disagreements are noise; near 1 means the judge prefers whatever comes first.
    """
    both = [r for r in recs if r.get("g1") is not None and r.get("g2") is not None]
    disagree = [r for r in both if not r.get("consistent")]
    labels_dis = [j["label"] for r in disagree for j in r.get("judgments", []) if j.get("label") in ("A", "B")]
    labels_all = [j["label"] for r in both for j in r.get("judgments", []) if j.get("label") in ("A", "B")]
    return {
        "inconsistency": len(disagree) / len(both) if both else None,
        "n_inconsistent": len(disagree),
        "first_wins_when_inconsistent": (labels_dis.count("A") / len(labels_dis)) if labels_dis else None,
        "first_wins_overall": (labels_all.count("A") / len(labels_all)) if labels_all else None,
    }


def pair_summary(recs: Sequence[Record], *, n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Everything the report says about one model pair (A = ``model_a`` of the records)."""
    ok = [r for r in recs if outcome_a(r) is not None]
    outcomes = [outcome_a(r) for r in ok]
    qids = [r["question_id"] for r in ok]
    wins_a = sum(r["winner"] == "model_a" for r in ok)
    wins_b = sum(r["winner"] == "model_b" for r in ok)
    rate = rate_with_ci(outcomes, qids, n_boot=n_boot, seed=seed)
    pos = position_stats(recs)
    cats: dict[str, list[Record]] = defaultdict(list)
    for r in ok:
        cats[r.get("category", "general")].append(r)
    by_cat = {c: {**rate_with_ci([outcome_a(r) for r in rs], [r["question_id"] for r in rs], n_boot=n_boot,
                                 seed=seed),
                  "wins_a": sum(r["winner"] == "model_a" for r in rs),
                  "wins_b": sum(r["winner"] == "model_b" for r in rs),
                  "ties": sum(r["winner"] == "tie" for r in rs)}
              for c, rs in sorted(cats.items())}
    return {
        "model_a": recs[0]["model_a"], "model_b": recs[0]["model_b"], "n": len(ok),
        "wins_a": wins_a, "wins_b": wins_b, "ties": len(ok) - wins_a - wins_b,
        "failures": len(recs) - len(ok),
        "win_rate_a": rate["win_rate"], "ci95_a": rate["ci95"],
        "inconsistency": pos["inconsistency"], "position": pos,
        "length": length_stats(recs, n_boot=min(n_boot, 1000), seed=seed),
        "by_category": by_cat,
    }


# -- Bradley–Terry / Elo ------------------------------------------------------------------------------
def bradley_terry(matches: Iterable[tuple[str, str, float]], *, prior: float = 0.1,
                  iters: int = 500) -> dict[str, float]:
    """Strengths from ``(model_i, model_j, score_i)`` (1 win, 0.5 tie, 0 loss), fitted by the MM
    algorithm. ``prior`` adds that many pseudo-wins each way per pair so a model that never loses
    still gets a finite strength. Returns Elo-scale ratings centred on 1000."""
    matches = list(matches)
    names = sorted({m for a, b, _ in matches for m in (a, b)})
    k = {n: i for i, n in enumerate(names)}
    W = np.zeros((len(names), len(names)))
    for a, b, s in matches:
        W[k[a], k[b]] += s
        W[k[b], k[a]] += 1 - s
    N = W + W.T
    W = W + prior * (N > 0)
    N = W + W.T
    p = np.ones(len(names))
    for _ in range(iters):
        denom = (N / (p[:, None] + p[None, :])).sum(axis=1)
        new = W.sum(axis=1) / np.where(denom > 0, denom, 1)
        new /= math.exp(np.log(new).mean())
        if np.abs(new - p).max() < 1e-10:
            p = new
            break
        p = new
    return {n: 1000 + 400 * math.log10(p[k[n]]) for n in names}


def elo_with_ci(recs: Sequence[Record], *, n_boot: int = 500, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Ratings with percentile CIs from a question-level bootstrap over all pairs' verdicts."""
    ok = [r for r in recs if outcome_a(r) is not None]
    if not ok:
        return {}
    matches = [(r["model_a"], r["model_b"], outcome_a(r)) for r in ok]
    point = bradley_terry(matches)
    qids = group_index([r["question_id"] for r in ok])
    members = [np.flatnonzero(qids == g) for g in range(int(qids.max()) + 1)]
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {m: [] for m in point}
    for _ in range(n_boot):
        pick = np.concatenate([members[g] for g in rng.integers(0, len(members), len(members))])
        fit = bradley_terry(matches[i] for i in pick)
        for m in point:
            if m in fit:
                samples[m].append(fit[m])
    return {m: {"elo": point[m], "ci95": [float(np.quantile(s, 0.025)), float(np.quantile(s, 0.975))]
                if s else [None, None]} for m, s in sorted(samples.items(), key=lambda kv: -point[kv[0]])}


# -- single grades ------------------------------------------------------------------------------------
def grade_summary(grades: Sequence[Record], *, n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    by_model: dict[str, list[Record]] = defaultdict(list)
    for g in grades:
        by_model[g["model_id"]].append(g)
    out = {}
    for m, gs in sorted(by_model.items()):
        ok = [g for g in gs if g.get("score") is not None]
        scores = [float(g["score"]) for g in ok]
        ci = bootstrap_ci(scores, [g["question_id"] for g in ok], n_boot=n_boot, seed=seed) if ok else (None, None)
        out[m] = {"n": len(ok), "failures": len(gs) - len(ok), "mean": float(np.mean(scores)) if ok else None,
                  "ci95": list(ci), "scores": scores}
    return out


def agreement(recs: Sequence[Record], grades: Sequence[Record],
              pref: Callable[[float, float], str] | None = None) -> dict[str, Any]:
    """Does the single-grade preference (higher score wins, equal is a tie) match the pairwise verdict?"""
    score = {(g["model_id"], g["question_id"], g["turn"]): g["score"] for g in grades if g.get("score") is not None}
    pref = pref or (lambda a, b: "model_a" if a > b else "model_b" if b > a else "tie")
    rows = []
    for r in recs:
        if outcome_a(r) is None:
            continue
        sa = score.get((r["model_a"], r["question_id"], r["turn"]))
        sb = score.get((r["model_b"], r["question_id"], r["turn"]))
        if sa is not None and sb is not None:
            rows.append((pref(sa, sb), r["winner"]))
    decisive = [(s, p) for s, p in rows if s != "tie" and p != "tie"]
    return {
        "n": len(rows),
        "agreement": sum(s == p for s, p in rows) / len(rows) if rows else None,
        "n_decisive": len(decisive),
        "decisive_agreement": sum(s == p for s, p in decisive) / len(decisive) if decisive else None,
    }
