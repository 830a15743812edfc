"""The data stage: teacher output + user files -> the training set (``ownchat.recipe.prepare``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ownchat.recipe.plan import Estimate, Speeds, Stage, StageContext, StageResult
from ownchat.recipe.prepare import prepare_data
from ownchat.recipe.schema import Recipe


class DataStage(Stage):
    """Merge synthetic and user data, filter, dedup, split off prompts: the training set."""

    kind = "data"

    def __init__(self, recipe: Recipe, deps: tuple[str, ...]) -> None:
        super().__init__("data", deps)
        self.r = recipe

    def settings(self) -> dict[str, Any]:
        filters = (self.r.synth.filters if self.r.synth else None)
        out = {"files": [f.model_dump() for f in self.r.data], "seed": self.r.seed,
               "filters": filters.model_dump() if filters else None,
               "language": self.r.synth.language if self.r.synth else None}
        if self.r.synth and self.r.synth.rewrites:  # only when set: earlier runs keep their stage keys
            out["rewrites"] = self.r.synth.rewrites
        return out

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
        return prepare_data(self.r, ctx)
