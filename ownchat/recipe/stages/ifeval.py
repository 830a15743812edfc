"""IFEval stages: the teacher, each student's base, and each tuned student answer the same prompts.

All of them run on llama.cpp (a tuned student is its base GGUF plus its LoRA adapter), greedy, on
IFEval's fixed spread, so "before" and "after" differ only by the training. The tuned student's
stage compares itself, paired on the same prompts, with its base (the gain and its 95% CI) and with
the teacher (its IFEval average as a share of the teacher's: Vicuna's "90% of ChatGPT", measured).
"""

from __future__ import annotations

from typing import Any

from ownchat.recipe.plan import Estimate, Speeds, Stage, StageContext, StageResult, gen_estimate
from ownchat.recipe.schema import ModelSpec, Recipe, Student
from ownchat.recipe.stages.common import bar, model_identity, spec_settings


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


class IFEvalStage(Stage):
    """``ifeval:<label>``; a tuned student's stage (``model_stage`` set) also holds the paired comparisons."""

    kind = "ifeval"
    version = 2  # v2: llama.cpp gets the template's Jinja text (it rendered "gemma" as the literal word)

    def __init__(self, recipe: Recipe, label: str, model: str, *, spec: ModelSpec | None = None,
                 student: Student | None = None, model_stage: str | None = None,
                 compare_to: tuple[str, ...] = ()) -> None:
        deps = ((model_stage,) if model_stage else ()) + compare_to
        super().__init__(f"ifeval:{label}", deps)
        self.r, self.label, self.model, self.spec = recipe, label, model, spec
        self.student, self.model_stage, self.compare_to = student, model_stage, compare_to
        self.sec = recipe.eval.ifeval

    def settings(self) -> dict[str, Any]:
        return {"model": model_identity(self.model), "spec": spec_settings(self.spec),
                "chat_template": self.student.chat_template if self.student else None, **self.sec.model_dump()}

    def estimate(self, speeds: Speeds) -> Estimate:
        return gen_estimate(speeds, self.spec.model if self.spec else self.model, self.sec.n, 90,
                            int(0.8 * self.sec.max_tokens), remote=bool(self.spec and self.spec.remote),
                            price=self.spec.price if self.spec else None, what="IFEval answers",
                            concurrency=self.spec.concurrency if self.spec else 8)

    def run(self, ctx: StageContext) -> StageResult:
        from ownchat.judge.ifeval import IFEvalConfig, evaluate_ifeval

        model = str(ctx.dep_path(self.model_stage, "model")) if self.model_stage else self.model
        remote = bool(self.spec and self.spec.remote)
        extra = {"chat_template": self.student.chat_template} if (self.student and self.student.chat_template
                                                                 and not self.model_stage) else {}
        cfg = IFEvalConfig(model=model, out=ctx.dir / "ifeval", subset=self.sec.n, max_tokens=self.sec.max_tokens,
                           engine=None if remote else "llamacpp", label=self.label,
                           concurrency=(self.spec.concurrency if self.spec else None) or (4 if remote else 8),
                           extra=extra)
        if self.spec is not None and remote:
            from ownchat.recipe.stages.common import open_engine

            engine = open_engine(self.spec, ctx.log)
        else:
            engine = None  # evaluate_ifeval loads (and closes) the local model itself
        try:
            s = evaluate_ifeval(cfg, log=ctx.log, engine=engine,
                                on_progress=lambda phase, d, t: bar(ctx, f"IFEval {self.label}: {phase}")(d, t))
        finally:
            if engine is not None:
                engine.close()
        summary: dict[str, Any] = {
            "IFEval average": f"{_pct(s['average']['value'])} [{_pct(s['average']['ci95'][0])}, "
                              f"{_pct(s['average']['ci95'][1])}]",
            "prompt-level strict": f"{_pct(s['prompt_strict']['accuracy'])}%",
            "instruction-level strict": f"{_pct(s['instruction_strict']['accuracy'])}%",
            "answers that stopped": f"{_pct(s['stopped']['accuracy'])}%", "prompts": s["n"]}
        summary["headline"] = self._headline(ctx, s)
        return StageResult(summary=summary, artifacts={"ifeval": ctx.rel(ctx.dir / "ifeval")},
                           images={f"IFEval by instruction: {self.label}": ctx.rel(ctx.dir / "ifeval" /
                                                                                   "by_instruction.png")},
                           raw={k: v for k, v in s.items() if k != "by_instruction"})

    def _headline(self, ctx: StageContext, s: dict[str, Any]) -> dict[str, str]:
        """Paired comparisons with the stages in ``compare_to`` (base first, then the teacher)."""
        from ownchat.judge.ifeval_score import compare_runs

        out: dict[str, str] = {}
        mine = ctx.dir / "ifeval"
        for dep in self.compare_to:
            other = ctx.dep_path(dep, "ifeval")
            if dep.endswith("-base"):
                c = compare_runs(other, mine, names=("base", "tuned"))
                a, p = c["average"], c["prompt_strict"]
                out["IFEval average, base → tuned"] = (
                    f"{_pct(a['before'])} → {_pct(a['after'])}: {a['gain'] * 100:+.1f} points, 95% CI "
                    f"[{a['ci'][0] * 100:+.1f}, {a['ci'][1] * 100:+.1f}] (paired, {c['n']} prompts)")
                out["IFEval prompt-level strict, base → tuned"] = (
                    f"{p['gain'] * 100:+.1f} points, 95% CI [{p['ci'][0] * 100:+.1f}, {p['ci'][1] * 100:+.1f}], "
                    f"McNemar p = {p['mcnemar_p']:.3g}")
                st = c["stopped"]
                out["answers that stop, base → tuned"] = f"{st['gain'] * 100:+.1f} points [{st['ci'][0] * 100:+.1f}, " \
                                                         f"{st['ci'][1] * 100:+.1f}]"
            else:
                c = compare_runs(other, mine, names=("teacher", self.label))
                r = c["ratio"]
                out["percent of the teacher (IFEval average)"] = (
                    f"{r['value'] * 100:.0f}% [{r['ci95'][0] * 100:.0f}%, {r['ci95'][1] * 100:.0f}%] "
                    f"(teacher {_pct(c['average']['before'])})")
        if not out and not self.label.endswith("-base"):  # a base's figure is in its student's paired line
            out["IFEval average"] = (f"{_pct(s['average']['value'])} [{_pct(s['average']['ci95'][0])}, "
                                     f"{_pct(s['average']['ci95'][1])}]")
        return out
