"""``run_recipe``: validate, plan, run the stages, then write the ledgers, model card and report.

    from ownchat.recipe import load_recipe, plan_recipe, run_recipe
    plan = plan_recipe("recipes/quickstart.yaml", out="runs/quickstart")   # what would run, and its cost
    outcome = run_recipe("recipes/quickstart.yaml", out="runs/quickstart")
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ownchat.progress import Progress, silent
from ownchat.recipe.ledger import licence_ledger, model_card, privacy_ledger, spec_terms
from ownchat.recipe.load import load_recipe
from ownchat.recipe.plan import Speeds, StageResult
from ownchat.recipe.runner import PlanRow, RunOutcome, execute, make_plan
from ownchat.recipe.schema import Recipe
from ownchat.recipe.stages import build_stages, engine_label


@dataclass
class Plan:
    recipe: Recipe
    run_dir: Path
    rows: list[PlanRow]
    licence: dict[str, Any]
    remote_hosts: list[str]
    warnings: list[str]
    device: str = "cpu"

    @property
    def seconds(self) -> float:
        return sum(r.estimate.seconds for r in self.rows if r.status != "skip")

    def totals(self) -> dict[str, float]:
        todo = [r.estimate for r in self.rows if r.status != "skip"]
        return {"seconds": self.seconds, "tokens_in": sum(e.tokens_in for e in todo),
                "tokens_out": sum(e.tokens_out for e in todo), "cost_usd": sum(e.cost_usd for e in todo)}


def default_out(recipe: Recipe) -> Path:
    return Path("runs") / recipe.name


def _as_recipe(recipe: Recipe | str | Path) -> tuple[Recipe, str]:
    if isinstance(recipe, Recipe):
        return recipe, ""
    path = Path(recipe)
    return load_recipe(path), path.read_text(encoding="utf-8")


def plan_recipe(recipe: Recipe | str | Path, out: str | Path | None = None, *,
                speeds: Speeds | None = None) -> Plan:
    r, _ = _as_recipe(recipe)
    run_dir = Path(out) if out else default_out(r)
    stages = build_stages(r)
    speeds = speeds or Speeds()
    rows = make_plan(stages, run_dir, speeds)
    warnings, hosts = [], set()
    for spec in {id(s): s for s in (r.teacher, r.judge_model(r.judge), r.judge_model(r.feedback)) if s}.values():
        if spec.remote:
            from urllib.parse import urlparse

            urls = spec.base_url if isinstance(spec.base_url, list) else [spec.base_url or "https://api.openai.com/v1"]
            hosts |= {urlparse(u).netloc or u for u in urls}
            if not os.environ.get(spec.api_key_env):
                warnings.append(f"{spec.model}: ${spec.api_key_env} is not set (needed to run, not to plan)")
            if spec.price.input == 0 and spec.price.output == 0:
                warnings.append(f"{spec.model}: no price declared (price: {{input: USD/M, output: USD/M}}): "
                                "the plan shows $0")
        if spec_terms(spec).commercial is False:
            warnings.append(f"{spec.model}: {spec_terms(spec).note}")
    return Plan(r, run_dir, rows, licence_ledger(r), sorted(hosts), warnings, speeds.device)


def run_recipe(recipe: Recipe | str | Path, out: str | Path | None = None, *,
               log: Callable[[str], None] = print,
               on_stage: Callable[[int, int, PlanRow, float], None] | None = None,
               speeds: Speeds | None = None, progress: Progress = silent) -> RunOutcome:
    """Run (or resume) a recipe into ``out``; the report is written even when a stage fails."""
    r, text = _as_recipe(recipe)
    run_dir = Path(out) if out else default_out(r)
    stages = build_stages(r)

    def finish(outcome: RunOutcome, info: dict[str, Any]) -> None:
        write_outputs(r, run_dir, outcome.results, info, [s.name for s in stages])

    return execute(stages, run_dir, recipe_text=text, log=log, on_stage=on_stage, finish=finish, speeds=speeds,
                   progress=progress)


def serve_commands(r: Recipe, run_dir: Path, results: dict[str, StageResult]) -> dict[str, str]:
    cmds = {}
    for st in r.students:
        for name in (f"export:{st.name}", f"dpo:{st.name}", f"improve:{st.name}", f"sft:{st.name}"):
            res = results.get(name)
            if res and "model" in res.artifacts:
                path = run_dir / res.artifacts["model"]
                cmds[st.name] = f"ownchat serve {path} --host {r.serve.host} --port {r.serve.port}"
                break
    return cmds


def _engines(r: Recipe, stage_names: list[str]) -> dict[str, str]:
    """Which engine each stage used, for the privacy section: local ones are named as local."""
    out = {}
    for n in stage_names:
        kind, _, who = n.partition(":")
        if kind in ("synth", "answers") and (kind == "synth" or who == "teacher"):
            out[n] = engine_label(r.teacher)
        elif kind in ("judge", "feedback"):
            spec = r.judge_model(r.judge if kind == "judge" else r.feedback)
            out[n] = engine_label(spec) + (f"; student {who} (local)" if who else "")
        elif kind == "data":
            out[n] = "no model (filtering on this machine)"
        else:
            out[n] = f"{who.removesuffix('-base') or who} (local, transformers)"
    return out


def write_outputs(r: Recipe, run_dir: Path, results: dict[str, StageResult], info: dict[str, Any],
                  stage_names: list[str]) -> Path:
    """ledger.json, MODEL_CARD.md and report.html from what the stages recorded."""
    from ownchat.recipe.report import render_report

    licence = licence_ledger(r, results)
    privacy = privacy_ledger(results, stage_names)
    serve = serve_commands(r, run_dir, results)
    (run_dir / "ledger.json").write_text(json.dumps({"licence": licence, "privacy": privacy}, indent=2,
                                                    ensure_ascii=False, default=str))
    (run_dir / "MODEL_CARD.md").write_text(model_card(r, licence, privacy, serve), encoding="utf-8")
    for st in r.students:  # the exported model travels with its own ledger
        exp = results.get(f"export:{st.name}")
        if exp and "folder" in exp.artifacts and (run_dir / exp.artifacts["folder"]).is_dir():
            one = {"students": {st.name: licence["students"][st.name]}}
            (run_dir / exp.artifacts["folder"] / "MODEL_CARD.md").write_text(
                model_card(r, one, privacy, {k: v for k, v in serve.items() if k == st.name}), encoding="utf-8")
    info["serve"] = serve
    info["verdicts"] = {k: v["verdict"] for k, v in licence["students"].items()}
    info["left_machine"] = privacy["left_machine"]
    return render_report(run_dir, name=r.name, description=r.description, info=info, results=results,
                         licence=licence, privacy=privacy, serve=serve, engines=_engines(r, stage_names))


def rebuild_report(recipe: Recipe | str | Path, out: str | Path | None = None) -> Path:
    """Re-render ledgers and report from a run directory's recorded state (nothing runs)."""
    r, _ = _as_recipe(recipe)
    run_dir = Path(out) if out else default_out(r)
    info_path = run_dir / "run.json"
    if not info_path.exists():
        from ownchat.errors import UserError

        raise UserError(f"{run_dir} holds no run (no run.json); run the recipe first")
    info = json.loads(info_path.read_text())
    stages = build_stages(r)
    results = {}
    for s in stages:
        try:
            st = json.loads((run_dir / "stages" / s.dirname / "stage.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            continue
        if st.get("status") == "done":
            results[s.name] = StageResult.from_dict(st.get("result", {}))
    report = write_outputs(r, run_dir, results, info, [s.name for s in stages])
    info_path.write_text(json.dumps(info, indent=2, ensure_ascii=False, default=str))
    return report
