"""Pairing policies: best-vs-worst, all pairs above a margin, ties and unscored answers counted."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ownchat.feedback.pairs import Candidate, make_pairs


def cands(*scores: float | None) -> list[Candidate]:
    return [Candidate(f"answer {i}", s, "student", i) for i, s in enumerate(scores)]


def test_best_worst_picks_extremes() -> None:
    c = Counter()
    pairs = make_pairs(cands(5, 9, 2, 7), "best-worst", 1, c)
    assert [(p.chosen.text, p.rejected.text) for p in pairs] == [("answer 1", "answer 2")]
    assert c["pairs"] == 1 and c["candidates"] == 4 and c["tie_prompts"] == 0


def test_best_worst_respects_margin_and_counts_ties() -> None:
    c = Counter()
    assert make_pairs(cands(6, 7, 6), "best-worst", 2, c) == []
    assert make_pairs(cands(8, 8), "best-worst", 1, c) == []
    assert c["tie_prompts"] == 2 and c["pairs"] == 0


def test_margin_mode_all_pairs_above_margin() -> None:
    pairs = make_pairs(cands(9, 7, 4, 8), "margin", 2)
    got = {(p.chosen.score, p.rejected.score) for p in pairs}
    assert got == {(9, 7), (9, 4), (7, 4), (8, 4)}
    assert all(p.gap >= 2 for p in pairs)


def test_unscored_empty_and_duplicate_answers_are_dropped_and_counted() -> None:
    c = Counter()
    pool = cands(None, 3, 9) + [Candidate("  ", 1, "student", 5), Candidate("answer 2", 2, "student", 6)]
    pairs = make_pairs(pool, "best-worst", 1, c)
    assert [(p.chosen.score, p.rejected.score) for p in pairs] == [(9, 3)]
    assert (c["unscored"], c["empty"], c["duplicates"]) == (1, 1, 1)


def test_single_usable_answer_gives_no_pair() -> None:
    c = Counter()
    assert make_pairs(cands(None, 7), "margin", 1, c) == []
    assert c["short_prompts"] == 1


def test_ties_break_deterministically_student_first() -> None:
    pool = [Candidate("t", 9, "teacher", 0), Candidate("s1", 9, "student", 1), Candidate("s0", 9, "student", 0),
            Candidate("bad", 2, "student", 2)]
    assert make_pairs(pool)[0].chosen.text == "s0"


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        make_pairs(cands(1, 2), "round-robin")
    with pytest.raises(ValueError):
        make_pairs(cands(1, 2), "margin", 0)


@given(st.lists(st.one_of(st.none(), st.integers(1, 10)), min_size=0, max_size=8), st.integers(1, 4))
def test_pairs_always_prefer_the_higher_score(scores: list[int | None], margin: int) -> None:
    c = Counter()
    for mode in ("best-worst", "margin"):
        for p in make_pairs(cands(*scores), mode, margin, c):
            assert p.chosen.score - p.rejected.score >= margin
            assert p.chosen.text != p.rejected.text
    usable = [s for s in scores if s is not None]
    n_margin = sum(1 for i, a in enumerate(usable) for b in usable[i + 1:] if abs(a - b) >= margin)
    assert len(make_pairs(cands(*scores), "margin", margin)) == n_margin
