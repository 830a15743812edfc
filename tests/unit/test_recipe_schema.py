"""Recipe validation: every problem at once, with YAML line numbers and a suggested fix."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ownchat.recipe.load import RecipeError, load_recipe, parse_recipe


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "r.yaml"
    p.write_text(textwrap.dedent(text))
    return p


GOOD = """\
name: t
teacher:
  model: qwen2.5-coder-1.5b-instruct
students:
  - name: smol
    base: smollm2-135m-instruct
synth:
  n: 10
"""


def test_a_good_recipe_loads_with_defaults(tmp_path):
    r = load_recipe(write(tmp_path, GOOD))
    assert r.synth.n == 10 and r.sft.lora_r == 8 and r.judge.bench == "ownchat"
    assert r.judge_model(r.judge).model == "qwen2.5-coder-1.5b-instruct"
    assert r.feedback is None and r.dpo is None


def test_every_error_is_listed_with_its_line(tmp_path):
    p = write(tmp_path, """\
        name: bad
        teacher:
          model: qwen2.5-coder-1.5b-instruct
          concurency: 4
        students:
          - name: smol
            base: smollm2-135m-instrct
        synth:
          n: lots
        data:
          - path: missing.jsonl
        sft:
          lora_r: 0
        """)
    with pytest.raises(RecipeError) as info:
        load_recipe(p)
    errs = {e.problem.split(":")[0]: e for e in info.value.errors}
    assert set(errs) == {"teacher.concurency", "students.0.base", "synth.n", "data.0.path", "sft.lora_r"}
    assert errs["teacher.concurency"].line == 4 and "did you mean 'concurrency'" in errs["teacher.concurency"].fix
    assert errs["students.0.base"].line == 7 and "smollm2-135m-instruct" in errs["students.0.base"].problem
    assert errs["synth.n"].line == 9 and "integer" in errs["synth.n"].problem
    assert errs["data.0.path"].line == 11 and "file not found" in errs["data.0.path"].problem
    assert errs["sft.lora_r"].line == 13
    assert str(p) in str(info.value) and "5 problem(s)" in str(info.value)


def test_unknown_top_level_key_and_missing_students(tmp_path):
    with pytest.raises(RecipeError) as info:
        load_recipe(write(tmp_path, "name: x\nteachr:\n  model: qwen2.5-coder-1.5b-instruct\n"))
    problems = [e.problem for e in info.value.errors]
    assert any("unknown key 'teachr'" in p for p in problems)
    assert any("missing required key 'students'" in p for p in problems)
    assert any("did you mean 'teacher'" in e.fix for e in info.value.errors)


def test_bad_yaml_names_the_line(tmp_path):
    with pytest.raises(RecipeError) as info:
        load_recipe(write(tmp_path, "name: x\nstudents:\n  - name: [unclosed\n"))
    assert info.value.errors[0].line is not None and "not valid YAML" in info.value.errors[0].problem


def test_cross_section_rules(tmp_path):
    text = GOOD.replace("teacher:\n  model: qwen2.5-coder-1.5b-instruct\n", "") + "dpo: {beta: 0.1}\n"
    with pytest.raises(RecipeError) as info:
        load_recipe(write(tmp_path, text))
    problems = " | ".join(e.problem for e in info.value.errors)
    assert "synth needs a teacher" in problems and "dpo needs preference pairs" in problems
    assert "judge needs a judge model" in problems


def test_relative_paths_resolve_against_the_recipe_folder(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"instruction": "hi", "output": "hello"}\n')
    sub = tmp_path / "elsewhere"
    sub.mkdir()
    r = parse_recipe(GOOD + "data:\n  - path: d.jsonl\n    license: cc-by-sa-3.0\n", sub / "r.yaml",
                     base_dir=tmp_path)
    assert r.resolve_path("d.jsonl") == tmp_path / "d.jsonl"


def test_remote_teacher_needs_no_local_file(tmp_path):
    text = GOOD.replace("model: qwen2.5-coder-1.5b-instruct",
                        "model: gpt-4o-mini\n  base_url: https://api.openai.com/v1")
    r = load_recipe(write(tmp_path, text))
    assert r.teacher.remote


def test_options_are_checked_against_the_stage_config(tmp_path):
    pytest.importorskip("ownchat.train.config")
    with pytest.raises(RecipeError) as info:
        load_recipe(write(tmp_path, GOOD + "sft:\n  options: {warmup_ration: 0.1}\n"))
    err = info.value.errors[0]
    assert "sft.options.warmup_ration" in err.problem and "warmup_ratio" in err.fix and err.line == 10
