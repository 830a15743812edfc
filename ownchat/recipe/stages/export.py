"""The export stage: the trained student as GGUF, a merged HF folder or an Ollama model, with its card."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ownchat.recipe.plan import Estimate, Speeds, Stage, StageContext, StageResult
from ownchat.recipe.schema import Recipe, Student


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
        return run_export_stage(self, ctx)


def run_export_stage(stage, ctx: StageContext) -> StageResult:
    from ownchat.export import export_run

    run_dir = ctx.dep_path(stage.model_stage, "model")
    e = stage.r.export
    dest = Path(export_run(run_dir, to=e.to, out=ctx.dir / "export", log=ctx.log, outtype=e.outtype))
    served = dest / "model.gguf" if (dest / "model.gguf").exists() else dest
    size = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
    return StageResult(summary={"format": e.to, "outtype": e.outtype if e.to != "hf" else "fp",
                                "size_mb": round(size / 1e6, 1)},
                       artifacts={"model": ctx.rel(served), "folder": ctx.rel(dest)})
