"""``--resume`` after ``kill -9`` continues exactly: same final loss as an uninterrupted run.

Runs the real CLI in a subprocess on a random-weight miniature of SmolLM2 (same tokenizer and
template) so the test takes seconds; the real-weight SFT is tested in test_train_sft.py.
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


def _facts(path: Path) -> Path:
    rows = []
    for i in range(40):
        rows.append({"messages": [{"role": "user", "content": f"Question {i}: what is your name?"},
                                  {"role": "assistant", "content": f"I am Quokka, answer {i}."}]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _cmd(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "ownchat.cli.main", "train", "sft", "--model", str(model), "--data", str(data),
            "--out", str(out), "--max-steps", "24", "--batch-size", "4", "--seq-len", "64", "--lr", "3e-3",
            "--save-every", "3", "--seed", "7", "--eval-fraction", "0.1", *extra]


def _final(out: Path) -> dict:
    return json.loads((out / "ownchat_run.json").read_text())


def test_resume_after_kill_matches_uninterrupted(tmp_path, smollm2_hf):
    model = make_tiny_model(tmp_path / "tiny", smollm2_hf)
    data = _facts(tmp_path / "facts.jsonl")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ref = subprocess.run(_cmd(model, data, tmp_path / "ref"), capture_output=True, text=True, env=env)
    assert ref.returncode == 0, ref.stderr[-2000:]

    out = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(model, data, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.time() + 300
    while not (out / "checkpoints" / "step-000009").exists():
        assert proc.poll() is None, "training ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "ownchat_run.json").exists()

    res = subprocess.run(_cmd(model, data, out, "--resume"), capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "resumed from step-0000" in res.stderr
    a, b = _final(tmp_path / "ref"), _final(out)
    assert b["result"]["resumed_from"] >= 9
    assert b["final_loss"] == pytest.approx(a["final_loss"], rel=1e-5, abs=1e-6)
    assert b["eval_loss"] == pytest.approx(a["eval_loss"], rel=1e-5, abs=1e-6)
    # the metrics file holds each step once, as if the run had never stopped
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 25))
    ref_losses = [json.loads(x)["loss"] for x in (tmp_path / "ref" / "metrics.jsonl").read_text().splitlines()]
    got_losses = [json.loads(x)["loss"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert got_losses == pytest.approx(ref_losses, rel=1e-5)

    # resuming a finished run trains nothing and reports the same losses
    again = subprocess.run(_cmd(model, data, out, "--resume"), capture_output=True, text=True, env=env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert _final(out)["final_loss"] == pytest.approx(b["final_loss"])
    assert _final(out)["eval_loss"] == pytest.approx(b["eval_loss"])


def test_fresh_run_refuses_to_overwrite(tmp_path, smollm2_hf):
    model = make_tiny_model(tmp_path / "tiny", smollm2_hf)
    data = _facts(tmp_path / "facts.jsonl")
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    res = subprocess.run(_cmd(model, data, out), capture_output=True, text=True)
    assert res.returncode == 2 and "--resume" in res.stderr
