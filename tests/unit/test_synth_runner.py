"""Every synth mode against a scripted teacher: formats, filters, provenance, exact resume."""

import json
import random
import threading
import time

import pytest

from ownchat.engines.base import Completion, Engine
from ownchat.engines.cache import CachedEngine, ResponseCache, request_key
from ownchat.synth import SynthConfig, run_synth

VOCAB = [f"{a}{b}" for a in ("ka", "lo", "mi", "nu", "pe", "ro", "su", "ti", "va", "ze") for b in
         ("b", "d", "g", "l", "m", "n", "r", "s", "t", "x")]
VERBS = ["Write", "Explain", "List", "Describe", "Summarize", "Compare", "Suggest", "Translate"]


class Crash(BaseException):
    """Stands in for kill -9 in the middle of a run."""


class ScriptedTeacher(Engine):
    """Answers each prompt type in the requested format, deterministically from the request seed."""

    name = "scripted"
    model_id = "scripted:1"
    max_concurrency = 4

    def __init__(self, crash_after: int | None = None) -> None:
        self.crash_after = crash_after
        self.calls = 0
        self.answered: list[str] = []
        self._lock = threading.Lock()

    def _sentence(self, rng: random.Random) -> str:
        return f"{rng.choice(VERBS)} the " + " ".join(rng.sample(VOCAB, 8)) + "."

    def generate(self, req):
        with self._lock:
            self.calls += 1
            if self.crash_after is not None and self.calls > self.crash_after:
                raise Crash()
        p = req.messages[-1]["content"]
        rng = random.Random(json.dumps([req.messages, req.params.seed]))
        if "new tasks, numbered" in p:
            text = "Here you go:\n" + "\n".join(f"Task {9 + i}: {self._sentence(rng)}" for i in range(8)) + "\nEnjoy!"
        elif "What kind of answer does this task expect" in p:
            text = rng.choice(["A", "B) free text"])
        elif "Class label:" in p and "Given a classification task" in p:
            text = "Class label: alpha\nInput: " + self._sentence(rng) + "\nClass label: beta\nInput: " + self._sentence(rng)
        elif "Come up with an example" in p:
            text = f"Input: <noinput>\nOutput: {self._sentence(rng)}"
        elif "Separate tasks with ###" in p:
            text = "\n###\n".join(f"{i}. Instruction: {self._sentence(rng)}\n{i}. Input: <noinput>\n{i}. Output: "
                                  f"{self._sentence(rng)}" for i in range(4, 12))
            text += "\n###\n12. Instruction: Cut off mid"
            return Completion(text, "length", 10, 30, model=self.model_id)
        else:
            text = self._sentence(rng)
        with self._lock:
            self.answered.append(request_key(self.model_id, req))
        return Completion(text, "stop", 10, 20, model=self.model_id)


def _run(tmp_path, mode, n, engine, name="out.jsonl", cache="cache.sqlite", **kw):
    cached = CachedEngine(engine, ResponseCache(tmp_path / cache))
    cfg = SynthConfig(mode=mode, out=tmp_path / name, n=n, concurrency=3, **kw)
    return run_synth(cfg, log=lambda m: None, engine=cached)


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("mode", ["alpaca", "self-instruct", "chat"])
def test_modes_reach_n_with_provenance(tmp_path, mode):
    res = _run(tmp_path, mode, 10, ScriptedTeacher())
    recs = _records(tmp_path / "out.jsonl")
    assert res.kept == len(recs) == 10 and res.stopped == "n_reached"
    assert len({r["id"] for r in recs}) == 10
    for r in recs:
        prov = r["provenance"]
        assert prov["teacher"] == "scripted:1" and prov["template"].endswith("/v1") and prov["unit"] >= 1
        assert "terms" in prov and "params" in prov
    if mode == "chat":
        assert all(r["conversations"][0]["from"] == "human" and len(r["conversations"]) == 6 for r in recs)
    else:
        assert all(r["instruction"] and r["output"] for r in recs)
    if mode == "self-instruct":
        assert all(r["instances"] and isinstance(r["is_classification"], bool) for r in recs)
        cls = [r for r in recs if r["is_classification"]]
        assert all(r["output"] in ("alpha", "beta") for r in cls)  # output-first: labels are outputs
    stats = json.loads((tmp_path / "out.stats.json").read_text())
    assert stats["kept"] == 10 and stats["stopped"] == "n_reached"


