"""Stage adapters through the real runner and stage APIs, with scripted engines in place of models."""

from __future__ import annotations

import json
import textwrap

import ownchat.engines
import ownchat.recipe.stages.answers as answers_stage
import ownchat.recipe.stages.feedback as feedback_stage
import ownchat.recipe.stages.judge as judge_stage
from ownchat.engines.base import ChatRequest, Completion, Engine
from ownchat.recipe.api import run_recipe
from ownchat.recipe.load import load_recipe
from ownchat.recipe.plan import Speeds
from ownchat.recipe.stages import summarise_verdicts


class Scripted(Engine):
    name = "scripted"

    def __init__(self, fn, model_id: str) -> None:
        self.fn, self.model_id, self.max_concurrency = fn, model_id, 2

    def generate(self, request: ChatRequest) -> Completion:
        return Completion(self.fn(request), "stop", prompt_tokens=10, completion_tokens=5, model=self.model_id)


REPLIES = ("GOOD tuned reply", "bad base reply", "GOOD teacher reply")


def judge_or_teacher(req: ChatRequest) -> str:
    """Answers bench questions as the teacher; as the judge, prefers the reply that says GOOD.

    Which reply is A is read from the order the two replies appear in the prompt, so the test does not
    depend on the judge prompt's wording.
    """
    text = "\n".join(m["content"] for m in req.messages)
    shown = sorted((text.find(r), r) for r in REPLIES if r in text)
    if len(shown) < 2:
        return "GOOD teacher reply"
    a, b = ("GOOD" in shown[0][1]), ("GOOD" in shown[1][1])
    return "[[A]]" if a and not b else "[[B]]" if b and not a else "[[C]]"


def test_answers_and_judge_stages(tmp_path, monkeypatch):
    monkeypatch.setenv("OWNCHAT_HOME", str(tmp_path / "home"))
    students = iter([Scripted(lambda r: "bad base reply", "base"), Scripted(lambda r: "GOOD tuned reply", "tuned")])
    monkeypatch.setattr(ownchat.engines, "load_engine", lambda *a, **k: next(students))
    for mod in (answers_stage, judge_stage):
        monkeypatch.setattr(mod, "open_engine", lambda spec, log, **k: Scripted(judge_or_teacher, "qwen"))
    p = tmp_path / "r.yaml"
    p.write_text(textwrap.dedent("""\
        name: judged
        teacher: {model: qwen2.5-coder-1.5b-instruct}
        students: [{name: s, base: smollm2-135m-instruct}]
        sft: null
        eval: null
        judge: {n: 8, turns: 1, lang: en, compare: [base, teacher], max_tokens: 32}
        export: {to: none}
        """))
    out = tmp_path / "run"
    outcome = run_recipe(load_recipe(p), out, log=lambda m: None, speeds=Speeds(tmp_path / "s.json", "cpu"))
    assert outcome.ran == ["answers:teacher", "answers:s-base", "judge:s"]
    comps = {c["b"]: c for c in outcome.results["judge:s"].summary["comparisons"]}
    assert comps["s-base"]["wins"] == 8 and comps["s-base"]["win_rate"] == 1.0
    assert comps["teacher"]["ties"] == 8 and comps["teacher"]["win_rate"] == 0.5
    assert set(comps["s-base"]["per_category"]) and comps["s-base"]["ci"][0] == 1.0
    assert outcome.results["judge:s"].usage["judge"]["requests"] == 32  # 2 orders x 8 x 2 comparisons
    ledger = json.loads((out / "ledger.json").read_text())
    assert ledger["privacy"]["entries"] == []
    assert "s-tuned vs s-base" in (out / "report.html").read_text()


def test_verdict_summary_counts_ties_half(tmp_path):
    path = tmp_path / "v.jsonl"
    rows = [("model_a", "math"), ("model_a", "math"), ("tie", "writing"), ("model_b", "writing")]
    path.write_text("".join(json.dumps({"status": "ok", "winner": w, "category": c, "consistent": w != "tie",
                                        "question_id": i, "turn": 1, "model_a": "a", "model_b": "b",
                                        "g1": w, "g2": w if w != "tie" else "model_a"}) + "\n"
                            for i, (w, c) in enumerate(rows)) + json.dumps({"status": "failed", "winner": None}) + "\n")
    s = summarise_verdicts(path)
    assert (s["n"], s["wins"], s["ties"], s["losses"]) == (4, 2, 1, 1)
    assert s["win_rate"] == 2.5 / 4 and s["inconsistent"] == 1
    assert 0.0 <= s["ci"][0] <= s["win_rate"] <= s["ci"][1] <= 1.0
    assert s["per_category"]["math"]["win_rate"] == 1.0 and s["per_category"]["writing"]["win_rate"] == 0.25


