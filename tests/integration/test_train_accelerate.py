"""``accelerate launch`` with two CPU processes (gloo): one process group, batches split, one run dir."""

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


def test_two_cpu_processes(tmp_path, smollm2_hf):
    model = make_tiny_model(tmp_path / "tiny", smollm2_hf)
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"Count to {i}", "output": " ".join(map(str, range(i)))})
                            + "\n" for i in range(1, 30)))
    out = tmp_path / "run"
    accelerate = Path(sys.executable).with_name("accelerate")
    with socket.socket() as s:  # a free port: other test runs on this machine may hold the default one
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [str(accelerate), "launch", "--config_file", str(ROOT / "recipes/accelerate/cpu_2proc.yaml"),
           "--main_process_port", str(port),
           "--num_cpu_threads_per_process", "1", "-m", "ownchat.cli.main", "train", "sft", "--model", str(model),
           "--data", str(data), "--out", str(out), "--max-steps", "3", "--batch-size", "2", "--seq-len", "64",
           "--save-every", "2"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "on 2 process(es)" in res.stderr
    meta = json.loads((out / "ownchat_run.json").read_text())
    assert meta["steps"] == 3 and meta["final_loss"] > 0
    assert (out / "adapter" / "adapter_model.safetensors").exists()
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]  # written once (by the main process)
