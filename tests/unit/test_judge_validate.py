"""`judge validate` with scripted judges whose quality is known, and the probability verdicts.

A judge that always picks the first reply must be reported not valid; one that picks the better
reply must be valid. A judge with a strong first-position preference but a real content signal fails
with text verdicts and passes with probability verdicts, because balanced position calibration
cancels a constant preference — the reason the probability path exists.
"""

from __future__ import annotations

import json
import math
import re

import pytest
from typer.testing import CliRunner

from ownchat.engines.base import ChatRequest, Completion, Engine
from ownchat.engines.logprobs import ChoiceLogprobs
from ownchat.judge.prob import calibrated
from ownchat.judge.runner import JudgeSettings
from ownchat.judge.validate import load_pairs, lookup, validate_judge, validity_line

PAIRS = load_pairs()
BETTER = {p.better for p in PAIRS}


def _first_reply(request: ChatRequest) -> str:
    return re.search(r"\[Reply A\]\n(.*?)\n\[End of reply A\]", request.messages[-1]["content"], re.S).group(1)


class TextJudge(Engine):
    name = "scripted"

    def __init__(self, pick, model_id: str) -> None:
        self.pick, self.model_id, self.max_concurrency = pick, model_id, 4

    def generate(self, request: ChatRequest) -> Completion:
        return Completion(f"A: fine\nB: fine\n[[{self.pick(request)}]]", "stop", 50, 9, model=self.model_id)


class ProbJudge(Engine):
    """log P(A) − log P(B) = bias + signal, the signal +1 nat toward the better reply."""

    name = "scripted-prob"

    def __init__(self, bias: float, signal: float, model_id: str) -> None:
        self.bias, self.signal, self.model_id, self.max_concurrency = bias, signal, model_id, 4

    def choice_logprobs(self, request: ChatRequest, choices) -> ChoiceLogprobs:
        lo = self.bias + (self.signal if _first_reply(request) in BETTER else -self.signal)
        return ChoiceLogprobs({"A": lo / 2 - 1.0, "B": -lo / 2 - 1.0})


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("OWNCHAT_HOME", str(tmp_path / "home"))


def test_shipped_set_is_large_and_bilingual():
    assert len(PAIRS) >= 60 and {p.lang for p in PAIRS} == {"en", "zh-TW"}
    assert {p.kind for p in PAIRS} == {"wrong", "off_topic", "truncated", "language", "instruction"}


def test_always_first_is_not_valid_and_its_position_bias_is_shown():
    s = validate_judge(TextJudge(lambda r: "A", "always-a"), settings=JudgeSettings(retries=0), log=lambda m: None)
    assert s["win_rate_better"]["win_rate"] == 0.5 and not s["valid"]
    assert s["first_position_share"] == 1.0 and s["position_consistency"] == 0.0
    assert s["verdict"].startswith("NOT valid")
    ok, line = validity_line("always-a", "text")
    assert not ok and "NOT valid" in line


def test_a_judge_that_picks_the_better_reply_is_valid_and_stored():
    pick = TextJudge(lambda r: "A" if _first_reply(r) in BETTER else "B", "picks-right")
    s = validate_judge(pick, settings=JudgeSettings(retries=0), log=lambda m: None)
    assert s["win_rate_better"]["win_rate"] == 1.0 and s["valid"] and s["both_orders_right"] == 1.0
    assert set(s["by_kind"]) == {"wrong", "off_topic", "truncated", "language", "instruction"}
    assert lookup("picks-right", "text")["valid"] is True
    assert lookup("picks-right", "prob") is None  # validated per method
    assert not validity_line("never-seen", "text")[0]


def test_probability_verdicts_cancel_a_constant_position_preference():
    biased = ProbJudge(bias=3.0, signal=1.0, model_id="biased")
    # as text, this judge's letter is always "A" (the bias outweighs the signal): a coin
    text_like = TextJudge(lambda r: "A" if biased.choice_logprobs(r, "AB").logprobs["A"] > -1.0 else "B", "tl")
    assert not validate_judge(text_like, settings=JudgeSettings(retries=0), log=lambda m: None)["valid"]
    s = validate_judge(biased, method="prob", log=lambda m: None)
    assert s["valid"] and s["win_rate_better"]["win_rate"] == 1.0
    assert all(r["bias"] == pytest.approx(3.0) for r in s["rows"])
    # no signal at all: every verdict is a tie, whatever the bias
    flat = validate_judge(ProbJudge(bias=2.0, signal=0.0, model_id="flat"), method="prob", log=lambda m: None)
    assert flat["win_rate_better"]["win_rate"] == 0.5 and not flat["valid"]


