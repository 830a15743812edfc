"""`ownchat run` end to end with fake stages in place of the models: plan, run, report, re-run, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ownchat.recipe.api as api
from ownchat.recipe.plan import Estimate, Stage, StageContext, StageResult

RECIPE = Path(__file__).parents[2] / "recipes" / "quickstart-tiny.yaml"


class FakeStage(Stage):
    kind = "fake"
    calls: list[str] = []
    fail_on: str | None = None

    def __init__(self, name, deps=(), model=False):
        super().__init__(name, deps)
        self.model = model

    def estimate(self, speeds):
        return Estimate(seconds=30, tokens_in=10, tokens_out=5, note="fake")

    def run(self, ctx: StageContext) -> StageResult:
        FakeStage.calls.append(self.name)
        if self.name == FakeStage.fail_on:
            raise RuntimeError("stage exploded")
        (ctx.dir / "out.txt").write_text(self.name)
        arts = {"model": ctx.rel(ctx.dir)} if self.model else {}
        return StageResult(summary={"value": 1.5}, artifacts=arts,
                           usage={"teacher": {"requests": 2, "prompt_tokens": 10, "completion_tokens": 5}})


@pytest.fixture
def fake_graph(monkeypatch, tmp_path):
    FakeStage.calls, FakeStage.fail_on = [], None
    monkeypatch.setattr(api, "build_stages", lambda r: [
        FakeStage("synth"), FakeStage("data", ("synth",)), FakeStage("sft:smollm2", ("data",), model=True),
        FakeStage("export:smollm2", ("sft:smollm2",), model=True)])
    monkeypatch.setenv("OWNCHAT_HOME", str(tmp_path / "home"))  # measured speeds land here, not in ~/.cache


def _run(*args):
    from ownchat.cli.main import app

    return CliRunner().invoke(app, list(args))


def test_run_report_rerun_and_report_only(tmp_path, fake_graph):
    out = tmp_path / "run"
    res = _run("run", str(RECIPE), "--out", str(out))
    assert res.exit_code == 0, res.output
    assert FakeStage.calls == ["synth", "data", "sft:smollm2", "export:smollm2"]
    assert "[1/4] synth" in res.output and "ownchat serve" in res.output
    assert (out / "report.html").exists() and (out / "MODEL_CARD.md").exists()
    assert (out / "recipe.yaml").read_text() == RECIPE.read_text()
    info = json.loads((out / "run.json").read_text())
    assert info["serve"]["smollm2"].startswith(f"ownchat serve {out}/stages/export-smollm2")
    assert info["verdicts"] == {"smollm2": "cleared"} and info["left_machine"] is False

    FakeStage.calls.clear()
    dry = _run("run", str(RECIPE), "--out", str(out), "--dry-run")
    assert dry.exit_code == 0 and dry.output.count("up to date") == 4
    again = _run("run", str(RECIPE), "--out", str(out))
    assert again.exit_code == 0 and FakeStage.calls == [] and "skipped 4 up to date" in again.output

    (out / "report.html").unlink()
    rep = _run("run", str(RECIPE), "--out", str(out), "--report-only")
    assert rep.exit_code == 0 and (out / "report.html").exists() and FakeStage.calls == []


def test_a_failed_stage_leaves_a_report_and_resumes(tmp_path, fake_graph):
    out = tmp_path / "run"
    FakeStage.fail_on = "sft:smollm2"
    res = _run("run", str(RECIPE), "--out", str(out))
    assert res.exit_code != 0
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "failed" and "stage exploded" in info["error"]
    assert "Run the same command again to resume" in (out / "report.html").read_text()
    FakeStage.calls.clear()
    FakeStage.fail_on = None
    dry = _run("run", str(RECIPE), "--out", str(out), "--dry-run")
    assert "resume" in dry.output
    ok = _run("run", str(RECIPE), "--out", str(out))
    assert ok.exit_code == 0 and FakeStage.calls == ["sft:smollm2", "export:smollm2"]


def test_invalid_recipe_is_a_clean_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstudents:\n  - {name: s, base: nope-model}\nsft: {lr: fast}\n")
    res = _run("run", str(bad), "--dry-run")
    assert res.exit_code == 2
    assert "bad.yaml:3" in res.output and "bad.yaml:4" in res.output and "Traceback" not in res.output
