"""The real stage graph of a recipe: which stages exist, and which keys a settings change touches."""

from __future__ import annotations

import textwrap
from pathlib import Path

from ownchat.recipe.load import load_recipe
from ownchat.recipe.plan import compute_keys, order
from ownchat.recipe.stages import build_stages

RECIPES = Path(__file__).parents[2] / "recipes"


def _keys(path: Path) -> dict[str, str]:
    return compute_keys(build_stages(load_recipe(path)))


def _variant(tmp_path: Path, old: str, new: str, name: str = "quickstart.yaml") -> Path:
    text = (RECIPES / name).read_text()
    assert old in text
    p = tmp_path / name
    p.write_text(text.replace(old, new))
    return p


def test_quickstart_graph():
    stages = order(build_stages(load_recipe(RECIPES / "quickstart.yaml")))
    deps = {s.name: set(s.deps) for s in stages}
    assert deps["synth"] == set() and deps["data"] == {"synth"}
    assert deps["sft:smollm2"] == {"data"} and deps["sft:gemma"] == {"data"}
    assert deps["judge:gemma"] == {"sft:gemma", "answers:gemma-base"}
    assert deps["export:smollm2"] == {"sft:smollm2"}
    assert "answers:teacher" not in deps  # quickstart judges against the base only
    # the measures: IFEval after is paired with the base's and the teacher's; NLL on the held-out split
    assert deps["ifeval:gemma"] == {"sft:gemma", "ifeval:gemma-base", "ifeval:teacher"}
    assert deps["ifeval:gemma-base"] == set() and deps["ifeval:teacher"] == set()
    assert deps["teacher-nll:smollm2"] == {"data", "sft:smollm2"}


def test_changing_one_setting_changes_only_what_depends_on_it(tmp_path):
    base = _keys(RECIPES / "quickstart.yaml")
    lr = _keys(_variant(tmp_path, "lr: 3.0e-4", "lr: 1.0e-4"))
    changed = {k for k in base if base[k] != lr[k]}
    assert changed == {"sft:smollm2", "sft:gemma", "judge:smollm2", "judge:gemma", "export:smollm2", "export:gemma",
                       "ifeval:smollm2", "ifeval:gemma", "teacher-nll:smollm2", "teacher-nll:gemma"}

    judge_n = _keys(_variant(tmp_path, "n: 12 ", "n: 24 "))
    changed = {k for k in base if base[k] != judge_n[k]}
    assert changed == {"answers:smollm2-base", "answers:gemma-base", "judge:smollm2", "judge:gemma"}

    student = _keys(_variant(tmp_path, "chat_template: chatml   #", "chat_template: llama3   #"))
    changed = {k for k in base if base[k] != student[k]}
    assert changed == {"sft:gemma", "answers:gemma-base", "judge:gemma", "export:gemma", "ifeval:gemma-base",
                       "ifeval:gemma", "teacher-nll:gemma"}


def test_feedback_dpo_and_teacher_comparison_graph(tmp_path):
    p = tmp_path / "fb.yaml"
    p.write_text(textwrap.dedent("""\
        name: fb
        teacher: {model: qwen2.5-coder-1.5b-instruct}
        students: [{name: s, base: smollm2-135m-instruct}]
        synth: {n: 8}
        feedback: {n: 4}
        dpo: {max_steps: 2}
        judge: {compare: [base, teacher]}
        """))
    deps = {s.name: set(s.deps) for s in build_stages(load_recipe(p))}
    assert deps["feedback:s"] == {"sft:s", "data"} and deps["dpo:s"] == {"sft:s", "feedback:s"}
    assert deps["judge:s"] == {"dpo:s", "answers:s-base", "answers:teacher"}
    assert deps["export:s"] == {"dpo:s"}


def test_self_improve_graph_has_no_teacher_stages():
    names = [s.name for s in order(build_stages(load_recipe(RECIPES / "gsm8k-self-improve.yaml")))]
    assert names == ["improve:qwen-coder", "export:qwen-coder"]


def test_user_data_bytes_are_in_the_data_key(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"instruction": "a", "output": "b"}\n')
    p = tmp_path / "r.yaml"
    p.write_text("name: d\nstudents: [{name: s, base: smollm2-135m-instruct}]\n"
                 "data: [{path: d.jsonl, license: mit}]\njudge: null\n")
    k1 = _keys(p)
    data.write_text('{"instruction": "a", "output": "c"}\n')
    k2 = _keys(p)
    assert k1["data"] != k2["data"] and k1["sft:s"] != k2["sft:s"]


def test_the_sft_estimate_counts_rewritten_variants(tmp_path):
    """`synth.rewrites` multiplies the training set without teacher calls; the plan must not promise the
    training time of the teacher's answers alone (measured: 46 answers + 152 variants, 94 steps)."""
    def sft_steps(path: Path) -> int:
        return next(s for s in build_stages(load_recipe(path)) if s.name == "sft:gemma").steps()

    plain = sft_steps(RECIPES / "quickstart.yaml")
    rewritten = sft_steps(_variant(tmp_path, "  constraint_samples: 2\n", "  constraint_samples: 2\n  rewrites: 4\n"))
    assert rewritten >= 4 * plain
