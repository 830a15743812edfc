"""The judge stage: the tuned student answers the bench; the judge compares it with its base and the teacher.

A win rate is only as good as its judge, so every comparison carries the judge's validation verdict
(``ownchat judge validate``, stored per judge and method). With ``require_valid: true`` a judge that
never passed (or failed) validation is not asked at all: the stage says so and the report's headline
stays on the objective measures.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from ownchat.recipe.plan import Estimate, Speeds, Stage, StageContext, StageResult, gen_estimate
from ownchat.recipe.schema import Recipe, Student
from ownchat.recipe.stages.answers import bench_questions, bench_size, validity_setting
from ownchat.recipe.stages.common import bar, open_engine, priced, spec_settings


class JudgeStage(Stage):
    kind = "judge"
    version = 2  # v2: one-token verdicts as an option, validity recorded, stats from ownchat.judge.stats

    def __init__(self, recipe: Recipe, student: Student, model_stage: str | None, deps: tuple[str, ...]) -> None:
        super().__init__(f"judge:{student.name}", ((model_stage,) if model_stage else ()) + deps)
        self.r, self.student, self.model_stage = recipe, student, model_stage
        self.spec = recipe.judge_model(recipe.judge)

    def settings(self) -> dict[str, Any]:
        return {"judge": spec_settings(self.spec), **self.r.judge.model_dump(exclude={"judge"}),
                **validity_setting(self.r)}

    def estimate(self, speeds: Speeds) -> Estimate:
        if self.r.judge.require_valid:  # known only once the judge is loaded; usually skipped on a CPU
            return Estimate(10.0, note="only if the judge passed `ownchat judge validate`")
        n, turns = bench_size(self.r)
        comparisons = len([c for c in self.r.judge.compare if c != "teacher" or self.r.teacher])
        out_tokens = 1 if self.r.judge.method == "prob" else 90
        est = gen_estimate(speeds, self.spec.model, int(2 * n * turns * comparisons), 600, out_tokens,
                           remote=self.spec.remote, price=self.spec.price, what="verdicts",
                           concurrency=self.spec.concurrency)
        mine = gen_estimate(speeds, self.student.base, int(n * turns), 150, int(0.6 * self.r.judge.max_tokens))
        est.seconds += mine.seconds * 3  # transformers on CPU decodes slower than llama.cpp
        return est

    def run(self, ctx: StageContext) -> StageResult:
        from ownchat.judge.validate import validity_line

        j = self.r.judge
        judge = open_engine(self.spec, ctx.log)
        try:
            valid, validity = validity_line(judge.model_id, j.method)
            if j.require_valid and not valid:
                ctx.log(f"judge skipped: {validity}")
                return StageResult(summary={"judge": f"not run: {validity}", "judge valid": False})
            return self._compare(ctx, judge, valid, validity)
        finally:
            judge.close()

    def _compare(self, ctx: StageContext, judge: Any, valid: bool, validity: str) -> StageResult:
        from ownchat.engines import load_engine
        from ownchat.judge import JudgeSettings, answer_questions, compare_answers
        from ownchat.recipe.ledger import remote_entry

        j = self.r.judge
        qs = bench_questions(self.r)
        after = ctx.dir / "answers-after.jsonl"
        model = str(ctx.dep_path(self.model_stage, "model")) if self.model_stage else self.student.base
        eng = load_engine(model, "hf", cache=True, log=ctx.log)
        try:
            answer_questions(eng, qs, after, model_id=f"{self.student.name}-tuned", max_tokens=j.max_tokens,
                             log=ctx.log, on_progress=bar(ctx, f"answers: {self.student.name}"))
        finally:
            eng.close()
        comparisons, usage, hosts = [], Counter(), []
        for other in j.compare:
            dep = f"answers:{self.student.name}-base" if other == "base" else "answers:teacher"
            if dep not in ctx.results:
                continue
            out = ctx.dir / f"vs-{other}.jsonl"
            res = compare_answers(qs, after, ctx.dep_path(dep, "answers"), judge, out, settings=JudgeSettings(),
                                  log=ctx.log, on_progress=bar(ctx, f"judging vs {other}"), method=j.method)
            usage.update({k: v for k, v in res.usage.items() if isinstance(v, int | float)})
            hosts += res.hosts
            comparisons.append({**summarise_verdicts(out), "a": f"{self.student.name}-tuned",
                                "b": "teacher" if other == "teacher" else f"{self.student.name}-base",
                                "judge": self.spec.model, "method": j.method, "judge_valid": valid,
                                "validity": validity, "file": ctx.rel(out)})
        u = priced(dict(usage), self.spec)
        summary: dict[str, Any] = {"comparisons": comparisons, "judge valid": valid, "judge validity": validity}
        for c in comparisons:
            label = f"win rate vs {c['b']}" + ("" if valid else " (judge not validated: not a result)")
            summary[label] = f"{c['win_rate']:.0%} [{c['ci'][0]:.0%}, {c['ci'][1]:.0%}]"
        return StageResult(summary=summary, artifacts={"answers": ctx.rel(after)}, usage={"judge": u},
                           privacy=remote_entry(self.spec, "judge", u, {"file": "bench answers of all models",
                                                                       "count": len(qs)}, hosts))


def summarise_verdicts(path: Path, *, seed: int = 0, resamples: int = 2000) -> dict[str, Any]:
    """Wins/ties/losses of model A and its win rate (ties count half) with the judge report's
    question-clustered bootstrap CI, overall and per category (``ownchat.judge.stats.pair_summary``)."""
    from ownchat.data.jsonl import read_jsonl
    from ownchat.judge.stats import pair_summary

    rows = [r for r in read_jsonl(path, allow_partial_last_line=True) if r.get("status") == "ok"]
    if not rows:
        return {"n": 0, "wins": 0, "ties": 0, "losses": 0, "win_rate": 0.0, "ci": [0.0, 1.0], "inconsistent": 0,
                "per_category": {}}
    s = pair_summary(rows, n_boot=resamples, seed=seed)
    per = {c: {"n": v["n"], "wins": v["wins_a"], "ties": v["ties"], "losses": v["wins_b"],
               "win_rate": v["win_rate"], "ci": v["ci95"]} for c, v in s["by_category"].items()}
    return {"n": s["n"], "wins": s["wins_a"], "ties": s["ties"], "losses": s["wins_b"], "win_rate": s["win_rate_a"],
            "ci": s["ci95_a"], "inconsistent": s["position"]["n_inconsistent"], "per_category": per}
