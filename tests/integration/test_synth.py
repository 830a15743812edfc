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
    src.write_text("".join(json.dumps({"instruction": q}) + "\n" for q in qs))
    cfg = SynthConfig(mode="answer", out=tmp_path / "a.jsonl", n=10, inputs=src, gen_tokens=96,
                      filters=FilterConfig(language="en"))
    res = run_synth(cfg, log=lambda m: None, engine=teacher)
    recs = [json.loads(x) for x in split_lines(cfg.out.read_text())]
    assert res.stopped == "input_exhausted" and len(recs) == res.kept
    assert res.kept + sum(res.filtered.values()) == 2
    assert all(r["instruction"] in qs and r["output"].strip() for r in recs)


def test_resume_after_sigkill(smollm2_gguf, tmp_path):
    """Kill -9 at a record boundary the test waits for, then resume: the same records, then the rest.

    Deterministic: the writer is frozen (SIGSTOP) once two records are on disk, the file is read while
    nothing can change it, and only then killed. Lines are split on "\n" only (model text written
    with ensure_ascii=False may hold U+2028, which str.splitlines would take for a line break).
    """
    out, db = tmp_path / "chat.jsonl", tmp_path / "cache.sqlite"
    cmd = [sys.executable, "-m", "ownchat.cli.main", "synth", "chat", "--teacher", "smollm2-135m-instruct",
           "--n", "6", "--turns", "1", "--concurrency", "2", "--gen-tokens", "64", "--out", str(out),
           "--cache-db", str(db), "--min-words", "2"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, frozen = time.time() + 300, False
    while time.time() < deadline and proc.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= 2:
            proc.send_signal(signal.SIGSTOP)  # frozen: the file cannot change between this read and the kill
            frozen = True
            break
        time.sleep(0.05)
    if not frozen:
        finished = proc.poll() is not None
        proc.kill()
        proc.wait()
        pytest.fail("finished before it could be killed; make the run longer" if finished
                    else "two records were not written within 300 s (is the machine overloaded?)")
    snapshot = out.read_bytes()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert out.read_bytes() == snapshot
    complete = snapshot[: snapshot.rfind(b"\n") + 1].decode()  # a half-written last line is not a record
    before = [json.loads(x)["id"] for x in split_lines(complete)]
    assert 2 <= len(before) < 6
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    ids = [json.loads(x)["id"] for x in split_lines(out.read_text())]
    assert len(ids) == len(set(ids)) == 6
    assert ids[: len(before)] == before
    stats = json.loads(Path(str(out).replace(".jsonl", ".stats.json")).read_text())
    assert stats["kept"] == 6 and stats["stopped"] == "n_reached"
