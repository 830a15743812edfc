"""collect_feedback end to end with scripted engines: pairs, counts, output format, resume."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ownchat.data.jsonl import read_jsonl
from ownchat.engines.base import ChatRequest, Completion, Engine
from ownchat.errors import DataError, UserError
from ownchat.feedback.collect import FeedbackConfig, collect_feedback, load_prompts, scores_path


class FakeStudent(Engine):
    name = "fake-student"
    model_id = "fake-student"
    max_concurrency = 4

    def __init__(self) -> None:
        self.calls = 0

    def generate(self, request: ChatRequest) -> Completion:
        self.calls += 1
        assert request.params.temperature > 0
        q = request.messages[-1]["content"]
        if q == "loop" and request.sample_index == 0:  # a degenerate sample, as small models write
            return Completion("2021-01-15: " * 40, "length", 5, 160)
        return Completion(f"draft {request.sample_index} for {q}", "stop", 5, 7)


class FakeTeacher(Engine):
    """Scores 'draft j' as 3*j+1 (so ties never happen), except prompt 'tie' where every draft gets 5."""

    name = "fake-teacher"
    model_id = "fake-teacher"
    max_concurrency = 4

    def __init__(self) -> None:
        self.calls = 0

    def generate(self, request: ChatRequest) -> Completion:
        self.calls += 1
        text = request.messages[-1]["content"]
        if request.messages[0]["role"] != "system":  # the teacher answering the prompt itself
            return Completion("teacher answer", "stop", 5, 3)
        graded = text.split("[Answer to grade]\n")[1].split("\n[End of answer")[0]
        if "for tie" in graded:
            return Completion("Score: 5", "stop", 50, 4)
        if "for mute" in graded:
            return Completion("no opinion", "stop", 50, 4)
        if graded == "teacher answer":
            return Completion("Score: 10", "stop", 50, 4)
        j = int(re.search(r"draft (\d+)", graded).group(1))
        return Completion(f"ok.\nScore: {3 * j + 1}", "stop", 50, 4)


def write_prompts(path: Path, prompts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
    return path


def config(tmp_path: Path, prompts: list[str], **kw) -> FeedbackConfig:
    return FeedbackConfig(student="s", teacher="t", prompts=write_prompts(tmp_path / "p.jsonl", prompts),
                          out=tmp_path / "prefs.jsonl", cache=False, chunk=2, **kw)


def test_pairs_counts_and_format(tmp_path: Path) -> None:
    cfg = config(tmp_path, ["a", "b", "tie", "mute"], k=3, retries=1)
    res = collect_feedback(cfg, log=lambda m: None, student=FakeStudent(), teacher=FakeTeacher())
    rows = list(read_jsonl(cfg.out))
    assert len(rows) == 2 and res.counts["pairs"] == 2
    assert res.counts["tie_prompts"] == 1 and res.counts["unscored"] == 3 and res.counts["candidates"] == 12
    r = rows[0]
    assert r["prompt"] == "a" and r["chosen"] == "draft 2 for a" and r["rejected"] == "draft 0 for a"
    assert r["score_chosen"] == 7 and r["score_rejected"] == 1
    assert r["prompt_messages"] == [{"role": "user", "content": "a"}]
    assert r["chosen_messages"] == [{"role": "assistant", "content": "draft 2 for a"}]
    assert r["provenance"]["rubric"] and r["provenance"]["teacher"]["stage"] == "feedback"
    scores = list(read_jsonl(scores_path(cfg.out)))
    assert [len(s["candidates"]) for s in scores] == [3, 3, 3, 3]
    assert res.usage["student"]["requests"] == 12
    assert res.usage["teacher"]["requests"] == 12 + 3  # one follow-up turn for each 'mute' draft
    assert res.hosts == []


def test_include_teacher_and_margin_mode(tmp_path: Path) -> None:
    cfg = config(tmp_path, ["a"], k=2, include_teacher=True, pairs="margin", margin=2)
    collect_feedback(cfg, log=lambda m: None, student=FakeStudent(), teacher=FakeTeacher())
    got = {(r["chosen"], r["rejected"]) for r in read_jsonl(cfg.out)}
    # scores: teacher 10, draft 1 -> 4, draft 0 -> 1
    assert got == {("teacher answer", "draft 1 for a"), ("teacher answer", "draft 0 for a"),
                   ("draft 1 for a", "draft 0 for a")}


def _without_times(path: Path) -> list[str]:
    """The pairs file's lines with provenance timestamps blanked: a redone record is written a second later."""
    return [re.sub(r'"time": "[^"]*"', '"time": ""', line) for line in path.read_text().splitlines()]


