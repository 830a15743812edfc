"""Real models: self-consistency on llama.cpp and the whole LMSI loop on SmolLM2 (tiny budgets).

Accuracy near zero is expected from a 135M model; these tests check that every stage runs on real
weights and writes what it promises: samples, training data, adapter run, before/after evals, report.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ownchat.cli.main import app

pytestmark = pytest.mark.model


def _gsm_file(path: Path, n: int) -> Path:
    from ownchat.improve.gsm8k import test_set_path

    lines = test_set_path().read_text().splitlines()[:n]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_improve_sc_cli_on_llamacpp(tmp_path: Path, smollm2_gguf: Path) -> None:
    questions = _gsm_file(tmp_path / "q.jsonl", 2)
    out = tmp_path / "sc"
    res = CliRunner().invoke(app, ["improve", "sc", "-m", "smollm2-135m-instruct", "-q", str(questions),
                                   "--k", "3", "--max-tokens", "24", "--shots", "1", "--no-cache",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in (out / "sc.jsonl").read_text().splitlines()]
    assert sorted(r["index"] for r in rows) == [0, 1]
    for r in rows:
        assert r["k"] == 3 and 0.0 <= r["confidence"] <= 1.0 and "gold" in r
        assert sum(r["votes"].values()) <= 3
    assert json.loads((out / "summary.json").read_text())["accuracy"]["n"] == 2


def test_lmsi_loop_smoke_on_smollm2(tmp_path: Path, smollm2_hf: Path) -> None:
    out = tmp_path / "lmsi"
    args = ["improve", "lmsi", "-m", "smollm2-135m-instruct", "--pool-size", "4", "--k", "2", "--tau", "0",
            "--keep-truncated", "--max-tokens", "24", "--shots", "1", "--eval-size", "3", "--eval-sc", "2",
            "--max-steps", "2", "--batch-size", "2", "--seq-len", "320", "--no-cache", "--out", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    samples = (out / "samples.jsonl").read_text().splitlines()
    assert len(samples) == 4 * 2
    train = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    assert train and {r["lmsi"]["format"] for r in train} == {"fewshot_cot", "fewshot_direct", "zeroshot_cot",
                                                              "zeroshot_direct"}
    run = json.loads((out / "run" / "ownchat_run.json").read_text())
    assert run["adapter"] and (out / "run" / run["adapter"]).is_dir()
    split = json.loads((out / "split.json").read_text())
    assert split["disjoint"] and split["eval_range"] == [0, 3] and "[300," in split["pool_source"]
    for phase in ("before", "after"):
        summary = json.loads((out / f"eval-{phase}" / "summary.json").read_text())
        assert summary["n"] == 3 and summary["greedy"]["n"] == 3 and summary["sc"]["n"] == 3
    before = json.loads((out / "eval-before" / "config.json").read_text())["model"]
    after = json.loads((out / "eval-after" / "config.json").read_text())["model"]
    assert before == "smollm2-135m-instruct" and after == str(out / "run")
    report = (out / "report.md").read_text()
    assert "LMSI + Greedy CoT" in report and "disjoint" in report
    assert (out / "report.png").stat().st_size > 0 and (out / "accuracy_vs_k.png").exists()
