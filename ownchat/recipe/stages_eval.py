"""Stages that measure or improve a trained student: bench answers, pairwise judging, feedback, DPO, LMSI.

Before-vs-after is fair by construction: the base model and the tuned one answer on the same engine
(transformers, the base's own weights with and without the adapter), the same questions, the same
sampling. Answers of the base and of the teacher are stages of their own, so retraining a student
does not pay for them again.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ownchat.recipe.plan import Estimate, Speeds, Stage, StageContext, StageResult, gen_estimate
from ownchat.recipe.schema import ModelSpec, Recipe, Student
from ownchat.recipe.stages import engine_label, model_identity, open_engine, priced, spec_settings


@contextmanager
def stage_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """An ``on_progress(done, total)`` callback drawing the shared Rich bar (count, elapsed, ETA)."""
    from ownchat.cli.common import progress

    bar = progress(label)
    task = None
    with bar:
        def update(done: int, total: int) -> None:
            nonlocal task
            if task is None:
                task = bar.add_task(label, total=total)
            bar.update(task, completed=done, total=total)

        yield update


def _questions(r: Recipe):
    from ownchat.judge import resolve_questions, select

    bench = r.judge.bench
    src = bench if bench in ("ownchat", "mt-bench") else str(r.resolve_path(bench))
    return select(resolve_questions(src), limit=r.judge.n, lang=r.judge.lang, max_turns=r.judge.turns)


def _bench_size(r: Recipe) -> tuple[int, float]:
    """(questions, mean turns) without loading anything heavy: the bench file is small."""
    try:
        qs = _questions(r)
        return len(qs), sum(len(q.turns) for q in qs) / max(1, len(qs))
    except Exception:  # noqa: BLE001 - only an estimate; the stage reports real problems when it runs
        return r.judge.n or 80, 1.5


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
                "chat_template": self.student.chat_template if self.student else None}

    def input_files(self) -> list[Path]:
        b = self.r.judge.bench
        return [] if b in ("ownchat", "mt-bench") else [self.r.resolve_path(b)]

    def estimate(self, speeds: Speeds) -> Estimate:
        n, turns = _bench_size(self.r)
        remote = bool(self.spec and self.spec.remote)
        return gen_estimate(speeds, self.model, int(n * turns), 150, int(0.6 * self.r.judge.max_tokens),
                            remote=remote, price=self.spec.price if self.spec else None, what="answers",
                            concurrency=self.spec.concurrency if self.spec else None)

    def run(self, ctx: StageContext) -> StageResult:
        from ownchat.engines import load_engine
        from ownchat.judge import answer_questions

        if self.spec is not None:
            eng = open_engine(self.spec, ctx.log)
        else:  # a base model: transformers, like the tuned model it is compared with
            eng = load_engine(self.model, "hf", cache=True, chat_template=self.student.chat_template, log=ctx.log)
        out = ctx.dir / "answers.jsonl"
        try:
            with stage_bar(f"answers: {self.label}") as tick:
                res = answer_questions(eng, _questions(self.r), out, model_id=self.label,
                                       max_tokens=self.r.judge.max_tokens, log=ctx.log, on_progress=tick)
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


class JudgeStage(Stage):
    """The tuned student answers the bench; the judge compares it with its base and with the teacher."""

    kind = "judge"

    def __init__(self, recipe: Recipe, student: Student, model_stage: str | None, deps: tuple[str, ...]) -> None:
        super().__init__(f"judge:{student.name}", ((model_stage,) if model_stage else ()) + deps)
        self.r, self.student, self.model_stage, self.spec = recipe, student, model_stage, recipe.judge_model(recipe.judge)

    def settings(self) -> dict[str, Any]:
        return {"judge": spec_settings(self.spec), **self.r.judge.model_dump(exclude={"judge"})}

    def estimate(self, speeds: Speeds) -> Estimate:
        n, turns = _bench_size(self.r)
        comparisons = len([c for c in self.r.judge.compare if c != "teacher" or self.r.teacher])
        est = gen_estimate(speeds, self.spec.model, int(2 * n * turns * comparisons), 600, 90,
                           remote=self.spec.remote, price=self.spec.price, what="verdicts",
                           concurrency=self.spec.concurrency)
        mine = gen_estimate(speeds, self.student.base, int(n * turns), 150, int(0.6 * self.r.judge.max_tokens))
        est.seconds += mine.seconds * 3  # transformers on CPU decodes slower than llama.cpp
        return est

    def run(self, ctx: StageContext) -> StageResult:
        from ownchat.engines import load_engine
        from ownchat.judge import JudgeSettings, answer_questions, compare_answers
        from ownchat.recipe.ledger import remote_entry

        qs = _questions(self.r)
        after = ctx.dir / "answers-after.jsonl"
        model = str(ctx.dep_path(self.model_stage, "model")) if self.model_stage else self.student.base
        eng = load_engine(model, "hf", cache=True, log=ctx.log)
        try:
            with stage_bar(f"answers: {self.student.name}") as tick:
                answer_questions(eng, qs, after, model_id=f"{self.student.name}-tuned",
                                 max_tokens=self.r.judge.max_tokens, log=ctx.log, on_progress=tick)
        finally:
            eng.close()
        judge = open_engine(self.spec, ctx.log)
        comparisons, usage = [], Counter()
        hosts: list[str] = []
        try:
            for other in self.r.judge.compare:
                dep = f"answers:{self.student.name}-base" if other == "base" else "answers:teacher"
                if dep not in ctx.results:
                    continue
                out = ctx.dir / f"vs-{other}.jsonl"
                with stage_bar(f"judging vs {other}") as tick:
                    res = compare_answers(qs, after, ctx.dep_path(dep, "answers"), judge, out,
                                          settings=JudgeSettings(), log=ctx.log, on_progress=tick)
                usage.update({k: v for k, v in res.usage.items() if isinstance(v, int | float)})
                hosts += res.hosts
                comparisons.append({**summarise_verdicts(out), "a": f"{self.student.name}-tuned",
                                    "b": "teacher" if other == "teacher" else f"{self.student.name}-base",
                                    "judge": self.spec.model, "file": ctx.rel(out)})
        finally:
            judge.close()
        u = priced(dict(usage), self.spec)
        summary: dict[str, Any] = {"comparisons": comparisons}
        for c in comparisons:
            summary[f"win rate vs {c['b']}"] = f"{c['win_rate']:.0%} [{c['ci'][0]:.0%}, {c['ci'][1]:.0%}]"
        return StageResult(summary=summary, artifacts={"answers": ctx.rel(after)}, usage={"judge": u},
                           privacy=remote_entry(self.spec, "judge", u, {"file": "bench answers of all models",
                                                                       "count": len(qs)}, hosts))


def summarise_verdicts(path: Path, *, seed: int = 0, resamples: int = 2000) -> dict[str, Any]:
    """Wins/ties/losses of model A, win rate (ties count half) with a bootstrap 95% interval, per category."""
    from ownchat.data.jsonl import read_jsonl

    rows = [r for r in read_jsonl(path, allow_partial_last_line=True) if r.get("status") == "ok"]

    def score(rs: list[dict[str, Any]]) -> dict[str, Any]:
        pts = [1.0 if r["winner"] == "model_a" else 0.5 if r["winner"] == "tie" else 0.0 for r in rs]
        c = Counter(r["winner"] for r in rs)
        rng = random.Random(seed)
        boots = sorted(sum(rng.choice(pts) for _ in pts) / len(pts) for _ in range(resamples)) if pts else []
        ci = [boots[int(0.025 * resamples)], boots[int(0.975 * resamples) - 1]] if boots else [0.0, 1.0]
        return {"n": len(pts), "wins": c["model_a"], "ties": c["tie"], "losses": c["model_b"],
                "win_rate": sum(pts) / len(pts) if pts else 0.0, "ci": ci,
                "inconsistent": sum(not r.get("consistent", True) for r in rs)}

    by_cat: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_cat[r.get("category", "?")].append(r)
    return {**score(rows), "per_category": {k: score(v) for k, v in sorted(by_cat.items())}}


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
                             limit=s.n, **s.options)
        student = load_engine(sft, "hf", cache=True, log=ctx.log)
        teacher = open_engine(self.spec, ctx.log)
        try:
            with stage_bar(f"feedback: {self.student.name}") as tick:
                res = collect_feedback(cfg, log=ctx.log, student=student, teacher=teacher, on_progress=tick)
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


class DPOStage(Stage):
    kind = "dpo"

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
        from ownchat.recipe.train_adapter import run_dpo_stage

        return run_dpo_stage(self, ctx)


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
        from ownchat.recipe.train_adapter import run_improve_stage

        return run_improve_stage(self, ctx)


__all__ = ["AnswerStage", "DPOStage", "FeedbackStage", "ImproveStage", "JudgeStage", "engine_label",
           "summarise_verdicts"]
