"""Verdict parsing on the messy things small judges actually write."""

from __future__ import annotations

import pytest

from ownchat.judge.parse import parse_pair, parse_rating


@pytest.mark.parametrize("text,expected", [
    ("Assistant A is accurate.\n[[A]]", "A"),
    ("[[B]]", "B"),
    ("Both are fine. [[C]]", "tie"),
    ("**[[A]]**", "A"),
    ("Final verdict: `[[B]]`", "B"),
    ("[[ a ]]", "A"),
    ("[[Tie]]", "tie"),
    ("Verdict: [B]", "B"),
    ("My final verdict is: A", "A"),
    ("Final Verdict: **Assistant B**", "B"),
    ("Better response: B.", "B"),
    ("Assistant B is clearly better because it is correct.", "B"),
    ("They are equally good.", "tie"),
    # the explanation may quote the format; the verdict that follows wins
    ('I must answer "[[A]]" if A is better or "[[B]]" if B is better. A has an error. [[B]]', "B"),
    ("At first [[A]] seemed right, but on reflection [[B]]", "B"),
    ("A is better in style, but B is better in accuracy.", None),  # contradictory prose: no guess
    ("I cannot decide between them.", None),
    ("", None),
    (None, None),
    ("The answer is [[D]]", None),
    ("Option [[ A]] is wrong; verdict [[C ]]", "tie"),
    ("回覆 A 比較正確。\n[[A]]", "A"),
    ("My verdict is a tie.", "tie"),  # the article "a" is not assistant A
    ("The final verdict is a draw", "tie"),
    ("Verdict: this is a close call", None),
    ("So a is better than nothing, but neither answers.", None),
])
def test_parse_pair(text, expected):
    assert parse_pair(text) == expected


@pytest.mark.parametrize("text,expected", [
    ("Good answer.\nRating: [[8]]", 8.0),
    ("Rating: [[7.5]]", 7.5),
    ("**Rating: [[10]]**", 10.0),
    ("Rating: [[ 3 ]]", 3.0),
    ("[[6/10]]", 6.0),
    ("Rating: 9/10", 9.0),
    ("Score: 4", 4.0),
    ("I'd give it 7 out of 10.", 7.0),
    ("Rating: [9]", 9.0),
    ("Format is Rating: [[N]]. The reply is wrong. Rating: [[2]]", 2.0),
    ("Rating: [[11]]", None),  # out of range is a failure, not a clamp
    ("Rating: [[0]]", None),
    ("The reply lists 3 steps and 2 examples.", None),
    ("", None),
    ("評分：Rating: [[5]]", 5.0),
])
def test_parse_rating(text, expected):
    assert parse_rating(text) == expected
