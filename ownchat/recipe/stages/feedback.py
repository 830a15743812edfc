"""The feedback stage: the SFT student samples answers, the judge scores them, scores become preference pairs."""

from __future__ import annotations

from typing import Any

from ownchat.recipe.plan import Estimate, Speeds, Stage, StageContext, StageResult, gen_estimate
from ownchat.recipe.schema import Recipe, Student
from ownchat.recipe.stages.common import bar, open_engine, priced, spec_settings


class FeedbackStage(Stage):
    kind = "feedback"

    def __init__(self, recipe: Recipe, student: Student, sft_stage: str) -> None:
        super().__init__(f"feedback:{student.name}", (sft_stage, "data"))
        self.r, self.student, self.sft_stage = recipe, student, sft_stage
        self.sec, self.spec = recipe.feedback, recipe.judge_model(recipe.feedback)

    def settings(self) -> dict[str, Any]:
        return {"judge": spec_settings(self.spec), "seed": self.r.seed, **self.sec.model_dump(exclude={"judge"})}

    def estimate(self, speeds: Speeds) -> Estimate:
        s = self.sec
        est = gen_estimate(speeds, self.spec.model, s.n * s.samples, 400, 60, remote=self.spec.remote,
                           price=self.spec.price, what="scores", concurrency=self.spec.concurrency)
        mine = gen_estimate(speeds, self.student.base, s.n * s.samples, 60, int(0.6 * s.max_tokens))
        est.seconds += mine.seconds * 3
        return est

    def run(self, ctx: StageContext) -> StageResult:
        from ownchat.engines import load_engine
        from ownchat.feedback.collect import FeedbackConfig, collect_feedback
        from ownchat.recipe.ledger import remote_entry

        s = self.sec
        out = ctx.dir / "pairs.jsonl"
        sft = str(ctx.dep_path(self.sft_stage, "model"))
        cfg = FeedbackConfig(student=sft, teacher=self.spec.model, prompts=ctx.dep_path("data", "prompts"), out=out,
                             k=s.samples, temperature=s.temperature, max_tokens=s.max_tokens, seed=self.r.seed,
                             limit=s.n, names={"k": "feedback.samples", "temperature": "feedback.temperature",
                                               **{k: f"feedback.options.{k}" for k in s.options}}, **s.options)
        student = load_engine(sft, "hf", cache=True, log=ctx.log)
        teacher = open_engine(self.spec, ctx.log)
        try:
            res = collect_feedback(cfg, log=ctx.log, student=student, teacher=teacher,
                                   on_progress=bar(ctx, f"feedback: {self.student.name}"))
        finally:
            student.close()
            teacher.close()
        d = res.to_dict()
        usage = {role: priced(u, self.spec if role != "student" else None) for role, u in (d.get("usage") or {}).items()}
        judge_usage = next((u for role, u in usage.items() if role != "student"), {})
        return StageResult(summary={"prompts": d.get("prompts"), **(d.get("counts") or {})},
                           artifacts={"pairs": ctx.rel(out)}, usage=usage, raw=d,
                           privacy=remote_entry(self.spec, "feedback judge", judge_usage,
                                                {"file": "student samples + prompts", "count": d.get("prompts")},
                                                d.get("hosts")))
