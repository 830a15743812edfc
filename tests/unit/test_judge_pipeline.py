"""answer -> compare/grade -> report with scripted engines: swap logic, resume, retries, failures."""

from __future__ import annotations

import json
import re

from ownchat.engines.base import ChatRequest, Completion, Engine
from ownchat.judge import answer_questions, build_report, compare_answers, grade_answers, load_answers
from ownchat.judge.compare import combine, to_model
from ownchat.judge.questions import Question
from ownchat.judge.runner import JudgeSettings


class Scripted(Engine):
    """A deterministic engine whose reply is ``fn(request)``; it records every request it sees."""

    name = "scripted"

    def __init__(self, fn, model_id: str = "scripted-1") -> None:
        self.fn, self.model_id, self.max_concurrency, self.seen = fn, model_id, 2, []

    def generate(self, request: ChatRequest) -> Completion:
        self.seen.append(request)
        return Completion(self.fn(request), "stop", prompt_tokens=10, completion_tokens=5, model=self.model_id)


def _replies(request: ChatRequest) -> tuple[str, str]:
    text = request.messages[-1]["content"]
    a = re.search(r"\[Reply A\]\n(.*?)\n\[End of reply A\]", text, re.S).group(1)
    b = re.search(r"\[Reply B\]\n(.*?)\n\[End of reply B\]", text, re.S).group(1)
    return a, b


def content_judge(request: ChatRequest) -> str:
    """Prefers the reply that says GOOD, whatever its position."""
    a, b = _replies(request)
    verdict = "A" if "GOOD" in a and "GOOD" not in b else "B" if "GOOD" in b and "GOOD" not in a else "C"
    return f"Reply {verdict} is more accurate.\n[[{verdict}]]"


QS = [Question(i, "math" if i % 2 else "writing", [f"question {i}", f"follow-up {i}"]) for i in range(1, 7)]


def _answers(tmp_path, name: str, good: bool) -> str:
    def model(req: ChatRequest) -> str:
        n_prev = sum(m["role"] == "assistant" for m in req.messages)
        return f"{'GOOD' if good else 'bad'} reply to turn {n_prev + 1}"

    out = tmp_path / f"{name}.jsonl"
    answer_questions(Scripted(model, name), QS, out, model_id=name)
    return out


def test_answers_are_mt_bench_format_multi_turn_and_resume(tmp_path):
    eng = Scripted(lambda r: f"seen {len(r.messages)} messages")
    out = tmp_path / "a.jsonl"
    res = answer_questions(eng, QS[:3], out, model_id="m")
    assert res.written == 3 and len(eng.seen) == 6
    rec = json.loads(out.read_text().splitlines()[0])
    assert {"question_id", "answer_id", "model_id", "choices", "tstamp"} <= set(rec)
    assert rec["choices"][0]["turns"] == ["seen 1 messages", "seen 3 messages"]  # turn 2 saw turn 1's reply
    second_turn = [r for r in eng.seen if len(r.messages) == 3][0]
    assert second_turn.messages[1] == {"role": "assistant", "content": "seen 1 messages"}
    res2 = answer_questions(eng, QS[:4], out, model_id="m")
    assert (res2.written, res2.skipped, len(eng.seen)) == (1, 3, 8)
    assert set(load_answers(out)) == {1, 2, 3, 4}


def test_swap_mapping():
    assert to_model("A", "ab") == "model_a" and to_model("A", "ba") == "model_b"
    assert to_model("B", "ba") == "model_a" and to_model("tie", "ba") == "tie"
    assert combine("model_a", "model_a") == ("model_a", True)
    assert combine("model_a", "model_b") == ("tie", False)
    assert combine("model_a", "tie") == ("tie", False)
    assert combine(None, "model_a") == (None, False)


def test_compare_both_orders_and_report(tmp_path):
    good, bad = _answers(tmp_path, "good", True), _answers(tmp_path, "bad", False)
    judge = Scripted(content_judge)
    out = tmp_path / "v.jsonl"
    res = compare_answers(QS, good, bad, judge, out, turns=[1])
    assert res.written == 6 and len(judge.seen) == 12  # 6 questions x 1 turn x 2 orders
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(r["winner"] == "model_a" and r["consistent"] for r in recs)
    assert {j["order"] for j in recs[0]["judgments"]} == {"ab", "ba"}
    assert recs[0]["prompt"]["name"] == "pair" and recs[0]["judge"] == "scripted-1"
    # resume: nothing left to do for turn 1; turn 2 adds 6 more verdicts
    assert compare_answers(QS, good, bad, judge, out, turns=[1]).written == 0
    assert compare_answers(QS, good, bad, Scripted(lambda r: "[[A]]"), out).written == 6
    s = build_report([out], tmp_path / "rep", n_boot=200)
    assert s["pairs"][0]["model_a"] == "good" and s["pairs"][0]["n"] == 12
    assert (tmp_path / "rep" / "report.html").read_text().count("data:image/png;base64,") >= 2
    assert json.loads((tmp_path / "rep" / "summary.json").read_text())["pairs"][0]["wins_a"] >= 6


