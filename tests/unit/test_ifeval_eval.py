"""IFEval runs with scripted engines: the fixed spread, resume, scoring, and paired comparisons."""

from __future__ import annotations

import json

import pytest

from ownchat.engines.base import ChatRequest, Completion, Engine
from ownchat.errors import UserError
from ownchat.judge.ifeval import IFEvalConfig, Item, evaluate_ifeval, load_items, spread
from ownchat.judge.ifeval_score import compare_runs

ITEMS = [
    {"key": 1, "prompt": "Say hi without commas.", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]},
    {"key": 2, "prompt": "Answer in lowercase.", "instruction_id_list": ["change_case:english_lowercase"],
     "kwargs": [{}]},
    {"key": 3, "prompt": "Wrap it in quotes and no commas.",
     "instruction_id_list": ["startend:quotation", "punctuation:no_comma"], "kwargs": [{}, {}]},
    {"key": 4, "prompt": "End with 'Bye.'", "instruction_id_list": ["startend:end_checker"],
     "kwargs": [{"end_phrase": "Bye."}]},
]


class Scripted(Engine):
    name = "scripted"

    def __init__(self, answers: dict[str, str], model_id: str = "s") -> None:
        self.answers, self.model_id, self.max_concurrency, self.calls = answers, model_id, 2, 0

    def generate(self, request: ChatRequest) -> Completion:
        self.calls += 1
        text = self.answers[request.messages[-1]["content"]]
        return Completion(text, "length" if text.endswith("...") else "stop", 5, 7, model=self.model_id)


GOOD = {"Say hi without commas.": "hi there", "Answer in lowercase.": "all lowercase here",
        "Wrap it in quotes and no commas.": '"quoted and calm"', "End with 'Bye.'": "See you. Bye."}
BAD = {"Say hi without commas.": "hi, there", "Answer in lowercase.": "Not Lowercase",
       "Wrap it in quotes and no commas.": '"quoted, calm"', "End with 'Bye.'": "Bye. See you..."}


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "ifeval.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ITEMS))
    return path


def test_spread_is_fixed_nested_and_deals_over_families():
    items = [Item(k, f"p{k}", (f"{fam}:x",), ({},)) for k, fam in
             enumerate(["b", "b", "b", "a", "a", "c"], start=1)]
    order = [i.key for i in spread(items)]
    assert order == [4, 1, 6, 5, 2, 3]  # a, b, c, then the second of a and b, then b's third
    assert [i.key for i in spread(items, 3)] == order[:3]
    with pytest.raises(UserError):
        spread(items, 0)


def test_scores_resume_and_compare(tmp_path, data):
    good, bad = Scripted(GOOD, "good"), Scripted(BAD, "bad")
    s_good = evaluate_ifeval(IFEvalConfig("good", tmp_path / "g", data=str(data)), engine=good, log=lambda m: None)
    s_bad = evaluate_ifeval(IFEvalConfig("bad", tmp_path / "b", data=str(data)), engine=bad, log=lambda m: None)
    assert s_good["prompt_strict"]["correct"] == 4 and s_good["instruction_strict"]["correct"] == 5
    assert s_bad["prompt_strict"]["correct"] == 0 and s_bad["instruction_strict"]["correct"] == 1  # quotes kept
    assert s_bad["stopped"]["correct"] == 3  # one answer ran into the token cap
    assert s_good["average"]["value"] == 1.0 and s_bad["average"]["value"] == pytest.approx((0 + 1 / 5) / 2)
    assert s_good["by_instruction"]["punctuation:no_comma"] == {"n": 2, "strict": 1.0, "loose": 1.0}
    for name in ("responses.jsonl", "scores.jsonl", "summary.json", "report.md", "by_instruction.png"):
        assert (tmp_path / "g" / name).exists(), name
    # a re-run asks the engine for nothing: every answer is on disk
    again = Scripted(GOOD, "good")
    evaluate_ifeval(IFEvalConfig("good", tmp_path / "g", data=str(data)), engine=again, log=lambda m: None)
    assert again.calls == 0
    c = compare_runs(tmp_path / "b", tmp_path / "g")
    assert c["n"] == 4 and c["prompt_strict"]["gain"] == 1.0 and c["prompt_strict"]["only_after"] == 4
    assert c["instruction_strict"]["gain"] == pytest.approx(4 / 5) and c["instruction_strict"]["mcnemar_p"] is not None
    assert c["average"]["gain"] == pytest.approx(1.0 - 0.1)
    with pytest.raises(UserError, match="different max_tokens"):
        evaluate_ifeval(IFEvalConfig("good", tmp_path / "g", data=str(data), max_tokens=7), engine=again,
                        log=lambda m: None)


def test_a_killed_run_keeps_its_answers(tmp_path, data):
    out = tmp_path / "run"
    out.mkdir()
    # as a kill -9 leaves it: two answers written, the third cut mid-line
    (out / "responses.jsonl").write_text(
        json.dumps({"key": 1, "text": "hi there", "finish_reason": "stop", "completion_tokens": 2}) + "\n"
        + json.dumps({"key": 2, "text": "all lowercase here", "finish_reason": "stop", "completion_tokens": 3})
        + "\n" + '{"key": 3, "text": "quo')
    eng = Scripted(GOOD, "good")
    s = evaluate_ifeval(IFEvalConfig("good", out, data=str(data)), engine=eng, log=lambda m: None)
    assert eng.calls == 2 and s["n"] == 4 and s["prompt_strict"]["correct"] == 4


def test_bad_input_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(ITEMS[0]) + "\n" + json.dumps({"key": 9, "prompt": "x"}) + "\n")
    with pytest.raises(UserError, match=r"bad.jsonl:2: record needs 'prompt'"):
        load_items(bad)
