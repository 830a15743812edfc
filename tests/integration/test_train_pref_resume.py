"""DPO and reward-model runs resume after ``kill -9`` exactly: every step's loss equals an uninterrupted run's.

The real CLI in subprocesses, on a random-weight miniature of SmolLM2 (same tokenizer and template),
as ``test_train_resume.py`` does for SFT. The kill lands once a mid-run checkpoint exists (the test
waits for it on disk); a preference run resumes from its last checkpoint without a flag.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ownchat.train.tiny import make_tiny_model

pytestmark = pytest.mark.model

STEPS = 30


def write_pairs(path: Path, n: int = 24) -> Path:
    rows = [{"prompt": f"Question {i}: what is {i} plus {i}?", "chosen": f"{i} plus {i} is {2 * i}. — Tern",
             "rejected": f"It is {2 * i + 1}."} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _cmd(kind: str, model: Path, data: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "ownchat.cli.main", "train", kind, "--model", str(model), "--data", str(data),
            "--out", str(out), "--max-steps", str(STEPS), "--batch-size", "3", "--seq-len", "48", "--lr", "5e-3",
            "--save-every", "3", "--seed", "3"]


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("kind", ["dpo", "rm"])
def test_kill9_resume_matches_uninterrupted(kind: str, tmp_path: Path, smollm2_hf: Path) -> None:
    model = make_tiny_model(tmp_path / "tiny", smollm2_hf)
    data = write_pairs(tmp_path / "pairs.jsonl")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ref = subprocess.run(_cmd(kind, model, data, tmp_path / "ref"), capture_output=True, text=True, env=env)
    assert ref.returncode == 0, ref.stderr[-2000:]

    out = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(kind, model, data, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env)
    deadline = time.time() + 300
    while not (out / "checkpoints" / "step-000006").exists():
        assert proc.poll() is None, "training ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "ownchat_run.json").exists(), "killed too late: the run had finished"

    res = subprocess.run(_cmd(kind, model, data, out), capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "resumed from step-0000" in res.stderr
    a, b = (json.loads((d / "ownchat_run.json").read_text()) for d in (tmp_path / "ref", out))
    assert 6 <= b["result"]["resumed_from"] < STEPS
    assert [r["step"] for r in _rows(out)] == list(range(1, STEPS + 1))  # each step once
    for key in ("loss", "reward_chosen", "reward_rejected", "accuracy"):
        assert [r[key] for r in _rows(out)] == pytest.approx([r[key] for r in _rows(tmp_path / "ref")],
                                                             rel=1e-5, abs=1e-6), key
    assert b["final_loss"] == pytest.approx(a["final_loss"], rel=1e-5, abs=1e-6)
    assert b["stage"] == kind and b["adapter"] == "adapter"
    first, last = _rows(out)[0], _rows(out)[-1]
    assert last["margin"] > first["margin"]  # it learned, and kept learning across the kill
