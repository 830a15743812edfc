"""Adapters from a recipe to each stage's Python API: synth -> data -> sft -> (feedback -> dpo) -> export.

Each adapter declares its settings (what its content hash covers), the files it reads, an estimate
from measured speeds, and ``run(ctx)``, which calls the stage's own API with the stage folder as its
output. The stage APIs resume by themselves (JSONL appends, the response cache, checkpoints), so
re-running an adapter in the same folder after a kill picks up where it stopped.
Evaluation stages (answers, judge, improve) live in ``stages_eval``; ``build_stages`` ties them up.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ownchat.errors import UserError
from ownchat.recipe.plan import Estimate, Speeds, Stage, StageContext, StageResult
from ownchat.recipe.schema import ModelSpec, Recipe, Student


def model_identity(ref: str) -> str:
    """What a model reference points at, for content hashes: a pack's sha, a local file's identity."""
    from ownchat.models.packs import PACKS
    from ownchat.recipe.plan import file_digest

    if ref in PACKS:
        return f"pack:{ref}:{PACKS[ref].sha256 or PACKS[ref].packages[0]}"
    path = Path(ref).expanduser()
    if path.exists():
        return f"file:{path.name}:{file_digest(path)}"
    return ref


def spec_settings(spec: ModelSpec | None) -> dict[str, Any] | None:
    if spec is None:
        return None
    return {"model": model_identity(spec.model), "base_url": spec.base_url}


def open_engine(spec: ModelSpec, log, *, engine: str | None = None):
    """An engine for a teacher/judge spec, behind the shared response cache (resume and re-runs are free)."""
    from ownchat.engines import load_engine

    api_key = os.environ.get(spec.api_key_env)
    if spec.remote and not api_key:
        raise UserError(f"{spec.model} is a remote model and ${spec.api_key_env} is not set; "
                        f"export {spec.api_key_env}=... (or point the recipe at a local pack)")
    return load_engine(spec.model, engine, cache=True, base_url=spec.base_url, api_key=api_key,
                       concurrency=spec.concurrency, log=log)


def priced(usage: dict[str, Any], spec: ModelSpec | None) -> dict[str, Any]:
    """Add the money a remote model's tokens cost, by the recipe's declared price per million tokens."""
    u = dict(usage or {})
    if spec is not None and not u.get("cost_usd"):
        u["cost_usd"] = round((u.get("prompt_tokens", 0) * spec.price.input
                               + u.get("completion_tokens", 0) * spec.price.output) / 1e6, 6)
    return u


def engine_label(spec: ModelSpec | None, fallback: str = "") -> str:
    if spec is None:
        return fallback
    return f"{spec.model} @ {spec.base_url or 'api.openai.com'} (remote)" if spec.remote else f"{spec.model} (local)"


def plot_metrics(metrics: Path, keys: tuple[str, ...], out: Path, title: str) -> Path | None:
    """A PNG of ``keys`` against step from a metrics JSONL (the trainers write one line per step)."""
    if not metrics.exists():
        return None
    rows = [json.loads(line) for line in metrics.read_text().split("\n") if line.strip().startswith("{")]
    series = {k: [(r["step"], r[k]) for r in rows if r.get(k) is not None and "step" in r] for k in keys}
    series = {k: v for k, v in series.items() if v}
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=100)
    for k, pts in series.items():
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=k, marker="." if len(pts) < 40 else None)
    ax.set_xlabel("step")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


class SynthStage(Stage):
    kind = "synth"

    def __init__(self, recipe: Recipe) -> None:
        super().__init__("synth")
        self.r, self.sec, self.teacher = recipe, recipe.synth, recipe.teacher

    def settings(self) -> dict[str, Any]:
        return {"teacher": spec_settings(self.teacher), "seed": self.r.seed,
                **self.sec.model_dump(exclude={"filters"})}

    def input_files(self) -> list[Path]:
        from ownchat.recipe.synth_adapter import builtin_inputs

        p = self.sec.prompts
        return [builtin_inputs() if p == "builtin" else self.r.resolve_path(p)]

    def estimate(self, speeds: Speeds) -> Estimate:
        from ownchat.recipe.synth_adapter import synth_estimate

        return synth_estimate(self, speeds)

    def run(self, ctx: StageContext) -> StageResult:
        from ownchat.recipe.synth_adapter import run_synth_stage

        return run_synth_stage(self, ctx)


class DataStage(Stage):
    """Merge synthetic and user data, filter, dedup, split off prompts: the training set."""

    kind = "data"

    def __init__(self, recipe: Recipe, deps: tuple[str, ...]) -> None:
        super().__init__("data", deps)
        self.r = recipe

    def settings(self) -> dict[str, Any]:
        filters = (self.r.synth.filters if self.r.synth else None)
        return {"files": [f.model_dump() for f in self.r.data], "seed": self.r.seed,
                "filters": filters.model_dump() if filters else None,
                "language": self.r.synth.language if self.r.synth else None}

    def input_files(self) -> list[Path]:
        out = []
        for f in self.r.data:
            out.append(self.r.resolve_path(f.path))
            side = self.r.resolve_path(f.path + ".license")
            if side.exists():
                out.append(side)
        return out

    def estimate(self, speeds: Speeds) -> Estimate:
        return Estimate(5.0, note="filter and dedup")

    def run(self, ctx: StageContext) -> StageResult:
        from ownchat.recipe.prepare import prepare_data

        return prepare_data(self.r, ctx)


class SFTStage(Stage):
    kind = "sft"

    def __init__(self, recipe: Recipe, student: Student, deps: tuple[str, ...], n_examples: int) -> None:
        super().__init__(f"sft:{student.name}", deps)
        self.r, self.student, self.sec, self.n = recipe, student, recipe.sft, n_examples

    def settings(self) -> dict[str, Any]:
        return {"base": model_identity(self.student.base), "chat_template": self.student.chat_template,
                "seed": self.r.seed, **self.sec.model_dump()}

    def input_files(self) -> list[Path]:
        return [self.r.resolve_path(self.sec.accelerate)] if self.sec.accelerate else []

    def steps(self) -> int:
        s = self.sec
        per_epoch = max(1, -(-self.n // (s.batch_size * s.grad_accum)))
        return s.max_steps or per_epoch * s.epochs

    def estimate(self, speeds: Speeds) -> Estimate:
        s = self.sec
        tps, measured = speeds.get("train", self.student.base)
        procs = self.processes()
        tokens = self.steps() * s.batch_size * s.grad_accum * s.seq_len
        return Estimate(tokens / (tps * procs) + 20,
                        note=f"{self.steps():,} steps of {s.batch_size}x{s.grad_accum}x{s.seq_len} @ "
                        f"{tps:,.0f} tok/s" + (f" x {procs} GPUs" if procs > 1 else "")
                        + (", measured" if measured else ""))

    def processes(self) -> int:
        """Processes ``accelerate launch`` will start (from the recipe's accelerate config), else 1."""
        if not self.sec.accelerate:
            return 1
        import yaml

        try:
            cfg = yaml.safe_load(self.r.resolve_path(self.sec.accelerate).read_text()) or {}
            return max(1, int(cfg.get("num_processes", 1)))
        except (OSError, ValueError, yaml.YAMLError):
            return 1

    def run(self, ctx: StageContext) -> StageResult:
        from ownchat.recipe.train_adapter import run_sft_stage

        return run_sft_stage(self, ctx)


class ExportStage(Stage):
    kind = "export"

    def __init__(self, recipe: Recipe, student: Student, model_stage: str) -> None:
        super().__init__(f"export:{student.name}", (model_stage,))
        self.r, self.student, self.model_stage = recipe, student, model_stage

    def settings(self) -> dict[str, Any]:
        return self.r.export.model_dump()

    def estimate(self, speeds: Speeds) -> Estimate:
        from ownchat.recipe.plan import model_params

        return Estimate(15 + model_params(self.student.base) / 2e7, note=f"merge + {self.r.export.to}")

    def run(self, ctx: StageContext) -> StageResult:
        from ownchat.recipe.train_adapter import run_export_stage

        return run_export_stage(self, ctx)


def build_stages(recipe: Recipe) -> list[Stage]:
    """The stage graph of a recipe (order matters only for display: the runner sorts by dependency)."""
    from ownchat.recipe.stages_eval import AnswerStage, DPOStage, FeedbackStage, ImproveStage, JudgeStage

    stages: list[Stage] = []
    data_deps: tuple[str, ...] = ()
    if recipe.synth:
        stages.append(SynthStage(recipe))
        data_deps = ("synth",)
    has_data = bool(recipe.synth or recipe.data)
    if has_data:
        stages.append(DataStage(recipe, data_deps))
    n_examples = recipe.synth.n if recipe.synth else sum(f.limit or 1000 for f in recipe.data)
    teacher_answers = None
    if recipe.judge and "teacher" in recipe.judge.compare and recipe.teacher:
        teacher_answers = AnswerStage(recipe, "teacher", recipe.teacher.model, spec=recipe.teacher)
        stages.append(teacher_answers)
    for st in recipe.students:
        last: str | None = None
        if recipe.sft and has_data:
            stages.append(SFTStage(recipe, st, ("data",), n_examples))
            last = f"sft:{st.name}"
        if recipe.feedback and last:
            stages.append(FeedbackStage(recipe, st, last))
            if recipe.dpo:
                stages.append(DPOStage(recipe, st, last))
                last = f"dpo:{st.name}"
        if recipe.improve:
            stages.append(ImproveStage(recipe, st, last))
            last = f"improve:{st.name}"
        if recipe.judge:
            base = AnswerStage(recipe, f"{st.name}-base", st.base, student=st)
            stages.append(base)
            deps = [base.name] + ([teacher_answers.name] if teacher_answers else [])
            stages.append(JudgeStage(recipe, st, last, tuple(deps)))
        if last and recipe.export.to != "none":
            stages.append(ExportStage(recipe, st, last))
    return stages
