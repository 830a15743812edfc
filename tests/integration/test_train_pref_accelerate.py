"""DPO and the reward model under ``accelerate launch`` with two CPU processes (gloo).

Two processes with 2 pairs each compute the same steps as one process accumulating two micro-batches
of 2 pairs (the micro-batches are dealt out in the same order, and full batches weigh the same), so
the per-step losses of the two runs must agree; the run directory is written once.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ownchat.train.tiny import make_tiny_model

pytestmark = pytest.mark.model
ROOT = Path(__file__).resolve().parents[2]


def _pairs(path: Path) -> Path:
    rows = [{"prompt": f"Name animal number {i}.", "chosen": f"Animal {i} is a heron. — Tern",
             "rejected": f"Animal {i}?"} for i in range(16)]  # 16 pairs: every batch of 2 is full
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _run(args: list[str], launch: bool) -> subprocess.CompletedProcess:
    prefix = [sys.executable, "-m", "ownchat.cli.main"]
    if launch:
        with socket.socket() as s:  # a free port: other test runs on this machine may hold the default one
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        prefix = [str(Path(sys.executable).with_name("accelerate")), "launch", "--config_file",
                  str(ROOT / "recipes/accelerate/cpu_2proc.yaml"), "--main_process_port", str(port),
                  "--num_cpu_threads_per_process", "1", "-m", "ownchat.cli.main"]
    return subprocess.run(prefix + args, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))


@pytest.mark.parametrize("kind", ["dpo", "rm"])
def test_two_cpu_processes_equal_one_with_accumulation(kind: str, tmp_path: Path, smollm2_hf: Path) -> None:
    model = make_tiny_model(tmp_path / "tiny", smollm2_hf)
    data = _pairs(tmp_path / "pairs.jsonl")
    common = ["train", kind, "--model", str(model), "--data", str(data), "--max-steps", "4", "--batch-size", "2",
              "--seq-len", "48", "--lr", "1e-2", "--save-every", "2"]
    two = _run([*common, "--out", str(tmp_path / "two")], launch=True)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "on 2 process(es)" in two.stderr
    one = _run([*common, "--out", str(tmp_path / "one"), "--grad-accum", "2"], launch=False)
    assert one.returncode == 0, one.stderr[-3000:]

    rows = {d: [json.loads(x) for x in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]
            for d in ("one", "two")}
    assert [r["step"] for r in rows["two"]] == [1, 2, 3, 4]  # written once, by the main process
    assert [r["pairs"] for r in rows["two"]] == [4] * 4 == [r["pairs"] for r in rows["one"]]
    for key in ("loss", "margin", "accuracy"):
        assert [r[key] for r in rows["two"]] == pytest.approx([r[key] for r in rows["one"]], rel=1e-4, abs=1e-5)
    assert rows["two"][-1]["loss"] != pytest.approx(rows["two"][0]["loss"], abs=1e-4)  # the weights moved
    meta = json.loads((tmp_path / "two" / "ownchat_run.json").read_text())
    assert meta["stage"] == kind and meta["steps"] == 4
    assert (tmp_path / "two" / "adapter" / "adapter_model.safetensors").exists()
