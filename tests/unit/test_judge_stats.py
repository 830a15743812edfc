"""Statistics on constructed verdict tables with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ownchat import stats as core
from ownchat.judge import stats


def _recs(model_a: str, model_b: str, wins_a: int, ties: int, wins_b: int, start: int = 0) -> list[dict]:
    out, q = [], start
    for winner, n in (("model_a", wins_a), ("tie", ties), ("model_b", wins_b)):
        for _ in range(n):
            out.append({"question_id": q, "turn": 1, "model_a": model_a, "model_b": model_b, "winner": winner,
                        "category": "math" if q % 2 else "writing", "g1": winner, "g2": winner, "consistent": True,
                        "len_a": 100, "len_b": 100, "judgments": []})
            q += 1
    return out


def test_bootstrap_matches_normal_approximation():
    # 140 wins, 20 ties, 40 losses of 200: p = 0.75
    s = stats.pair_summary(_recs("a", "b", 140, 20, 40), n_boot=4000, seed=1)
    assert s["win_rate_a"] == pytest.approx(0.75)
    values = [1.0] * 140 + [0.5] * 20 + [0.0] * 40
    sd = np.std(values) / math.sqrt(200)
    lo, hi = s["ci95_a"]
    assert lo == pytest.approx(0.75 - 1.96 * sd, abs=0.012) and hi == pytest.approx(0.75 + 1.96 * sd, abs=0.012)
    # the Wald interval on the win/loss-only proportion is wider than ours (ties shrink variance)
    wlo, whi = core.normal_ci(0.75, 200)
    assert wlo <= lo + 0.01 and hi <= whi + 0.01


def test_bootstrap_is_seeded_and_covers_truth():
    vals = [1.0] * 30 + [0.0] * 20
    assert core.bootstrap_ci(vals, seed=3) == core.bootstrap_ci(vals, seed=3)
    rng = np.random.default_rng(0)
    covered = 0
    for _ in range(200):  # coverage of a 95% interval for a true rate of 0.6, n = 80
        draws = (rng.random(80) < 0.6).astype(float)
        lo, hi = core.bootstrap_ci(draws, n_boot=400, seed=int(rng.integers(1 << 30)))
        covered += lo <= 0.6 <= hi
    assert 0.88 <= covered / 200 <= 0.99


def test_cluster_bootstrap_is_wider_when_turns_are_correlated():
    # each question's two turns have the same outcome: 40 questions, not 80 independent draws
    vals = [v for v in [1.0] * 24 + [0.0] * 16 for _ in range(2)]
    groups = [q for q in range(40) for _ in range(2)]
    naive = core.bootstrap_ci(vals, seed=0)
    clustered = core.bootstrap_ci(vals, groups, seed=0)
    assert clustered[1] - clustered[0] > 1.25 * (naive[1] - naive[0])


def test_counts_ties_and_category_table():
    s = stats.pair_summary(_recs("a", "b", 6, 2, 2), n_boot=200)
    assert (s["wins_a"], s["ties"], s["wins_b"], s["failures"]) == (6, 2, 2, 0)
    assert s["win_rate_a"] == pytest.approx(0.7)
    assert sum(c["n"] for c in s["by_category"].values()) == 10


def test_failed_verdicts_are_counted_not_rated():
    recs = _recs("a", "b", 3, 0, 1) + [{**_recs("a", "b", 1, 0, 0, 99)[0], "winner": None, "status": "failed"}]
    s = stats.pair_summary(recs, n_boot=100)
    assert s["n"] == 4 and s["failures"] == 1 and s["win_rate_a"] == 0.75


def test_bradley_terry_ordering_and_known_ratio():
    recs = _recs("strong", "mid", 30, 0, 10) + _recs("mid", "weak", 30, 0, 10, 100) + _recs("strong", "weak", 36, 0, 4, 200)
    elo = stats.elo_with_ci(recs, n_boot=200)
    assert list(elo) == ["strong", "mid", "weak"]
    # 3:1 odds between neighbours is about 191 Elo points; the direct 9:1 pair agrees with it
    assert elo["strong"]["elo"] - elo["mid"]["elo"] == pytest.approx(400 * math.log10(3), abs=25)
    for m, v in elo.items():
        assert v["ci95"][0] <= v["elo"] <= v["ci95"][1], m
    assert elo["strong"]["ci95"][0] > elo["weak"]["ci95"][1]
    # two models only: BT reproduces the win odds exactly (up to the tiny prior)
    two = stats.bradley_terry([("x", "y", 1.0)] * 30 + [("x", "y", 0.0)] * 10)
    assert two["x"] - two["y"] == pytest.approx(400 * math.log10(3), abs=3)


def test_length_bias_and_length_controlled_rate():
    # A wins exactly when its reply is longer; at equal length the models are even
    recs = []
    for q in range(60):
        longer = q % 2 == 0
        recs.append({"question_id": q, "turn": 1, "model_a": "a", "model_b": "b",
                     "winner": "model_a" if longer else "model_b",
                     "len_a": 400 if longer else 100, "len_b": 100 if longer else 400})
    ln = stats.length_stats(recs, n_boot=100)
    assert ln["longer_wins_rate"] == 1.0 and ln["length_coef"] > 0
    assert ln["lc_win_rate_a"] == pytest.approx(0.5, abs=0.05)
    # when A wins 80% regardless of length, the length-controlled rate stays near 80%
    rng = np.random.default_rng(1)
    recs2 = [{"question_id": q, "turn": 1, "model_a": "a", "model_b": "b",
              "winner": "model_a" if q % 5 else "model_b", "len_a": int(rng.integers(50, 500)),
              "len_b": int(rng.integers(50, 500))} for q in range(100)]
    ln2 = stats.length_stats(recs2, n_boot=100)
    assert ln2["lc_win_rate_a"] == pytest.approx(0.8, abs=0.08)
    assert ln2["lc_ci95_a"][0] < ln2["lc_win_rate_a"] < ln2["lc_ci95_a"][1]


def test_position_stats():
    base = {"question_id": 0, "turn": 1, "model_a": "a", "model_b": "b"}
    recs = [
        {**base, "g1": "model_a", "g2": "model_b", "consistent": False, "winner": "tie",
         "judgments": [{"label": "A"}, {"label": "A"}]},
        {**base, "g1": "model_a", "g2": "model_a", "consistent": True, "winner": "model_a",
         "judgments": [{"label": "A"}, {"label": "B"}]},
    ]
    p = stats.position_stats(recs)
    assert p["inconsistency"] == 0.5 and p["first_wins_when_inconsistent"] == 1.0
    assert p["first_wins_overall"] == 0.75


def test_agreement_between_grades_and_verdicts():
    recs = _recs("a", "b", 2, 1, 1)
    grades = [{"model_id": m, "question_id": q, "turn": 1, "score": s}
              for q, (sa, sb) in enumerate([(9, 2), (8, 8), (5, 5), (2, 9)]) for m, s in (("a", sa), ("b", sb))]
    ag = stats.agreement(recs, grades)
    # q0 a/a agree, q1 a vs tie disagree, q2 tie/tie agree, q3 b/b agree
    assert ag["n"] == 4 and ag["agreement"] == 0.75 and ag["decisive_agreement"] == 1.0
    gs = stats.grade_summary(grades, n_boot=100)
    assert gs["a"]["mean"] == 6.0 and gs["b"]["n"] == 4
