"""The improve stage: LMSI self-improvement on GSM8K (majority-vote reasoning paths become training data)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ownchat.errors import UserError
from ownchat.recipe.plan import Estimate, Speeds, Stage, StageContext, StageResult, gen_estimate
from ownchat.recipe.schema import Recipe, Student
from ownchat.recipe.stages.common import model_dir, model_identity


class ImproveStage(Stage):
    kind = "improve"

    def __init__(self, recipe: Recipe, student: Student, model_stage: str | None) -> None:
        super().__init__(f"improve:{student.name}", (model_stage,) if model_stage else ())
        self.r, self.student, self.model_stage, self.sec = recipe, student, model_stage, recipe.improve

    def settings(self) -> dict[str, Any]:
        return {"base": model_identity(self.student.base), "seed": self.r.seed, **self.sec.model_dump()}

    def estimate(self, speeds: Speeds) -> Estimate:
        s = self.sec
        samples = gen_estimate(speeds, self.student.base, s.n * s.samples, 700, int(0.6 * s.max_tokens),
                               what="reasoning paths")
        evals = gen_estimate(speeds, self.student.base, 2 * s.eval_n, 700, int(0.6 * s.max_tokens))
        tps, _ = speeds.get("train", self.student.base)
        train = s.options.get("max_steps", 100) * 4 * 512 / tps
        return Estimate(3 * (samples.seconds + evals.seconds) + train, note=samples.note + " + eval + train")

    def run(self, ctx: StageContext) -> StageResult:
        return run_improve_stage(self, ctx)


def run_improve_stage(stage, ctx: StageContext) -> StageResult:
    from ownchat.improve.lmsi import LMSIConfig, run_lmsi

    s, st = stage.sec, stage.student
    model = model_dir(ctx, stage.model_stage, st.base)
    cfg = LMSIConfig(model=model, out=ctx.dir / "lmsi", pool_size=s.n, k=s.samples, eval_size=s.eval_n,
                     max_tokens=s.max_tokens, seed=stage.r.seed, **s.options)
    res = run_lmsi(cfg, log=ctx.log).to_dict()
    summary: dict[str, Any] = {k: res.get(k) for k in ("pool", "kept_questions", "train_examples", "final_loss")}
    rows = []
    for label in ("before", "after"):
        ev = res.get(label) or {}
        g = ev.get("greedy") or {}
        if g:
            summary[f"gsm8k {label}"] = _acc_text(g)
            rows.append([label, g.get("correct"), g.get("n"), _acc_text(g)])
    if rows:
        summary["tables"] = [{"title": "GSM8K accuracy (greedy CoT, 95% Wilson interval)",
                              "header": ["model", "correct", "questions", "accuracy"], "rows": rows}]
    images = {p.stem: ctx.rel(p) for p in sorted((ctx.dir / "lmsi").glob("*.png"))}
    if not res.get("run_dir"):
        raise UserError("LMSI produced no trained model")
    return StageResult(summary=summary, artifacts={"model": ctx.rel(Path(res["run_dir"]))}, images=images,
                       usage={"student (self-consistency)": res.get("usage") or {}}, raw=res)


def _acc_text(g: dict[str, Any]) -> str:
    acc, ci = g.get("accuracy"), g.get("ci95") or [None, None]
    if acc is None:
        return str(g)
    return f"{acc:.1%}" + (f" [{ci[0]:.1%}, {ci[1]:.1%}]" if ci[0] is not None else "")
