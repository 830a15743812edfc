"""The Qwen judge (llama.cpp) must prefer correct answers over deliberately degraded ones.

Correct answers are the bench's reference answers; degraded ones have wrong numbers, are cut off,
or answer a different question. Small enough for `make test` (10 questions, turn 1, short judge
replies); the 30-question version with single grades is marked slow.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from ownchat.judge import JudgeSettings, build_report, compare_answers, grade_answers
from ownchat.judge.questions import OWN_BENCH, REFERENCE_CATEGORIES, load_questions, select

OFF_TOPIC = "Here is a simple pancake recipe: mix flour, milk and eggs, then fry the batter in butter."


def _wrong_numbers(text: str) -> str:
    return re.sub(r"\d", lambda m: str((int(m.group()) + 3) % 10), text)


def degrade(text: str, kind: int) -> str:
    if kind == 0 and re.search(r"\d", text):
        return _wrong_numbers(text)
    if kind == 1:
        return text[: max(3, len(text) // 4)].rstrip() + " ..."
    return OFF_TOPIC


def _write_answers(path, model_id, questions, fn):
    with open(path, "w", encoding="utf-8") as f:
        for i, q in enumerate(questions):
            f.write(json.dumps({"question_id": q.question_id, "answer_id": f"{model_id}-{i}", "model_id": model_id,
                                "choices": [{"index": 0, "turns": [fn(q, i)]}], "tstamp": 0}) + "\n")


def _reference_questions(n: int):
    qs = [q for q in load_questions(OWN_BENCH) if q.category in REFERENCE_CATEGORIES and q.lang == "en"]
    return select(qs, limit=n, max_turns=1)


def _run(tmp_path, cache_db, n: int, grades: bool):
    from ownchat.engines import load_engine

    qs = _reference_questions(n)
    good, bad = tmp_path / "good.jsonl", tmp_path / "bad.jsonl"
    _write_answers(good, "reference", qs, lambda q, i: q.reference[0])
    _write_answers(bad, "degraded", qs, lambda q, i: degrade(q.reference[0], i % 3))
    settings = JudgeSettings(max_tokens=128, retries=1, concurrency=4)
    judge = load_engine("qwen2.5-coder-1.5b-instruct", cache=cache_db, concurrency=4)
    try:
        t0 = time.time()
        res = compare_answers(qs, good, bad, judge, tmp_path / "v.jsonl", settings=settings)
        elapsed = time.time() - t0
        calls = judge.calls
        assert res.written == n
        # cached: judging the same pair again reaches the model zero times
        compare_answers(qs, good, bad, judge, tmp_path / "v2.jsonl", settings=settings)
        assert judge.calls == calls
        g = []
        if grades:
            grade_answers(qs, [good, bad], judge, tmp_path / "g.jsonl", settings=settings)
            g = [tmp_path / "g.jsonl"]
    finally:
        judge.close()
    summary = build_report([tmp_path / "v.jsonl"], tmp_path / "report", grade_files=g)
    pair = summary["pairs"][0]
    print(f"\n{n} questions: W/T/L {pair['wins_a']}/{pair['ties']}/{pair['wins_b']} win rate "
          f"{pair['win_rate_a']:.2f} CI {pair['ci95_a']} inconsistency {pair['inconsistency']:.2f} "
          f"failures {pair['failures']} in {elapsed:.0f}s, usage {res.usage}")
    assert pair["model_a"] == "reference"
    assert pair["ci95_a"][0] > 0.5, pair  # the judge prefers correct answers, significantly
    assert pair["wins_b"] <= n // 5
    return summary


@pytest.mark.model
def test_qwen_judge_prefers_correct_answers(tmp_path, cache_db, qwen_gguf):
    _run(tmp_path, cache_db, 10, grades=False)


@pytest.mark.model
@pytest.mark.slow
def test_qwen_judge_larger_run_with_grades(tmp_path, cache_db, qwen_gguf):
    summary = _run(tmp_path, cache_db, 30, grades=True)
    grades = summary["grades"]
    assert grades["reference"]["mean"] > grades["degraded"]["mean"]
    assert summary["agreement"]["agreement"] >= 0.6
