"""Recipe fields synth.constraints / synth.mix_sharegpt: validated, passed to synth, in the licence ledger."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ownchat.recipe.ledger import licence_ledger
from ownchat.recipe.load import RecipeError, load_recipe


def _recipe(tmp_path: Path, synth: str):
    p = tmp_path / "r.yaml"
    p.write_text(textwrap.dedent(f"""\
        name: t
        teacher: {{model: qwen2.5-coder-1.5b-instruct}}
        students: [{{name: a, base: smollm2-135m-instruct}}]
        synth: {synth}
        """))
    return load_recipe(p)


def test_constraints_need_answer_mode(tmp_path):
    r = _recipe(tmp_path, "{method: answer, constraints: true, constraint_samples: 3}")
    assert r.synth.constraints and r.synth.constraint_samples == 3
    with pytest.raises(RecipeError) as info:
        _recipe(tmp_path, "{method: alpaca, constraints: true}")
    err = info.value.errors[0]
    assert err.line == 4 and "method: answer" in err.problem


def test_rewrites_need_constraints(tmp_path):
    assert _recipe(tmp_path, "{method: answer, constraints: true, rewrites: 3}").synth.rewrites == 3
    with pytest.raises(RecipeError) as info:
        _recipe(tmp_path, "{method: answer, rewrites: 3}")
    assert "constraints: true" in info.value.errors[0].problem


def test_sharegpt_mix_is_in_the_ledger_and_blocks_clearance(tmp_path):
    clean = licence_ledger(_recipe(tmp_path, "{method: answer}"))["students"]["a"]
    assert clean["verdict"] == "cleared"
    mixed = licence_ledger(_recipe(tmp_path, "{method: answer, mix_sharegpt: 50}"))["students"]["a"]
    assert mixed["verdict"] == "not cleared"
    item = next(i for i in mixed["items"] if "sharegpt" in i["what"])
    assert item["binding"] and item["terms"]["commercial"] is False and "competing" in item["terms"]["note"]
    assert "sharegpt pack" in mixed["text"]


def test_adapter_passes_the_fields_to_synth(tmp_path, monkeypatch):
    import ownchat.synth as synth
    from ownchat.recipe.plan import StageContext
    from ownchat.recipe.stages import SynthStage
    from ownchat.recipe.stages import synth as synth_adapter

    seen = {}

    def fake_run(cfg, log, engine, on_kept):
        seen["cfg"] = cfg
        from ownchat.synth.runner import SynthResult

        return SynthResult(cfg.out, cfg.out, 0, {}, 0, 0, {}, 0, 0.0, 0.0, "n_reached", [])

    class NoEngine:
        def close(self):
            pass

    monkeypatch.setattr(synth, "run_synth", fake_run)
    monkeypatch.setattr(synth_adapter, "open_engine", lambda spec, log: NoEngine())
    r = _recipe(tmp_path, "{method: answer, constraints: true, constraint_samples: 2, mix_sharegpt: 7}")
    stage = SynthStage(r)
    ctx = StageContext(run_dir=tmp_path, dir=tmp_path / "synth", results={}, log=lambda m: None)
    ctx.dir.mkdir()
    synth_adapter.run_synth_stage(stage, ctx)
    cfg = seen["cfg"]
    assert cfg.constraints and cfg.constraint_samples == 2 and cfg.mix_sharegpt == 7