def test_alpaca_drops_truncated_last_item_and_counts(tmp_path):
    _run(tmp_path, "alpaca", 5, ScriptedTeacher())
    recs = _records(tmp_path / "out.jsonl")
    assert not any("Cut off" in r["instruction"] for r in recs)


def test_answer_mode_single_and_multi_turn(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"instruction": "Name two rivers.", "input": "In Europe.", "output": "old"}) + "\n"
                   + json.dumps({"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "x"},
                                                   {"from": "human", "value": "More?"}]}) + "\n")
    res = _run(tmp_path, "answer", 10, ScriptedTeacher(), inputs=src)
    recs = _records(tmp_path / "out.jsonl")
    assert res.stopped == "input_exhausted" and len(recs) == 2
    assert recs[0]["instruction"] == "Name two rivers." and recs[0]["input"] == "In Europe."
    assert recs[0]["output"] != "old"
    assert [m["role"] for m in recs[1]["messages"]] == ["user", "assistant", "user", "assistant"]


def test_budget_stop(tmp_path):
    res = _run(tmp_path, "alpaca", 1000, ScriptedTeacher(), max_tokens=200)
    assert res.stopped == "max_tokens" and 0 < res.kept < 1000


def test_language_filter_counts_wrong_language(tmp_path):
    res = _run(tmp_path, "alpaca", 5, ScriptedTeacher(), language="zh-TW")
    # the scripted teacher only speaks its Latin-script word salad: everything is the wrong language
    assert res.kept == 0 and res.filtered["wrong_language"] > 0 and res.stopped == "stalled"



class ProseLabelTeacher(ScriptedTeacher):
    """Calls every task classification, then writes sentences where the class labels belong."""

    def generate(self, req):
        p = req.messages[-1]["content"]
        if "What kind of answer does this task expect" in p:
            return Completion("A", "stop", 10, 1, model=self.model_id)
        if "Given a classification task" in p:
            rng = random.Random(p)
            text = "\n".join(f"Class label: {self._sentence(rng)}\nInput: {self._sentence(rng)}" for _ in range(2))
            return Completion(text, "stop", 10, 20, model=self.model_id)
        return super().generate(req)


def test_self_instruct_drops_free_text_posing_as_labels(tmp_path):
    res = _run(tmp_path, "self-instruct", 3, ProseLabelTeacher())
    assert res.kept == 0 and res.filtered["not_labels"] > 0

@pytest.mark.parametrize(("mode", "n", "crash_after"), [("alpaca", 40, 4), ("self-instruct", 30, 55), ("chat", 12, 25)])
def test_resume_after_crash_is_exact(tmp_path, mode, n, crash_after):
    ref = _run(tmp_path, mode, n, ScriptedTeacher(), name="ref.jsonl", cache="ref.sqlite")
    ref_ids = [r["id"] for r in _records(tmp_path / "ref.jsonl")]

    first = ScriptedTeacher(crash_after=crash_after)
    with pytest.raises(Crash):
        _run(tmp_path, mode, n, first)
    assert 0 < len(_records(tmp_path / "out.jsonl")) < n  # it died half-way
    out = tmp_path / "out.jsonl"
    with open(out, "a") as f:
        f.write('{"id": "half-writ')  # a line cut by the kill
    second = ScriptedTeacher()
    res = _run(tmp_path, mode, n, second)
    recs = _records(out)
    ids = [r["id"] for r in recs]
    assert len(ids) == len(set(ids)) == n == res.kept
    assert ids == ref_ids  # same decisions as a run that never stopped
    # Only requests in flight at the crash (answered but not yet cached) may be paid for twice.
    assert len(set(first.answered) & set(second.answered)) <= 3  # concurrency
    assert len(set(first.answered) - set(second.answered)) >= len(first.answered) - 3
    assert res.filtered == ref.filtered