def test_calibration_arithmetic():
    c = calibrated(2.5, 0.5)  # A shown first: +2.5; B shown first: +0.5 for whoever is first
    assert c["d"] == pytest.approx(1.0) and c["bias"] == pytest.approx(1.5) and c["winner"] == "model_a"
    assert c["p_a"] == pytest.approx(1 / (1 + math.exp(-1.0)), abs=1e-4) and not c["consistent"]
    assert calibrated(0.05, 0.0)["winner"] == "tie" and calibrated(None, 1.0)["winner"] is None


def test_answers_flag_takes_two_values(tmp_path, monkeypatch):
    from ownchat.cli.main import app
    from ownchat.judge import compare as compare_mod
    from ownchat.judge import grade as grade_mod

    seen = {}

    class R:
        def to_dict(self):
            return {}

    monkeypatch.setattr(compare_mod, "compare_answers", lambda **kw: seen.setdefault("compare", kw) and R())
    monkeypatch.setattr(grade_mod, "grade_answers", lambda **kw: seen.setdefault("grade", kw) and R())
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for args in (["--answers", str(a), str(b)], ["-a", str(a), "-a", str(b)]):
        res = CliRunner().invoke(app, ["judge", "compare", *args, "-o", str(tmp_path / "v.jsonl")])
        assert res.exit_code == 0, res.output
        assert (seen["compare"]["answers_a"], seen["compare"]["answers_b"]) == (a, b)
        seen.clear()
    res = CliRunner().invoke(app, ["judge", "grade", "--answers", str(a), str(b), "-o", str(tmp_path / "g.jsonl")])
    assert res.exit_code == 0 and seen["grade"]["answer_files"] == [a, b]
    res = CliRunner().invoke(app, ["judge", "compare", "--answers", str(a), "-o", str(tmp_path / "v.jsonl")])
    assert res.exit_code == 2 and "exactly two files" in res.output


def test_report_marks_a_win_rate_from_an_unvalidated_judge(tmp_path):
    from ownchat.judge.report import build_report

    recs = [{"question_id": q, "turn": 1, "model_a": "x", "model_b": "y", "winner": "model_a", "g1": "model_a",
             "g2": "model_a", "consistent": True, "len_a": 10, "len_b": 10, "judgments": [], "judge": "jj",
             "judge_name": "jj", "method": "text", "category": "math"} for q in range(6)]
    path = tmp_path / "v.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    s = build_report([path], tmp_path / "r")
    assert not s["pairs"][0]["judge_valid"] and "not validated" in s["pairs"][0]["judge_validity"]
    assert "not a result" in (tmp_path / "r" / "report.md").read_text()


def _graded_reply(request: ChatRequest) -> str:
    return re.search(r"\[Assistant reply\]\n(.*?)\n\[End of assistant reply\]", request.messages[-1]["content"],
                     re.S).group(1)


class DigitJudge(Engine):
    """Puts most probability on 8 for a better reply and on 3 for a worse one."""

    name = "scripted-digits"

    def __init__(self, model_id: str) -> None:
        self.model_id, self.max_concurrency = model_id, 4

    def choice_logprobs(self, request: ChatRequest, choices) -> ChoiceLogprobs:
        top = "8" if _graded_reply(request) in BETTER else "3"
        return ChoiceLogprobs({c: (-0.2 if c == top else -4.0) for c in choices})


def test_single_grades_validated_by_text_and_by_expected_digit():
    flat = TextJudge(lambda r: "7", "flat-grader")
    flat.generate = lambda req: Completion("fine\nRating: [[7]]", "stop", 10, 3, model="flat-grader")
    s = validate_judge(flat, grades=True, settings=JudgeSettings(retries=0), log=lambda m: None)
    assert s["win_rate_better"]["win_rate"] == 0.5 and not s["valid"] and s["method"] == "grade-text"
    d = validate_judge(DigitJudge("digits"), method="prob", grades=True, log=lambda m: None)
    assert d["valid"] and d["win_rate_better"]["win_rate"] == 1.0
    row = d["rows"][0]
    assert 1 <= row["worse_score"] < row["better_score"] <= 10
    assert lookup("digits", "grade-prob")["valid"] and lookup("digits", "prob") is None


def test_expected_score_is_on_the_ten_point_scale():
    from ownchat.judge.prob import expected_score

    assert expected_score(ChoiceLogprobs({str(i): (0.0 if i == 9 else -50.0) for i in range(1, 10)})) == 10.0
    assert expected_score(ChoiceLogprobs({str(i): (0.0 if i == 1 else -50.0) for i in range(1, 10)})) == 1.0
    assert expected_score(ChoiceLogprobs({str(i): 0.0 for i in range(1, 10)})) == 5.5
