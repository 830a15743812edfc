"""With judge.require_valid, the bench is answered only for a judge that passed validation, and
validating it later makes the answers and judge stages run again."""

from __future__ import annotations

import textwrap
from pathlib import Path

from ownchat.judge.validate import store_result
from ownchat.recipe.load import load_recipe
from ownchat.recipe.plan import StageContext
from ownchat.recipe.stages import answers


class _Judge:
    model_id = "llamacpp:test-judge"

    def close(self) -> None:
        pass


def test_answers_wait_for_a_validated_judge(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OWNCHAT_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(answers, "open_engine", lambda spec, log: _Judge())
    p = tmp_path / "r.yaml"
    p.write_text(textwrap.dedent("""\
        name: t
        teacher: {model: qwen2.5-coder-1.5b-instruct}
        students: [{name: s, base: smollm2-135m-instruct}]
        synth: {n: 4}
        judge: {n: 2, turns: 1, compare: [base], method: prob, require_valid: true}
        """))
    r = load_recipe(p)
    stage = answers.AnswerStage(r, "s-base", "smollm2-135m-instruct", student=r.students[0])
    before = stage.settings()
    ctx = StageContext(run_dir=tmp_path, dir=tmp_path / "answers", results={}, log=lambda m: None)
    res = stage.run(ctx)
    assert res.summary["answers"].startswith("not needed: judge not validated (prob verdicts)")

    store_result({"judge_id": "llamacpp:test-judge", "method": "prob", "valid": True, "verdict": "valid"})
    assert stage.settings() != before  # a new validation: the stage is stale and runs again
    assert answers.judge_will_run(r, print) == (True, "judge validation (prob): valid")
    store_result({"judge_id": "llamacpp:test-judge", "method": "text", "valid": False, "verdict": "not valid"})
    assert answers.judge_will_run(r, print)[0]  # another method's record does not decide this one
