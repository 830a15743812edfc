"""`ownchat synth` end to end with the real SmolLM2 pack as teacher, and resume after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ownchat.data.dedup import DedupIndex
from ownchat.data.jsonl import split_lines
from ownchat.engines import CachedEngine, ResponseCache, load_engine
from ownchat.synth import FilterConfig, SynthConfig, run_synth
from ownchat.synth.filters import REASONS as FILTER_REASONS
from ownchat.synth.filters import Filters
from ownchat.synth.seedtasks import load_seeds

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def teacher(smollm2_gguf, tmp_path_factory):
    eng = load_engine("smollm2-135m-instruct", concurrency=4, log=lambda m: None)
    yield CachedEngine(eng, ResponseCache(tmp_path_factory.mktemp("cache") / "c.sqlite"))
    eng.close()


def _assert_kept_pass_filters(recs: list[dict], fc: FilterConfig) -> None:
    f = Filters(fc)
    index = DedupIndex(fc.rouge_threshold)
    for t in load_seeds(None, fc.language):
        index.force_add(t["instruction"])
    for r in recs:
        if "conversations" in r:
            first, answers = r["conversations"][0]["value"], [m["value"] for m in r["conversations"][1::2]]
        else:
            first, answers = r["instruction"], [r["output"]]
        assert f.check_instruction(first) is None, first
        assert all(f.check_output(a) is None for a in answers)
        assert index.add(first), f"kept a near-duplicate: {first!r}"
        assert r["provenance"]["teacher"] == "smollm2-135m-instruct"


@pytest.mark.parametrize("mode", ["self-instruct", "alpaca", "chat"])
def test_mode_end_to_end(teacher, tmp_path, mode):
    fc = FilterConfig(language="en")
    cfg = SynthConfig(mode=mode, out=tmp_path / "out.jsonl", n=3, concurrency=4, gen_tokens=160, turns=2,
                      batch_size=5, max_tokens=12_000, max_stalled_rounds=3, filters=fc)
    res = run_synth(cfg, log=lambda m: None, engine=teacher)
    recs = [json.loads(x) for x in split_lines(cfg.out.read_text())] if cfg.out.exists() else []
    assert res.kept == len(recs) <= 3
    assert res.stopped in ("n_reached", "max_tokens", "stalled")
    assert res.usage["requests"] > 0 and res.teacher_tokens > 0
    assert res.candidates >= res.kept
    assert sum(res.filtered.values()) + res.kept >= 1  # every candidate is either kept or counted
    _assert_kept_pass_filters(recs, fc)
    stats = json.loads(res.stats_path.read_text())
    assert stats["kept"] == res.kept and stats["stopped"] == res.stopped


def test_answer_mode(teacher, tmp_path):
    src = tmp_path / "q.jsonl"
    qs = ["Give one tip for staying focused while studying.", "Name a fruit that is yellow."]
    # a Self-Instruct seed task (the shipped seeds' format): its input lives in ``instances``
    seed = {"instruction": "Name the fruit described below.",
            "instances": [{"input": "It is long, curved and yellow.", "output": "A banana."}]}
    src.write_text("".join(json.dumps({"instruction": q}) + "\n" for q in qs) + json.dumps(seed) + "\n")
    cfg = SynthConfig(mode="answer", out=tmp_path / "a.jsonl", n=10, inputs=src, gen_tokens=96,
                      filters=FilterConfig(language="en"))
    res = run_synth(cfg, log=lambda m: None, engine=teacher)
    recs = [json.loads(x) for x in split_lines(cfg.out.read_text())]
    assert res.stopped == "input_exhausted" and len(recs) == res.kept
    assert res.kept + sum(res.filtered.values()) == 3
    assert all(r["instruction"] in [*qs, seed["instruction"]] and r["output"].strip() for r in recs)
    assert all(r["input"] == seed["instances"][0]["input"] for r in recs if r["instruction"] == seed["instruction"])


def test_resume_after_sigkill_at_a_record_boundary(smollm2_gguf, tmp_path):
    """kill -9 right after the 3rd record commits; the rerun loses and repeats nothing.

    The child parks itself after that commit (a record boundary the test waits for), so the kill
    always lands at the same place; only requests already in flight can be answered twice.
    """
    child = Path(__file__).with_name("synth_child.py")
    out, db, keys1, keys2 = (tmp_path / n for n in ("a.jsonl", "cache.sqlite", "k1.log", "k2.log"))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, str(child), str(out), str(db), str(keys1), "3"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    marker = out.with_name(out.name + ".paused")
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None and not marker.exists():
        time.sleep(0.2)
    assert marker.exists(), f"the child never reached 3 records: {proc.stderr.read()[-2000:] if proc.poll() else ''}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = [json.loads(x)["id"] for x in split_lines(out.read_text())]
    assert len(before) == 3  # exactly the boundary: nothing half-written
    stats = json.loads((tmp_path / "a.stats.json").read_text())
    assert stats["kept"] == 3 and stats["stopped"] is None
    done = subprocess.run([sys.executable, str(child), str(out), str(db), str(keys2)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    ids = [json.loads(x)["id"] for x in split_lines(out.read_text())]
    stats = json.loads((tmp_path / "a.stats.json").read_text())
    assert len(ids) == len(set(ids)) == stats["kept"] and ids[:3] == before
    assert stats["stopped"] == "input_exhausted" and stats["units_done"] == 8
    assert stats["kept"] + sum(stats["filtered"].values()) == 8  # every question kept or counted once
    paid_twice = set(keys1.read_text().split()) & set(keys2.read_text().split())
    assert len(paid_twice) <= 2  # at most the requests in flight at the kill (2 slots)
    # an uninterrupted run makes the same decisions (from the cache: it pays for nothing)
    keys3 = tmp_path / "k3.log"
    ref = subprocess.run([sys.executable, str(child), str(tmp_path / "ref.jsonl"), str(db), str(keys3)], env=env,
                         capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr[-2000:]
    assert [json.loads(x)["id"] for x in split_lines((tmp_path / "ref.jsonl").read_text())] == ids
    assert keys3.read_text() == ""


def test_answer_constraints_on_the_real_pack(teacher, tmp_path):
    """answer --constraints with SmolLM2: what is kept passes IFEval's checker; the rest is counted."""
    from ownchat.judge.ifeval_check import check

    src = tmp_path / "q.jsonl"
    qs = ["Describe a good morning routine for a student.", "Explain why the sky looks blue during the day.",
          "Give advice to someone learning to cook at home.", "Describe the water cycle for a child.",
          "Suggest ways to save money on groceries.", "Explain what a habit is and how to build one."]
    src.write_text("".join(json.dumps({"instruction": q}) + "\n" for q in qs))
    cfg = SynthConfig(mode="answer", out=tmp_path / "c.jsonl", n=10, inputs=src, gen_tokens=160, constraints=True,
                      constraint_samples=2, filters=FilterConfig(language="en"))
    res = run_synth(cfg, log=lambda m: None, engine=teacher)
    recs = [json.loads(x) for x in split_lines(cfg.out.read_text())] if cfg.out.exists() else []
    assert res.stopped == "input_exhausted" and len(recs) == res.kept
    assert res.kept + sum(res.filtered.values()) == len(qs)
    assert sum(res.checks.values()) >= len(qs)  # every answer that reached the checker was counted
    for r in recs:
        assert check(r["output"], r["instruction"], r["instruction_id_list"], r["kwargs"]).prompt_strict
        assert r["provenance"]["constraints"] and r["provenance"]["sample_index"] in (0, 1)
    for reason in res.filtered:
        assert reason.startswith("constraint_failed:") or reason in FILTER_REASONS, reason