def test_resume_skips_finished_prompts_and_drops_orphan_pairs(tmp_path: Path) -> None:
    cfg = config(tmp_path, ["a", "b", "c"], k=2)
    collect_feedback(cfg, log=lambda m: None, student=FakeStudent(), teacher=FakeTeacher())
    full = _without_times(cfg.out)
    # simulate a crash after prompt c's pair was written but before its scores record
    sp = scores_path(cfg.out)
    lines = sp.read_text().splitlines(keepends=True)
    sp.write_text("".join(lines[:2]) + lines[2][:10])
    student, teacher = FakeStudent(), FakeTeacher()
    res = collect_feedback(cfg, log=lambda m: None, student=student, teacher=teacher)
    assert res.resumed == 2 and student.calls == 2 and res.pairs_total == 3
    assert _without_times(cfg.out) == full  # no duplicate pair for c (c's redone pair may carry a later second)
    assert len(list(read_jsonl(sp))) == 3


def test_load_prompts_formats_and_errors(tmp_path: Path) -> None:
    p = tmp_path / "p.jsonl"
    p.write_text(json.dumps({"messages": [{"role": "system", "content": "be brief"},
                                          {"role": "user", "content": "hi"},
                                          {"role": "assistant", "content": "old answer"}]}) + "\n"
                 + json.dumps({"instruction": "add", "input": "2 and 2", "reference": "4"}) + "\n")
    got = load_prompts(p)
    assert got[0]["messages"][-1] == {"role": "user", "content": "hi"} and len(got[0]["messages"]) == 2
    assert got[1]["reference"] == "4" and got[1]["messages"][0]["content"] == "add\n\n2 and 2"
    p.write_text(json.dumps({"prompt": "ok"}) + "\n" + json.dumps({"question": "?"}) + "\n")
    with pytest.raises(DataError) as e:
        load_prompts(p)
    assert e.value.line == 2


def test_config_validation(tmp_path: Path) -> None:
    with pytest.raises(UserError):
        collect_feedback(config(tmp_path, ["a"], k=1), student=FakeStudent(), teacher=FakeTeacher())
    with pytest.raises(UserError):
        collect_feedback(config(tmp_path, ["a"], temperature=0), student=FakeStudent(), teacher=FakeTeacher())


def test_a_degenerate_loop_is_scored_lowest_by_rule_without_the_teacher(tmp_path: Path) -> None:
    cfg = config(tmp_path, ["loop"], k=3)
    teacher = FakeTeacher()  # would raise on the loop: it only knows how to grade "draft j"
    res = collect_feedback(cfg, log=lambda m: None, student=FakeStudent(), teacher=teacher)
    (row,) = read_jsonl(cfg.out)
    assert row["chosen"] == "draft 2 for loop" and row["rejected"].startswith("2021-01-15: 2021-01-15:")
    assert row["score_rejected"] == 1 and teacher.calls == 2 and res.counts["garbled_by_rule"] == 1
    (rec,) = read_jsonl(scores_path(cfg.out))
    assert rec["candidates"][0]["grader"] == {"rule": "garbled", "score": 1.0}


def test_config_lists_every_problem_in_the_words_the_user_used(tmp_path):
    import pytest

    from ownchat.errors import UserError
    from ownchat.feedback.collect import FeedbackConfig

    bad = dict(student="s", teacher="t", prompts=tmp_path / "p.jsonl", out=tmp_path / "o.jsonl", k=1,
               temperature=0.0, pairs="nope", margin=0)
    with pytest.raises(UserError) as e:
        FeedbackConfig(**bad).validate()
    msg = str(e.value)
    assert msg.startswith("4 problem(s)") and "--k must" in msg and "--temperature" in msg and "--pairs" in msg
    with pytest.raises(UserError, match="feedback.samples must be at least 2"):
        FeedbackConfig(**bad, names={"k": "feedback.samples"}).validate()
