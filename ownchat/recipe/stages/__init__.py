"""A recipe's stages, one module each: synth -> data -> sft -> (feedback -> dpo) -> (improve) -> measures -> export.

Each stage declares its settings (what its content hash covers), the files it reads, an estimate
from measured speeds, and ``run(ctx)``, which calls the stage's own API with the stage folder as its
output. The stage APIs resume by themselves (JSONL appends, the response cache, checkpoints), so
re-running a stage in the same folder after a kill picks up where it stopped. The measures come
first in the report: IFEval and the teacher NLL need no judge; the judge follows with its validity.
"""

from __future__ import annotations

from ownchat.recipe.plan import Stage
from ownchat.recipe.schema import Recipe
from ownchat.recipe.stages.answers import AnswerStage
from ownchat.recipe.stages.common import engine_label
from ownchat.recipe.stages.data import DataStage
from ownchat.recipe.stages.dpo import DPOStage
from ownchat.recipe.stages.export import ExportStage
from ownchat.recipe.stages.feedback import FeedbackStage
from ownchat.recipe.stages.ifeval import IFEvalStage
from ownchat.recipe.stages.improve import ImproveStage
from ownchat.recipe.stages.judge import JudgeStage, summarise_verdicts
from ownchat.recipe.stages.nll import TeacherNLLStage
from ownchat.recipe.stages.sft import SFTStage
from ownchat.recipe.stages.synth import SynthStage

__all__ = ["AnswerStage", "DPOStage", "DataStage", "ExportStage", "FeedbackStage", "IFEvalStage", "ImproveStage",
           "JudgeStage", "SFTStage", "SynthStage", "TeacherNLLStage", "build_stages", "engine_label",
           "summarise_verdicts"]


def build_stages(recipe: Recipe) -> list[Stage]:
    """The stage graph of a recipe (order matters only for display: the runner sorts by dependency)."""
    stages: list[Stage] = []
    data_deps: tuple[str, ...] = ()
    if recipe.synth:
        stages.append(SynthStage(recipe))
        data_deps = ("synth",)
    has_data = bool(recipe.synth or recipe.data)
    if has_data:
        stages.append(DataStage(recipe, data_deps))
    # rewrites add about 0.8 kept variants per answer per K (measured: 3.3 per answer at K=4, 2.6 at K=3)
    n_examples = (round(recipe.synth.n * (1 + 0.8 * recipe.synth.rewrites)) if recipe.synth
                  else sum(f.limit or 1000 for f in recipe.data))
    ev = recipe.eval
    ifeval_teacher = None
    if ev and ev.ifeval and ev.ifeval.teacher and recipe.teacher:
        ifeval_teacher = IFEvalStage(recipe, "teacher", recipe.teacher.model, spec=recipe.teacher)
        stages.append(ifeval_teacher)
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
        if ev and ev.ifeval:
            base = IFEvalStage(recipe, f"{st.name}-base", st.base, student=st)
            stages.append(base)
            if last:
                compare = (base.name,) + ((ifeval_teacher.name,) if ifeval_teacher else ())
                stages.append(IFEvalStage(recipe, st.name, st.base, student=st, model_stage=last, compare_to=compare))
        if ev and ev.teacher_nll and ev.heldout and last and has_data:
            stages.append(TeacherNLLStage(recipe, st, last))
        if recipe.judge:
            answers = AnswerStage(recipe, f"{st.name}-base", st.base, student=st)
            stages.append(answers)
            deps = [answers.name] + ([teacher_answers.name] if teacher_answers else [])
            stages.append(JudgeStage(recipe, st, last, tuple(deps)))
        if last and recipe.export.to != "none":
            stages.append(ExportStage(recipe, st, last))
    return stages
