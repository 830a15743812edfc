"""Training files in every supported format, weighted mixing, eval split without leakage."""

from __future__ import annotations

import json

import pytest

from ownchat.errors import DataError
from ownchat.train.data import load_file, load_training_data


def _write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_all_formats(tmp_path):
    recs = [
        {"instruction": "Add", "input": "1+1", "output": "2"},
        {"instruction": "Say hi", "context": "", "response": "hi", "category": "open_qa"},
        {"conversations": [{"from": "human", "value": "x"}, {"from": "gpt", "value": "y"}]},
        {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
         "provenance": {"teacher": "qwen", "terms": {"key": "apache-2.0"}}},
    ]
    convs, info = load_file(_write(tmp_path / "mix.jsonl", recs))
    assert [c[-1]["content"] for c in convs] == ["2", "hi", "y", "b"]
    assert info.format.startswith("mixed:") and info.terms == {"apache-2.0": 1} and info.teachers == ["qwen"]


def test_bad_record_names_file_and_line(tmp_path):
    f = _write(tmp_path / "bad.jsonl", [{"instruction": "ok", "output": "fine"}, {"foo": 1}])
    with pytest.raises(DataError) as exc:
        load_file(f)
    assert exc.value.line == 2


def test_weights_and_eval_split(tmp_path):
    a = _write(tmp_path / "a.jsonl", [{"instruction": f"a{i}", "output": "x"} for i in range(20)])
    b = _write(tmp_path / "b.jsonl", [{"instruction": f"b{i}", "output": "y"} for i in range(20)])
    d = load_training_data([a, b], [2, 0.5], eval_fraction=0.1, seed=0)
    held = {c[0]["content"] for c in d.eval}
    assert len(held) == 4
    train_prompts = [c[0]["content"] for c in d.train]
    assert not held & set(train_prompts)  # no held-out example leaks in through weighting
    assert sum(p.startswith("a") for p in train_prompts) == 36  # 18 kept, twice
    assert sum(p.startswith("b") for p in train_prompts) == 9  # half of 18
    assert load_training_data([a, b], [2, 0.5], eval_fraction=0.1, seed=0).train == d.train
