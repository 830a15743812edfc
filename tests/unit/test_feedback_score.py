"""Score parsing and the retry loop (no model: a scripted grader)."""

from __future__ import annotations

import pytest

from ownchat.engines.base import ChatRequest, Completion, Engine
from ownchat.feedback.score import ScoreItem, score_answers
from ownchat.judge.parse import parse_rating as parse_score


@pytest.mark.parametrize("text, expected", [
    ("The answer is right and concise.\nScore: 8", 8.0),
    ("Score: 7/10", 7.0),
    ("**Score:** 9", 9.0),
    ("score = 3", 3.0),
    ("Rating: [[6]]", 6.0),
    ("I'd say [[4]].", 4.0),
    ("Overall I would give this 5 out of 10.", 5.0),
    ("On a scale of 1 to 10 this is good. Score: 7", 7.0),  # the scale mention is not the score
    ("Score: 2 at first glance... no, Score: 6", 6.0),  # last explicit score wins
    ("8", 8.0),
    ("  7.5 ", 7.5),
    ("Score: 10", 10.0),
])
def test_parse_score_accepts_common_formats(text: str, expected: float) -> None:
    assert parse_score(text) == expected


@pytest.mark.parametrize("text", [
    "", "Great answer!", "Score: 11", "Score: 0", "It has 3 errors and 2 typos.", "Score: -", "42",
])
def test_parse_score_refuses_missing_or_out_of_range(text: str) -> None:
    assert parse_score(text) is None


class ScriptedGrader(Engine):
    """Replies from a script keyed by how many times this conversation shape was seen."""

    name = "scripted"
    model_id = "scripted"

    def __init__(self, first: dict[str, str], follow_up: str = "Score: 5") -> None:
        self.first = first
        self.follow_up = follow_up
        self.calls: list[ChatRequest] = []

    def generate(self, request: ChatRequest) -> Completion:
        self.calls.append(request)
        if len(request.messages) > 2:  # a retry turn
            return Completion(self.follow_up, "stop", 10, 3)
        text = request.messages[-1]["content"]
        for key, reply in self.first.items():
            if key in text:
                if reply == "RAISE":
                    raise RuntimeError("boom")
                return Completion(reply, "stop", 10, 3)
        return Completion("Score: 1", "stop", 10, 3)


def test_score_answers_retries_only_unparseable() -> None:
    grader = ScriptedGrader({"alpha": "Fine. Score: 9", "beta": "Looks fine to me."})
    items = [ScoreItem([{"role": "user", "content": "q"}], "alpha"),
             ScoreItem([{"role": "user", "content": "q"}], "beta")]
    res = score_answers(grader, items, retries=2)
    assert [r.score for r in res] == [9.0, 5.0]
    assert [r.attempts for r in res] == [1, 2]
    assert len(grader.calls) == 3  # one retry, only for "beta"
    retry = grader.calls[-1].messages
    assert retry[-2] == {"role": "assistant", "content": "Looks fine to me."}


def test_score_answers_gives_up_after_retries_and_keeps_errors() -> None:
    grader = ScriptedGrader({"gamma": "no idea", "delta": "RAISE"}, follow_up="still no idea")
    items = [ScoreItem([{"role": "user", "content": "q"}], "gamma"),
             ScoreItem([{"role": "user", "content": "q"}], "delta")]
    res = score_answers(grader, items, retries=1)
    assert res[0].score is None and res[0].attempts == 2 and res[0].reply == "still no idea"
    # an engine error is retried with the original request (not a follow-up turn), then given up
    assert res[1].score is None and res[1].errors == ["RuntimeError: boom"] * 2
    assert sum(1 for c in grader.calls if "delta" in c.messages[-1]["content"]) == 2


def test_reference_goes_into_the_rubric() -> None:
    grader = ScriptedGrader({})
    score_answers(grader, [ScoreItem([{"role": "user", "content": "2+2?"}], "5", reference="4")], retries=0)
    prompt = grader.calls[0].messages[-1]["content"]
    assert "[Reference answer]\n4" in prompt and "[Answer to grade]\n5" in prompt
    assert grader.calls[0].params.temperature == 0.0
