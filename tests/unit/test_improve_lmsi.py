"""LMSI without a model: filtering by vote share, the four training layouts, the whole loop's files."""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest
from improve_fakes import QuestionEngine, write_gsm

import ownchat.engines
import ownchat.improve.lmsi as lmsi
from ownchat.data.formats import to_messages
from ownchat.errors import UserError
from ownchat.improve.prompts import FORMATS
from ownchat.improve.sc import Sample, SCResult
from ownchat.improve.vote import majority_vote


def _result(answers: list[str | None], finish: str = "stop") -> SCResult:
    samples = [Sample(k, f"Reasoning {k}. The answer is {a}.", a, finish) for k, a in enumerate(answers)]
    return SCResult(majority_vote(answers), samples)


def test_select_rationales_respects_tau_and_completeness() -> None:
    res = _result(["5", "5", "5", "2"])
    assert [s.k for s in lmsi.select_rationales(res, 0.75, 4)] == [0, 1, 2]
    assert lmsi.select_rationales(res, 0.8, 4) == []  # 3/4 < 0.8
    assert [s.k for s in lmsi.select_rationales(res, 0.5, 2)] == [0, 1]
    assert lmsi.select_rationales(_result(["5", "5"], finish="length"), 0.5, 4) == []  # truncated
    dup = SCResult(majority_vote(["5", "5"]), [Sample(0, "same. The answer is 5.", "5"),
                                               Sample(1, "same. The answer is 5.", "5")])
    assert len(lmsi.select_rationales(dup, 0.5, 4)) == 1  # duplicates add nothing


def test_training_records_cover_the_four_layouts() -> None:
    kept = lmsi.select_rationales(_result(["5", "5", "5"]), 0.6, 2)
    recs = lmsi.build_training_records("How many?", "5", kept, tuple(FORMATS), 3, {"index": 9})
    by_fmt = {f: [r for r in recs if r["lmsi"]["format"] == f] for f in FORMATS}
    assert [len(by_fmt[f]) for f in FORMATS] == [2, 1, 2, 1]  # CoT: per rationale; direct: per question
    for r in recs:
        msgs = to_messages(r)  # valid OpenAI-messages training records
        assert msgs[-1]["role"] == "assistant" and msgs[-1]["content"].endswith("The answer is 5.")
        assert sum(m["role"] == "assistant" for m in msgs) == 1  # only the model's own answer is supervised
    assert "Worked examples" in by_fmt["fewshot_cot"][0]["messages"][1]["content"]
    assert "Worked examples" not in by_fmt["zeroshot_direct"][0]["messages"][1]["content"]
    assert by_fmt["zeroshot_direct"][0]["messages"][-1]["content"] == "The answer is 5."


@dataclass
class FakeTrainResult:
    out_dir: Path
    final_loss: float


