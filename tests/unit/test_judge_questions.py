"""The shipped bench, the MT-bench pack, and errors for malformed question files."""

from __future__ import annotations

import pytest

from ownchat.errors import DataError
from ownchat.judge.prompts import PROMPTS, pair_messages, single_messages
from ownchat.judge.questions import (
    OWN_BENCH,
    REFERENCE_CATEGORIES,
    describe,
    load_mt_bench,
    load_questions,
    resolve_questions,
    select,
)


def test_own_bench_meets_its_spec():
    qs = load_questions(OWN_BENCH)
    d = describe(qs)
    assert d["questions"] >= 80 and d["multi_turn"] == d["questions"]
    assert d["languages"]["zh-TW"] >= 20
    assert set(d["categories"]) == {"writing", "roleplay", "reasoning", "math", "coding", "extraction",
                                    "stem", "humanities"}
    for q in qs:
        assert len(q.turns) == 2
        if q.category in REFERENCE_CATEGORIES:
            assert q.reference and len(q.reference) == 2 and all(q.reference), q.question_id
    zh = [q for q in qs if q.lang == "zh-TW"]
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in q.turns[0]) for q in zh)


def test_mt_bench_pack_loads_with_references():
    from ownchat.models.store import installed

    if installed("mt-bench") is None:
        pytest.skip("mt-bench pack not installed")
    qs = load_mt_bench()
    assert len(qs) == 80
    assert all(q.reference for q in qs if q.category in REFERENCE_CATEGORIES)
    assert len(resolve_questions("mt-bench")) == 80


@pytest.mark.parametrize("line,problem", [
    ('{"category": "x", "turns": ["hi"]}', "missing 'question_id'"),
    ('{"question_id": 1, "turns": []}', "'turns' must be a non-empty list"),
    ('{"question_id": 1, "turns": ["ok", ""]}', "non-string or empty item"),
    ('{"question_id": 1, "turns": "hi"}', "'turns' must be"),
    ('{"question_id": 1, "turns": ["a"], "reference": "x"}', "'reference' must be"),
    ('{"question_id": 1, "turns": ["a"]', "invalid JSON"),
])
def test_bad_question_files_name_the_line(tmp_path, line, problem):
    p = tmp_path / "q.jsonl"
    p.write_text('{"question_id": 0, "turns": ["fine"]}\n\n' + line + "\n")
    with pytest.raises(DataError) as e:
        load_questions(p)
    assert e.value.line == 3 and problem in e.value.problem


def test_duplicate_ids_rejected(tmp_path):
    p = tmp_path / "q.jsonl"
    p.write_text('{"question_id": 5, "turns": ["a"]}\n{"question_id": 5, "turns": ["b"]}\n')
    with pytest.raises(DataError, match="duplicate question_id 5"):
        load_questions(p)


def test_select_spreads_over_categories_and_trims_turns():
    qs = load_questions(OWN_BENCH)
    sub = select(qs, limit=16, max_turns=1)
    assert len(sub) == 16 and all(len(q.turns) == 1 for q in sub)
    assert set(describe(sub)["categories"].values()) == {2}
    assert [q.question_id for q in select(qs, limit=16)] == [q.question_id for q in select(qs, limit=16)]
    assert all(q.lang == "zh-TW" for q in select(qs, lang="zh-TW"))


def test_prompts_are_versioned_and_use_references():
    shas = {p.sha for p in PROMPTS.values()}
    assert len(shas) == len(PROMPTS)  # every variant is distinguishable in the verdict files
    msgs, prompt = pair_messages(["q1", "q2"], ["a1", "a2"], ["b1", "b2"], 1, "REF")
    assert prompt.name == "pair-multi-ref" and "REF" in msgs[1]["content"]
    assert "a1" in msgs[1]["content"] and "b2" in msgs[1]["content"]  # turn 2 sees the whole conversation
    msgs, prompt = single_messages(["q1"], ["a1"], 0, None)
    assert prompt.name == "single" and "Rating: [[N]]" in msgs[1]["content"]
    assert prompt.record()["version"] >= 1
