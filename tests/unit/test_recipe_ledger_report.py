"""Shipped recipes pass --dry-run; licence/privacy ledgers; the self-contained HTML report."""

from __future__ import annotations

import base64
import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ownchat.recipe.api import plan_recipe, write_outputs
from ownchat.recipe.ledger import licence_ledger, privacy_ledger, remote_entry
from ownchat.recipe.load import load_recipe
from ownchat.recipe.plan import Speeds, StageResult

RECIPES = sorted((Path(__file__).parents[2] / "recipes").glob("*.yaml"))
# a 1x1 PNG
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def test_all_five_recipes_are_shipped():
    names = {p.name for p in RECIPES}
    assert {"quickstart.yaml", "alpaca.yaml", "vicuna.yaml", "zh-tw.yaml", "gsm8k-self-improve.yaml"} <= names


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_every_shipped_recipe_passes_dry_run(recipe, tmp_path):
    from ownchat.cli.main import app

    res = CliRunner().invoke(app, ["run", str(recipe), "--dry-run", "--out", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    assert "recipe is valid" in res.output and "total" in res.output
    assert not (tmp_path / "run").exists()  # a dry run writes nothing


def test_quickstart_plans_fit_their_time_budgets(tmp_path):
    speeds = Speeds(tmp_path / "s.json", device="cpu")
    full = plan_recipe(RECIPES[0].parent / "quickstart.yaml", tmp_path / "q", speeds=speeds)
    tiny = plan_recipe(RECIPES[0].parent / "quickstart-tiny.yaml", tmp_path / "t", speeds=speeds)
    assert full.seconds <= 30 * 60 and tiny.seconds <= 5 * 60
    assert full.remote_hosts == [] and {r.status for r in full.rows} == {"run"}
    kinds = [r.stage.kind for r in full.rows]
    assert kinds.count("sft") == 2 and "synth" in kinds and "export" in kinds and "judge" in kinds


def _recipe(tmp_path: Path, body: str):
    p = tmp_path / "r.yaml"
    p.write_text(textwrap.dedent(body))
    return load_recipe(p)


def test_licence_verdicts(tmp_path):
    (tmp_path / "dolly.jsonl").write_text('{"instruction": "a", "response": "b"}\n')
    (tmp_path / "mine.jsonl").write_text('{"instruction": "a", "output": "b"}\n')
    (tmp_path / "side.jsonl").write_text('{"instruction": "a", "output": "b"}\n')
    (tmp_path / "side.jsonl.license").write_text("CC-BY-NC-4.0\n")
    local = _recipe(tmp_path, """\
        name: t
        teacher: {model: qwen2.5-coder-1.5b-instruct}
        students: [{name: a, base: smollm2-135m-instruct}, {name: g, base: gemma-3-270m}]
        synth: {n: 4}
        data: [{path: dolly.jsonl, license: cc-by-sa-3.0}]
        """)
    led = licence_ledger(local)["students"]
    assert led["a"]["verdict"] == "cleared" and "CC BY-SA" in led["a"]["text"]
    assert led["g"]["verdict"] == "cleared" and "Gemma" in led["g"]["text"]
    openai = _recipe(tmp_path, """\
        name: t
        teacher: {model: gpt-4o-mini, base_url: https://api.openai.com/v1}
        students: [{name: a, base: smollm2-135m-instruct}]
        synth: {n: 4}
        data: [{path: mine.jsonl}, {path: side.jsonl}]
        """)
    a = licence_ledger(openai)["students"]["a"]
    assert a["verdict"] == "not cleared" and "OpenAI" in a["text"] and "CC BY-NC" in a["text"]
    roles = {i["what"]: i for i in a["items"]}
    assert roles["mine.jsonl"]["terms"]["commercial"] is None  # undeclared: unknown, not guessed
    assert roles["side.jsonl"]["source"] == "side.jsonl.license"
    judge_only = [i for i in a["items"] if i["role"] == "evaluation judge"]
    assert judge_only and not judge_only[0]["binding"]


def test_unknown_licence_blocks_clearance(tmp_path):
    (tmp_path / "mine.jsonl").write_text('{"instruction": "a", "output": "b"}\n')
    r = _recipe(tmp_path, """\
        name: t
        students: [{name: a, base: smollm2-135m-instruct}]
        data: [{path: mine.jsonl}]
        judge: null
        """)
    a = licence_ledger(r)["students"]["a"]
    assert a["verdict"] == "unknown" and "mine.jsonl has no known licence" in a["text"]


def test_privacy_ledger_is_empty_for_local_runs_and_lists_remote_hosts(tmp_path):
    r = load_recipe(RECIPES[0].parent / "quickstart.yaml")
    assert remote_entry(r.teacher, "teacher", {"requests": 5}, {"count": 5}) == []
    local = privacy_ledger({"synth": StageResult()}, ["synth"])
    assert not local["left_machine"] and local["entries"] == [] and "Nothing left" in local["text"]
    alp = load_recipe(RECIPES[0].parent / "alpaca.yaml")
    entries = remote_entry(alp.teacher, "teacher", {"requests": 7, "prompt_tokens": 70}, {"count": 7})
    assert entries[0]["host"] == "api.openai.com" and entries[0]["requests"] == 7
    led = privacy_ledger({"synth": StageResult(privacy=entries)}, ["synth"])
    assert led["left_machine"] and led["hosts"] == ["api.openai.com"] and "7 requests" in led["text"]


def test_report_is_one_self_contained_page(tmp_path):
    r = load_recipe(RECIPES[0].parent / "quickstart.yaml")
    run = tmp_path / "run"
    (run / "stages/sft-smollm2/model").mkdir(parents=True)
    (run / "stages/sft-smollm2/model/loss.png").write_bytes(PNG)
    results = {
        "data": StageResult(summary={"records": 180, "filters": {"input": 200, "dropped: refusal": 20}},
                            samples=[{"messages": [{"role": "user", "content": "hi <b>"},
                                                   {"role": "assistant", "content": "hello"}]}]),
        "sft:smollm2": StageResult(summary={"final_loss": 1.23}, artifacts={"model": "stages/sft-smollm2/model"},
                                   images={"SFT loss: smollm2": "stages/sft-smollm2/model/loss.png"}),
        "judge:smollm2": StageResult(summary={"comparisons": [{
            "a": "smollm2-tuned", "b": "smollm2-base", "judge": "qwen", "wins": 9, "ties": 3, "losses": 4,
            "win_rate": 0.66, "ci": [0.45, 0.84], "per_category": {"math": {"wins": 1, "ties": 0, "losses": 1,
                                                                            "win_rate": 0.5, "ci": [0, 1]}}}]},
            usage={"judge": {"requests": 32, "prompt_tokens": 19000, "completion_tokens": 2800}}),
    }
    info = {"status": "done", "seconds": 2400, "attempt": 1, "first_started": "now", "python": "3.11",
            "stages": [{"name": n, "status": "done", "seconds": 60, "estimate_seconds": 50, "summary": x.summary}
                       for n, x in results.items()]}
    run.mkdir(exist_ok=True)
    page = write_outputs(r, run, results, info, list(results)).read_text()
    assert "data:image/png;base64," + base64.b64encode(PNG).decode() in page
    assert "<script src" not in page and 'rel="stylesheet"' not in page
    assert "hi &lt;b&gt;" in page  # escaped, never raw HTML from data
    assert "smollm2-tuned vs smollm2-base" in page and "[45%, 84%]" in page
    assert "Nothing left this machine" in page and "Cleared for commercial use" in page
    assert "ownchat serve" in page and "19,000" in page
    card = (run / "MODEL_CARD.md").read_text()
    assert "Licence verdict" in card and "Apache" in card
    ledger = json.loads((run / "ledger.json").read_text())
    assert ledger["privacy"]["entries"] == []