def test_full_loop_with_fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [(f"Eval {i}?", str(i)) for i in range(3)] + [(f"Pool {i}?", "0") for i in range(4)]
    test_file = write_gsm(tmp_path / "test.jsonl", rows)
    monkeypatch.setattr(lmsi, "test_set_path", lambda: test_file)
    answers = {f"Eval {i}?": [str(i), str(i), "8", "8"] for i in range(3)}
    answers |= {"Pool 0?": ["1", "1", "1", "1"], "Pool 1?": ["1", "2", "3", "2"],
                "Pool 2?": ["4", "4", "4", "5"], "Pool 3?": ["6", "7", "8", "9"]}
    engines: list[str] = []

    def fake_load_engine(model, engine=None, **kw):
        engines.append(model)
        return QuestionEngine(answers)

    trained: list = []

    def fake_train_sft(cfg, log=print):
        trained.append(cfg)
        cfg.out.mkdir(parents=True)
        (cfg.out / "ownchat_run.json").write_text(json.dumps({"base": cfg.model, "final_loss": 1.5}))
        return FakeTrainResult(cfg.out, 1.5)

    monkeypatch.setattr(ownchat.engines, "load_engine", fake_load_engine)
    monkeypatch.setitem(sys.modules, "ownchat.train.sft",
                        types.SimpleNamespace(SFTConfig=_FakeSFTConfig, train_sft=fake_train_sft))
    cfg = lmsi.LMSIConfig(model="base", out=tmp_path / "run", eval_size=3, k=3, tau=0.6, eval_sc_k=3,
                          max_steps=2, engine=None)
    # eval block is [0, 3) but EVAL_SIZE (300) exceeds this tiny file: pool from an explicit file instead
    pool_file = tmp_path / "pool.jsonl"
    pool_file.write_text("".join(json.dumps({"question": q}) + "\n" for q, _ in rows[3:]))
    cfg.questions = str(pool_file)
    res = lmsi.run_lmsi(cfg, log=lambda *_: None)
    # samples 1..3 of each pool question: Pool 0 -> 1,1,1 (kept), Pool 1 -> 2,3,2 (2/3 kept),
    # Pool 2 -> 4,4,5 (kept), Pool 3 -> 7,8,9 (1/3 dropped)
    assert res.pool == 4 and res.kept_questions == 3
    train = [json.loads(line) for line in (cfg.out / "train.jsonl").read_text().splitlines()]
    assert {r["lmsi"]["answer"] for r in train} == {"1", "2", "4"}
    assert all(r["provenance"]["labels_used"] is False for r in train)
    assert trained[0].data == [cfg.out / "train.jsonl"] and trained[0].method == "lora"
    assert engines == ["base", str(cfg.out / "run")]  # sampling + before on the base; after on the run dir
    split = json.loads((cfg.out / "split.json").read_text())
    assert split["disjoint"] and split["pool_size"] == 4
    for name in ("samples.jsonl", "pool_votes.jsonl", "train.jsonl", "eval-before/summary.json",
                 "eval-after/summary.json", "report.md", "report.json", "report.png", "lmsi.json"):
        assert (cfg.out / name).exists(), name
    assert "LMSI + Self-consistency" in (cfg.out / "report.md").read_text()
    # resume: the trained run is reused, nothing is sampled again
    again = lmsi.run_lmsi(cfg, log=lambda *_: None)
    assert len(trained) == 1 and again.kept_questions == 3


def test_pool_sharing_an_eval_question_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    test_file = write_gsm(tmp_path / "test.jsonl", [("Eval 0?", "1"), ("Eval 1?", "2")])
    monkeypatch.setattr(lmsi, "test_set_path", lambda: test_file)
    pool = tmp_path / "pool.jsonl"
    pool.write_text(json.dumps({"question": "eval 1?"}) + "\n")
    cfg = lmsi.LMSIConfig(model="base", out=tmp_path / "r", questions=str(pool), eval_size=2)
    with pytest.raises(UserError, match="evaluation subset"):
        lmsi.run_lmsi(cfg, log=lambda *_: None)


@dataclass
class _FakeSFTConfig:
    model: str
    data: list
    out: Path
    method: str = "lora"
    max_steps: int | None = None
    lr: float = 2e-4
    batch_size: int = 4
    seq_len: int = 512
    lora_r: int = 8
    seed: int = 0
    eval_fraction: float = 0.05


@pytest.mark.parametrize(("rationale", "target"), [
    ("9 * 2 = 18. So the answer is $18", "9 * 2 = 18. The answer is 18."),
    ("9 * 2 = 18. The answer is 18.", "9 * 2 = 18. The answer is 18."),
    ("Steps.\nAnswer: 18 dollars", "Steps. The answer is 18."),
    ("She has 18", "She has 18. The answer is 18."),
])
def test_training_target_ends_with_one_canonical_sentence(rationale: str, target: str) -> None:
    from ownchat.improve.prompts import ensure_final_sentence

    assert ensure_final_sentence(rationale, "18") == target
