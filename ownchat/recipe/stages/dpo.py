"""The DPO stage: the SFT student trained on the feedback stage's preference pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ownchat.recipe.plan import Estimate, Speeds, Stage, StageContext, StageResult
from ownchat.recipe.schema import Recipe, Student
from ownchat.recipe.stages.common import bar, recipe_labels


class DPOStage(Stage):
    kind = "dpo"
    version = 2  # v2: a chat is led by BOS when the tokenizer adds one (gemma taught ChatML)

    def __init__(self, recipe: Recipe, student: Student, sft_stage: str) -> None:
        self.feedback_stage = f"feedback:{student.name}"
        super().__init__(f"dpo:{student.name}", (sft_stage, self.feedback_stage))
        self.r, self.student, self.sft_stage, self.sec = recipe, student, sft_stage, recipe.dpo

    def settings(self) -> dict[str, Any]:
        return {"seed": self.r.seed, **self.sec.model_dump()}

    def estimate(self, speeds: Speeds) -> Estimate:
        s, fb = self.sec, self.r.feedback
        steps = s.max_steps or max(1, int(s.epochs * fb.n / s.batch_size))
        tps, _ = speeds.get("train", self.student.base)
        # chosen + rejected, policy + reference forward: about 3x an SFT step of the same size
        return Estimate(steps * 2 * s.batch_size * s.seq_len * 1.5 / tps + 20, note=f"{steps} DPO steps")

    def run(self, ctx: StageContext) -> StageResult:
        return run_dpo_stage(self, ctx)


def run_dpo_stage(stage, ctx: StageContext) -> StageResult:
    from ownchat.train.dpo import DPOConfig, train_dpo

    s, st = stage.sec, stage.student
    out = ctx.dir / "model"
    sft_run = ctx.dep_path(stage.sft_stage, "model")
    cfg = DPOConfig(model=str(sft_run), adapter=sft_run, data=ctx.dep_path(stage.feedback_stage, "pairs"),
                    out=out, max_steps=s.max_steps, epochs=s.epochs, lr=s.lr, batch_size=s.batch_size,
                    seq_len=s.seq_len, seed=stage.r.seed, beta=s.beta, **s.options)
    recipe_labels(cfg, "dpo", s.options)
    tick = bar(ctx, f"DPO {st.name}")
    res = train_dpo(cfg, log=ctx.log, on_step=lambda row, total: tick(row["step"], total)).to_dict()
    images = {}
    if res.get("plot") and Path(res["plot"]).exists():  # the trainer draws loss, margin and accuracy
        images[f"DPO: {st.name}"] = ctx.rel(Path(res["plot"]))
    summary = {k: res.get(k) for k in ("steps", "pairs", "final_loss", "resumed_from")}
    summary.update({f"final {k}": v for k, v in (res.get("final") or {}).items()})
    return StageResult(summary=summary, artifacts={"model": ctx.rel(out)}, images=images, raw=res)