def test_feedback_stage_writes_pairs_from_judge_scores(tmp_path, monkeypatch):
    """Student samples of varying quality, a judge that scores by length: pairs come out, usage is priced 0."""
    from ownchat.recipe.plan import StageContext, StageResult
    from ownchat.recipe.stages import FeedbackStage

    samples = iter(range(10_000))
    student = Scripted(lambda r: "word " * (1 + next(samples) % 4), "student")
    judge = Scripted(lambda r: f"Score: {min(10, 2 + r.messages[-1]['content'].count('word'))}/10", "judge")
    monkeypatch.setattr(ownchat.engines, "load_engine", lambda *a, **k: student)
    monkeypatch.setattr(feedback_stage, "open_engine", lambda spec, log, **k: judge)
    p = tmp_path / "r.yaml"
    p.write_text("name: fb\nteacher: {model: qwen2.5-coder-1.5b-instruct}\n"
                 "students: [{name: s, base: smollm2-135m-instruct}]\nsynth: {n: 4}\n"
                 "feedback: {n: 3, samples: 4}\ndpo: {max_steps: 1}\n")
    r = load_recipe(p)
    run = tmp_path / "run"
    (run / "stages/data").mkdir(parents=True)
    (run / "stages/data/prompts.jsonl").write_text("".join(
        json.dumps({"id": f"p{i}", "messages": [{"role": "user", "content": f"question {i}"}]}) + "\n"
        for i in range(3)))
    stage = FeedbackStage(r, r.students[0], "sft:s")
    ctx = StageContext(run, run / "stages/feedback-s", {
        "sft:s": StageResult(artifacts={"model": "stages/sft-s/model"}),
        "data": StageResult(artifacts={"prompts": "stages/data/prompts.jsonl"})}, log=lambda m: None)
    ctx.dir.mkdir(parents=True)
    res = stage.run(ctx)
    pairs = [json.loads(x) for x in (run / res.artifacts["pairs"]).read_text().splitlines()]
    assert pairs and all(len(p["chosen"]) > len(p["rejected"]) for p in pairs)
    assert res.summary["prompts"] == 3 and res.privacy == []
    assert sum(u.get("requests", 0) for u in res.usage.values()) >= 12


def test_synth_and_data_stages_with_a_scripted_teacher(tmp_path, monkeypatch):
    """answer mode on the built-in seed instructions -> data stage: provenance and licence tally flow through."""
    import ownchat.recipe.stages.synth as stages_mod

    teacher = Scripted(lambda r: "Here is a careful, helpful answer with several words in it.", "qwen")
    teacher.license = "Apache-2.0"
    teacher.model_name = "qwen2.5-coder-1.5b-instruct"
    monkeypatch.setattr(stages_mod, "open_engine", lambda spec, log, **k: teacher)
    monkeypatch.setenv("OWNCHAT_HOME", str(tmp_path / "home"))
    p = tmp_path / "r.yaml"
    p.write_text("name: syn\nteacher: {model: qwen2.5-coder-1.5b-instruct}\n"
                 "students: [{name: s, base: smollm2-135m-instruct}]\n"
                 "synth: {method: answer, n: 5, max_tokens: 64}\nsft: null\neval: null\njudge: null\nexport: {to: none}\n")
    out = tmp_path / "run"
    outcome = run_recipe(load_recipe(p), out, log=lambda m: None, speeds=Speeds(tmp_path / "s.json", "cpu"))
    assert outcome.ran == ["synth", "data"]
    syn = outcome.results["synth"]
    assert syn.summary["kept"] == 5 and syn.usage["teacher"]["requests"] >= 5 and syn.samples
    data = outcome.results["data"]
    assert data.summary["records"] == 5
    assert data.licences[0]["terms"]["key"] == "apache-2.0" and "5 training records" in data.licences[0]["what"]
    ledger = json.loads((out / "ledger.json").read_text())["licence"]["students"]["s"]
    assert ledger["verdict"] == "cleared"
