"""The answers stage: one model answers the judge's bench (the teacher, or a student's base: the "before").

Before-vs-after is fair by construction: the base model and the tuned one answer on the same engine
(transformers, the base's own weights with and without the adapter), the same questions, the same
sampling. Answers of the base and of the teacher are stages of their own, so retraining a student
does not pay for them again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ownchat.recipe.plan import Estimate, Speeds, Stage, StageContext, StageResult, gen_estimate
from ownchat.recipe.schema import ModelSpec, Recipe, Student
from ownchat.recipe.stages.common import bar, model_identity, open_engine, priced, spec_settings


def bench_questions(r: Recipe):
    from ownchat.judge import resolve_questions, select

    bench = r.judge.bench
    src = bench if bench in ("ownchat", "mt-bench") else str(r.resolve_path(bench))
    return select(resolve_questions(src), limit=r.judge.n, lang=r.judge.lang, max_turns=r.judge.turns)


def bench_size(r: Recipe) -> tuple[int, float]:
    """(questions, mean turns) without loading anything heavy: the bench file is small."""
    try:
        qs = bench_questions(r)
        return len(qs), sum(len(q.turns) for q in qs) / max(1, len(qs))
    except Exception:  # noqa: BLE001 - only an estimate; the stage reports real problems when it runs
        return r.judge.n or 80, 1.5


def validity_setting(r: Recipe) -> dict[str, str]:
    """With ``require_valid``, the stored validations are a setting: validating the judge later makes the
    answers and judge stages run again instead of staying "not needed"."""
    if r.judge is None or not r.judge.require_valid:
        return {}
    from ownchat.judge.validate import stored_state

    return {"judge_validations": stored_state()}


def judge_will_run(r: Recipe, log) -> tuple[bool, str]:
    """(asked, why) - with ``require_valid`` the judge is loaded once to read its identity, then let go."""
    if r.judge is None or not r.judge.require_valid:
        return True, ""
    from ownchat.judge.validate import validity_line

    judge = open_engine(r.judge_model(r.judge), log)
    try:
        return validity_line(judge.model_id, r.judge.method)
    finally:
        judge.close()


class AnswerStage(Stage):
    """One model answers the bench: the teacher (reference), or a student's base (the "before")."""

    kind = "answers"

    def __init__(self, recipe: Recipe, label: str, model: str, *, spec: ModelSpec | None = None,
                 student: Student | None = None) -> None:
        super().__init__(f"answers:{label}")
        self.r, self.label, self.model, self.spec, self.student = recipe, label, model, spec, student

    def settings(self) -> dict[str, Any]:
        j = self.r.judge
        return {"model": model_identity(self.model), "spec": spec_settings(self.spec), "bench": j.bench,
                "n": j.n, "max_tokens": j.max_tokens,
                "chat_template": self.student.chat_template if self.student else None, **validity_setting(self.r)}

    def input_files(self) -> list[Path]:
        b = self.r.judge.bench
        return [] if b in ("ownchat", "mt-bench") else [self.r.resolve_path(b)]

    def estimate(self, speeds: Speeds) -> Estimate:
        if self.r.judge.require_valid:
            return Estimate(5.0, note="only if the judge passed `ownchat judge validate`")
        n, turns = bench_size(self.r)
        remote = bool(self.spec and self.spec.remote)
        return gen_estimate(speeds, self.model, int(n * turns), 150, int(0.6 * self.r.judge.max_tokens),
                            remote=remote, price=self.spec.price if self.spec else None, what="answers",
                            concurrency=self.spec.concurrency if self.spec else None)

    def run(self, ctx: StageContext) -> StageResult:
        from ownchat.engines import load_engine
        from ownchat.judge import answer_questions

        asked, why = judge_will_run(self.r, ctx.log)
        if not asked:  # the judge stage will not run: answering its bench would be wasted time
            ctx.log(f"answers not needed: {why}")
            return StageResult(summary={"answers": f"not needed: {why}"})
        if self.spec is not None:
            eng = open_engine(self.spec, ctx.log)
        else:  # a base model: transformers, like the tuned model it is compared with
            eng = load_engine(self.model, "hf", cache=True, chat_template=self.student.chat_template, log=ctx.log)
        out = ctx.dir / "answers.jsonl"
        try:
            res = answer_questions(eng, bench_questions(self.r), out, model_id=self.label,
                                   max_tokens=self.r.judge.max_tokens, log=ctx.log,
                                   on_progress=bar(ctx, f"answers: {self.label}"))
        finally:
            eng.close()
        from ownchat.recipe.ledger import remote_entry

        usage = priced(res.usage, self.spec)
        return StageResult(summary={"answered": res.written + res.skipped, "failed": res.failed},
                           artifacts={"answers": ctx.rel(out)}, usage={self.label: usage},
                           privacy=remote_entry(self.spec, self.label, usage,
                                                {"file": f"bench {self.r.judge.bench}", "count": res.written},
                                                res.hosts),
                           raw=res.to_dict())