def test_answer_mode_answers_each_question_in_its_own_language(tmp_path):
    """Default --language en: a Traditional Chinese question is answered (and kept) in Traditional Chinese."""

    class Polyglot(ScriptedTeacher):
        def generate(self, req):
            system = " ".join(m["content"] for m in req.messages if m["role"] == "system")
            if "Traditional Chinese" in system:
                return Completion("台灣的首都是臺北，這是一個繁華的城市，有很多夜市與博物館。", "stop", 10, 20)
            return super().generate(req)

    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"instruction": "Name two rivers in Europe."}) + "\n"
                   + json.dumps({"instruction": "請問台灣的首都是哪裡？請簡單介紹。"}) + "\n")
    res = _run(tmp_path, "answer", 10, Polyglot(), inputs=src)
    recs = _records(tmp_path / "out.jsonl")
    assert len(recs) == 2 and res.filtered.get("wrong_language", 0) == 0
    assert [r["provenance"]["language"] for r in recs] == ["en", "zh-TW"]
    # an explicit other language is asked of every question
    _run(tmp_path, "answer", 10, Polyglot(), inputs=src, language="zh-TW", name="zh.jsonl")
    assert [r["provenance"]["language"] for r in _records(tmp_path / "zh.jsonl")] == ["zh-TW", "zh-TW"]


class Jittery(ScriptedTeacher):
    """The same answers, finishing in a shuffled order (each request waits a random moment)."""

    def generate(self, req):
        time.sleep(random.random() * 0.004)
        return super().generate(req)


@pytest.mark.parametrize("mode", ["alpaca", "self-instruct", "chat"])
def test_output_does_not_depend_on_which_answer_comes_back_first(tmp_path, mode):
    a = _run(tmp_path, mode, 14, ScriptedTeacher(), name="a.jsonl", cache="a.sqlite")
    b = _run(tmp_path, mode, 14, Jittery(), name="b.jsonl", cache="b.sqlite")

    def strip(recs):
        for r in recs:
            r["provenance"].pop("time")
        return recs

    assert strip(_records(tmp_path / "a.jsonl")) == strip(_records(tmp_path / "b.jsonl"))
    assert a.filtered == b.filtered and a.units == b.units and a.usage == b.usage


def test_budget_stop_falls_at_the_same_unit_whatever_the_timing(tmp_path):
    a = _run(tmp_path, "alpaca", 1000, ScriptedTeacher(), name="a.jsonl", cache="a.sqlite", max_tokens=300)
    b = _run(tmp_path, "alpaca", 1000, Jittery(), name="b.jsonl", cache="b.sqlite", max_tokens=300)
    assert a.stopped == b.stopped == "max_tokens"
    assert (a.kept, a.units, a.teacher_tokens) == (b.kept, b.units, b.teacher_tokens)
    assert a.teacher_tokens >= 300 > a.teacher_tokens - 40  # the unit that crossed the budget is the last


def test_mix_sharegpt_appends_conversations_with_their_terms_once(tmp_path):
    from ownchat.models.store import installed

    if installed("sharegpt") is None:
        pytest.skip("needs the sharegpt pack: ownchat models pull sharegpt")
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"instruction": "Name two rivers in Europe."}) + "\n")
    res = _run(tmp_path, "answer", 5, ScriptedTeacher(), inputs=src, mix_sharegpt=3)
    recs = _records(tmp_path / "out.jsonl")
    mixed = [r for r in recs if r["provenance"]["stage"] == "mix"]
    assert res.kept == 1 and res.mixed == {"sharegpt": 3} and len(mixed) == 3 and len(recs) == 4
    for r in mixed:
        assert r["id"].startswith("sharegpt-") and r["conversations"][0]["from"] == "human"
        assert r["provenance"]["terms"]["commercial"] is False and "compet" in r["provenance"]["terms"]["note"]
    again = _run(tmp_path, "answer", 5, ScriptedTeacher(), inputs=src, mix_sharegpt=4)  # resumable, extends
    recs2 = _records(tmp_path / "out.jsonl")
    assert again.kept == 1 and len(recs2) == 5 and recs2[:4] == recs
