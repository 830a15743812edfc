"""The teacher-NLL stage: held-out teacher answers scored under a student's base and under the tuned student.

The held-out split comes from the data stage (never trained on). Both models are scored with
transformers, exactly (``ownchat.judge.teacher_nll``), on the tokens SFT supervises; the difference
is paired over the same answers. Down is closer to the teacher.
"""

from __future__ import annotations

from typing import Any

from ownchat.recipe.plan import Estimate, Speeds, Stage, StageContext, StageResult
from ownchat.recipe.plan import model_params as params_of
from ownchat.recipe.schema import Recipe, Student
from ownchat.recipe.stages.common import bar, model_identity


class TeacherNLLStage(Stage):
    kind = "teacher-nll"
    version = 2  # v2: a chat is led by BOS when the tokenizer adds one (gemma taught ChatML)

    def __init__(self, recipe: Recipe, student: Student, model_stage: str) -> None:
        super().__init__(f"teacher-nll:{student.name}", ("data", model_stage))
        self.r, self.student, self.model_stage = recipe, student, model_stage

    def settings(self) -> dict[str, Any]:
        return {"base": model_identity(self.student.base), "chat_template": self.student.chat_template,
                "heldout": self.r.eval.heldout}

    def estimate(self, speeds: Speeds) -> Estimate:
        # two forward passes of ~300 tokens per held-out answer; ~2 GFLOP per token per billion params
        # at ~100 GFLOP/s fp32 on 2 cores, plus loading (quickstart: 13 s for SmolLM2, 30 s for gemma)
        seconds = 2 * self.r.eval.heldout * 300 * 2 * params_of(self.student.base) / 100e9 + 10
        return Estimate(seconds, note=f"{self.r.eval.heldout} held-out answers x 2 models (transformers)")

    def run(self, ctx: StageContext) -> StageResult:
        from ownchat.engines.hf import HFEngine
        from ownchat.judge.teacher_nll import compare_nll, evaluate_nll

        res = ctx.results["data"]
        if "heldout" not in res.artifacts:
            return StageResult(summary={"teacher NLL": "no held-out answers (the training set was too small)"})
        data = ctx.dep_path("data", "heldout")
        tuned = str(ctx.dep_path(self.model_stage, "model"))
        out: dict[str, Any] = {}
        for label, model, template in (("base", self.student.base, self.student.chat_template), ("tuned", tuned, None)):
            eng = HFEngine.from_ref(model, batch_size=1, chat_template=template, log=ctx.log)
            try:
                out[label] = evaluate_nll(model, data, ctx.dir / label, engine=eng, log=ctx.log,
                                          on_progress=lambda p, d, t, lb=label: bar(ctx, f"teacher NLL ({lb})")(d, t))
            finally:
                eng.close()
        c = compare_nll(ctx.dir / "base", ctx.dir / "tuned")
        line = (f"{c['before']:.3f} → {c['after']:.3f} nats/token: {c['gain']:+.3f}, 95% CI "
                f"[{c['ci'][0]:+.3f}, {c['ci'][1]:+.3f}] (paired, {c['n']} held-out answers; lower is closer)")
        return StageResult(summary={"teacher NLL base": out["base"]["nll_per_token"],
                                    "teacher NLL tuned": out["tuned"]["nll_per_token"],
                                    "headline": {"teacher NLL, base → tuned": line}},
                           artifacts={"base": ctx.rel(ctx.dir / "base"), "tuned": ctx.rel(ctx.dir / "tuned")},
                           raw={"compare": c, **out})
