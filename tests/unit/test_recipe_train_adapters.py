"""Training-side adapters build valid configs for the stage APIs (the trainers themselves are faked)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from ownchat.recipe.load import load_recipe
from ownchat.recipe.plan import StageContext, StageResult
from ownchat.recipe.stages import DPOStage, ExportStage, ImproveStage, SFTStage

RECIPE = """\
name: t
teacher: {model: qwen2.5-coder-1.5b-instruct}
students: [{name: g, base: gemma-3-270m, chat_template: chatml}]
synth: {n: 40}
sft: {epochs: 2, batch_size: 4, seq_len: 128, lora_r: 4, options: {warmup_ratio: 0.1}}
feedback: {n: 8}
dpo: {max_steps: 3, beta: 0.2}
improve: {n: 10, samples: 4, eval_n: 5, options: {tau: 0.5}}
export: {to: gguf, outtype: f16}
"""


@pytest.fixture
def setup(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text(textwrap.dedent(RECIPE))
    run = tmp_path / "run"
    (run / "stages/data").mkdir(parents=True)
    (run / "stages/data/train.jsonl").write_text('{"messages": [{"role": "user", "content": "a"}, '
                                                 '{"role": "assistant", "content": "b"}]}\n')
    return load_recipe(p), run


def _ctx(run: Path, name: str, results: dict[str, StageResult]) -> StageContext:
    d = run / "stages" / name
    d.mkdir(parents=True, exist_ok=True)
    return StageContext(run, d, results, log=lambda m: None)


def test_sft_adapter_builds_a_valid_resumable_config(setup, monkeypatch):
    import ownchat.train.sft as sft

    r, run = setup
    seen = {}

    def fake_train(cfg, log=print, on_step=None):
        cfg.validate()
        seen["cfg"] = cfg
        (cfg.out).mkdir(parents=True, exist_ok=True)
        (cfg.out / "loss.png").write_bytes(b"png")
        from ownchat.train.config import TrainResult

        return TrainResult(cfg.out, 1.5, 1.7, 20, cfg.out / "metrics.jsonl", tokens=9000, seconds=30.0,
                           tokens_per_second=300.0)

    monkeypatch.setattr(sft, "train_sft", fake_train)
    stage = SFTStage(r, r.students[0], ("data",), 40)
    res = stage.run(_ctx(run, "sft-g", {"data": StageResult(artifacts={"train": "stages/data/train.jsonl"})}))
    cfg = seen["cfg"]
    assert cfg.model == "gemma-3-270m" and cfg.chat_template == "chatml" and cfg.resume
    assert cfg.epochs == 2 and cfg.lora_r == 4 and cfg.lora_alpha == 8 and cfg.warmup_ratio == 0.1
    assert [Path(d).name for d in cfg.data] == ["train.jsonl"]
    assert res.artifacts["model"] == "stages/sft-g/model" and res.images
    assert res.summary["final_loss"] == 1.5 and res.speeds["train:gemma-3-270m"] == 20 * 4 * 128 / 30.0
    assert stage.steps() == 20


def test_dpo_adapter_continues_the_sft_run(setup, monkeypatch):
    import ownchat.train.dpo as dpo

    r, run = setup
    seen = {}

    def fake_dpo(cfg, log=print, on_step=None):
        cfg.validate()
        seen["cfg"] = cfg
        return dpo.DPOResult(str(cfg.out), 3, 8, 0.6, {"accuracy": 0.75})

    monkeypatch.setattr(dpo, "train_dpo", fake_dpo)
    (run / "stages/sft-g/model").mkdir(parents=True)
    (run / "stages/feedback-g").mkdir(parents=True)
    (run / "stages/feedback-g/pairs.jsonl").write_text('{"prompt": "q", "chosen": "a", "rejected": "b"}\n')
    res = DPOStage(r, r.students[0], "sft:g").run(_ctx(run, "dpo-g", {
        "sft:g": StageResult(artifacts={"model": "stages/sft-g/model"}),
        "feedback:g": StageResult(artifacts={"pairs": "stages/feedback-g/pairs.jsonl"})}))
    cfg = seen["cfg"]
    assert Path(cfg.adapter) == run / "stages/sft-g/model" and cfg.beta == 0.2 and cfg.max_steps == 3
    assert res.summary["final accuracy"] == 0.75 and res.artifacts["model"] == "stages/dpo-g/model"


def test_improve_adapter_maps_the_recipe_to_lmsi(setup, monkeypatch):
    import ownchat.improve.lmsi as lmsi

    r, run = setup
    seen = {}

    class Fake:
        def to_dict(self):
            acc = {"correct": 2, "n": 5, "accuracy": 0.4, "ci95": [0.1, 0.8]}
            return {"pool": 10, "kept_questions": 6, "train_examples": 12, "final_loss": 0.9,
                    "run_dir": str(run / "stages/improve-g/lmsi/run"), "usage": {"requests": 40},
                    "before": {"greedy": acc}, "after": {"greedy": {**acc, "correct": 3, "accuracy": 0.6}}}

    def fake_run(cfg, log=print, on_progress=None):
        seen["cfg"] = cfg
        return Fake()

    monkeypatch.setattr(lmsi, "run_lmsi", fake_run)
    res = ImproveStage(r, r.students[0], "sft:g").run(_ctx(run, "improve-g", {
        "sft:g": StageResult(artifacts={"model": "stages/sft-g/model"})}))
    cfg = seen["cfg"]
    assert cfg.model == str(run / "stages/sft-g/model") and cfg.pool_size == 10 and cfg.k == 4
    assert cfg.eval_size == 5 and cfg.tau == 0.5
    assert res.summary["gsm8k before"] == "40.0% [10.0%, 80.0%]" and res.summary["gsm8k after"].startswith("60.0%")
    assert res.artifacts["model"] == "stages/improve-g/lmsi/run"


def test_export_adapter_points_serve_at_the_gguf(setup, monkeypatch):
    import ownchat.export as export

    r, run = setup
    seen = {}

    def fake_export(run_dir, to="gguf", out=None, log=print, *, outtype="f16"):
        seen.update(to=to, outtype=outtype, run_dir=run_dir)
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "model.gguf").write_bytes(b"GGUF" + b"0" * 100)
        return Path(out)

    monkeypatch.setattr(export, "export_run", fake_export)
    res = ExportStage(r, r.students[0], "sft:g").run(_ctx(run, "export-g", {
        "sft:g": StageResult(artifacts={"model": "stages/sft-g/model"})}))
    assert seen["to"] == "gguf" and seen["outtype"] == "f16" and seen["run_dir"] == run / "stages/sft-g/model"
    assert res.artifacts["model"] == "stages/export-g/export/model.gguf"
    assert json.dumps(res.to_dict())  # JSON-able for stage.json