def test_position_biased_judge_yields_ties_and_inconsistency(tmp_path):
    a, b = _answers(tmp_path, "x", True), _answers(tmp_path, "y", True)
    out = tmp_path / "v.jsonl"
    compare_answers(QS, a, b, Scripted(lambda r: "First is better. [[A]]"), out, turns=[1])
    s = build_report([out], tmp_path / "rep", n_boot=200)["pairs"][0]
    assert (s["wins_a"], s["wins_b"], s["ties"]) == (0, 0, 6)
    assert s["inconsistency"] == 1.0 and s["position"]["first_wins_when_inconsistent"] == 1.0
    assert s["win_rate_a"] == 0.5


def test_unparseable_verdicts_are_retried_then_reported(tmp_path):
    a, b = _answers(tmp_path, "x", True), _answers(tmp_path, "y", False)

    def flaky(req: ChatRequest) -> str:
        if "question 1" in req.messages[1]["content"]:
            return "I cannot decide."  # never parses
        followup = req.messages[-1]["role"] == "user" and len(req.messages) > 2
        return "[[A]]" if followup else "hmm"  # parses only when asked for the verdict line

    judge = Scripted(flaky)
    out = tmp_path / "v.jsonl"
    res = compare_answers(QS, a, b, judge, out, turns=[1], settings=JudgeSettings(retries=2))
    recs = {r["question_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert res.failed == 1 and recs[1]["status"] == "failed" and recs[1]["winner"] is None
    attempts = recs[1]["judgments"][0]["attempts"]
    assert len(attempts) == 3 and [x["followup"] for x in attempts] == [False, True, True]  # + 2 follow-ups
    assert len(recs[2]["judgments"][0]["attempts"]) == 2
    # the follow-up shows the judge its own reply, asks for the verdict line only, with a short budget
    ask = [r for r in judge.seen if len(r.messages) > 2 and "question 1" not in r.messages[1]["content"]][0]
    assert ask.messages[-2] == {"role": "assistant", "content": "hmm"} and "[[A]] or [[B]]" in ask.messages[-1]["content"]
    assert ask.params.max_tokens == 16 and ask.params.temperature == 0.0
    s = build_report([out], tmp_path / "rep", n_boot=100)
    assert s["pairs"][0]["failures"] == 1 and len(s["failures"]) == 2  # both orders of q1, shown
    assert "I cannot decide." in (tmp_path / "rep" / "report.md").read_text()


def test_grades_and_agreement(tmp_path):
    good_score = 9
    a, b = _answers(tmp_path, "good", True), _answers(tmp_path, "bad", False)

    def grader(req: ChatRequest) -> str:
        text = req.messages[-1]["content"]
        reply = text.split("[Assistant reply]")[-1] if "[Assistant reply]" in text else text.split("### Assistant:")[-1]
        return f"Rating: [[{good_score if 'GOOD' in reply else 3}]]"

    g = tmp_path / "g.jsonl"
    res = grade_answers(QS, [a, b], Scripted(grader), g)
    assert res.written == 24 and res.failed == 0
    v = tmp_path / "v.jsonl"
    compare_answers(QS, a, b, Scripted(content_judge), v, turns=[1])
    s = build_report([v], tmp_path / "rep", grade_files=[g], n_boot=100)
    assert s["grades"]["good"]["mean"] == good_score and s["grades"]["bad"]["mean"] == 3
    assert s["agreement"]["agreement"] == 1.0 and s["agreement"]["n"] == 6


def test_compare_resumes_after_a_torn_last_line(tmp_path):
    good, bad = _answers(tmp_path, "good", True), _answers(tmp_path, "bad", False)
    out = tmp_path / "v.jsonl"
    compare_answers(QS, good, bad, Scripted(content_judge), out, turns=[1])
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:3]) + lines[3][:40])  # a kill -9 in the middle of line 4
    judge = Scripted(content_judge)
    res = compare_answers(QS, good, bad, judge, out, turns=[1])
    assert (res.skipped, res.written, len(judge.seen)) == (3, 3, 6)
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["question_id"] for r in recs) == [1, 2, 3, 4, 5, 6]
