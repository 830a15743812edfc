"""Conversation formats <-> messages, and the errors that name file and line."""

from __future__ import annotations

import pytest

from ownchat.data.formats import alpaca_prompt, detect_format, from_messages, to_messages
from ownchat.errors import DataError

CONV = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"}]


@pytest.mark.parametrize("record,fmt", [
    ({"messages": CONV}, "openai"),
    ({"conversations": []}, "sharegpt"),
    ({"instruction": "a", "response": "b", "context": ""}, "dolly"),
    ({"instruction": "a", "output": "b"}, "alpaca"),
    ({"prompt": "a", "completion": "b"}, "prompt"),
    ({"text": "a"}, "unknown"),
])
def test_detect(record, fmt):
    assert detect_format(record) == fmt


def test_each_format_normalises():
    assert to_messages({"messages": CONV}) == CONV
    share = {"conversations": [{"from": "system", "value": "Be kind."}, {"from": "human", "value": "Hi"},
                               {"from": "gpt", "value": "Hello!"}]}
    assert to_messages(share) == CONV
    alpaca = to_messages({"instruction": "Translate", "input": "chat", "output": "cat"})
    assert alpaca == [{"role": "user", "content": "Translate\n\nchat"}, {"role": "assistant", "content": "cat"}]
    dolly = to_messages({"instruction": "Q?", "context": "ctx", "response": "A", "category": "qa"})
    assert dolly[0]["content"] == "Q?\n\nctx" and dolly[1]["content"] == "A"
    pc = to_messages({"prompt": "2+2?", "completion": "4"})
    assert pc == [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]


def test_alpaca_noinput_markers_are_dropped():
    assert alpaca_prompt(" Say hi ", "<noinput>") == "Say hi"
    assert alpaca_prompt("Say hi", "") == "Say hi"


@pytest.mark.parametrize("fmt", ["openai", "sharegpt", "alpaca"])
def test_round_trip(fmt):
    msgs = CONV[1:]
    back = to_messages(from_messages(msgs, fmt, extra={"id": 7}))
    assert back == msgs
    assert from_messages(msgs, fmt, extra={"id": 7})["id"] == 7


def test_unknown_output_format():
    with pytest.raises(ValueError, match="unknown format"):
        from_messages(CONV, "yaml")


@pytest.mark.parametrize("record,problem", [
    ({"messages": []}, "non-empty list"),
    ({"messages": [{"role": "user"}]}, "'role' and 'content'"),
    ({"messages": [{"role": "bot", "content": "x"}]}, "unknown role"),
    ({"conversations": [{"from": "alien", "value": "x"}]}, "unknown speaker"),
    ({"foo": 1}, "unrecognised record"),
    ({"messages": [{"role": "user", "content": "x"}]}, "no assistant answer"),
])
def test_errors_name_file_and_line(record, problem):
    with pytest.raises(DataError) as err:
        to_messages(record, where=("data.jsonl", 12))
    assert str(err.value).startswith("data.jsonl:12: ") and problem in str(err.value)
    assert err.value.line == 12


def test_answer_optional_for_prompts():
    assert to_messages({"prompt": "hi"}, require_answer=False) == [{"role": "user", "content": "hi"}]


def test_self_instruct_seed_keeps_its_input():
    # Read as Alpaca, the input inside ``instances`` was dropped: "the item below" had no item.
    seed = {"instruction": "Describe the item below.", "is_classification": False,
            "instances": [{"input": "A steel bottle, 750 ml.", "output": "It holds 750 ml."}, {"input": "x"}]}
    assert detect_format(seed) == "self-instruct"
    assert to_messages(seed) == [{"role": "user", "content": "Describe the item below.\n\nA steel bottle, 750 ml."},
                                 {"role": "assistant", "content": "It holds 750 ml."}]
    bare = {"instruction": "Say hi.", "instances": [{"input": "", "output": ""}]}
    assert to_messages(bare, require_answer=False) == [{"role": "user", "content": "Say hi."}]
    with pytest.raises(DataError, match="instances"):
        to_messages({"instruction": "Say hi.", "instances": ["hi"]})


def test_every_shipped_seed_reaches_the_teacher_with_its_input():
    from ownchat.data.jsonl import read_records
    from ownchat.recipe.stages.synth import builtin_inputs

    seeds = read_records(builtin_inputs())
    with_input = [s for s in seeds if s["instances"][0].get("input")]
    assert len(with_input) > len(seeds) // 2
    for s in with_input:
        user = to_messages(s, require_answer=False)[0]["content"]
        assert user.endswith(s["instances"][0]["input"].strip())
