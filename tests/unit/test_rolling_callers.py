"""Judge answers and feedback run on the rolling queue: one held request never holds the rest.

The engines block chosen requests until the test lets them go, so every check is on a state the
test waits for, not on timing.
"""

from __future__ import annotations

import json
import threading

from ownchat.data.jsonl import read_jsonl
from ownchat.engines.base import ChatRequest, Completion, Engine
from ownchat.feedback.collect import FeedbackConfig, collect_feedback, scores_path
from ownchat.judge.answer import answer_questions
from ownchat.judge.questions import Question

HANG = 30  # only reached on a deadlock


class Holder(Engine):
    """Answers at once, except requests whose last message contains ``hold``: those wait for ``go``."""

    name = "holder"

    def __init__(self, hold: str, slots: int = 3, reply=None) -> None:
        self.model_id = f"holder:{hold}"
        self.max_concurrency = slots
        self.hold, self.go = hold, threading.Event()
        self.cv = threading.Condition()
        self.done: list[str] = []
        self.reply = reply or (lambda req: f"reply to {req.messages[-1]['content'][:40]}")

    def generate(self, req: ChatRequest) -> Completion:
        last = req.messages[-1]["content"]
        if self.hold in last and req.sample_index == 0:
            if not self.go.wait(HANG):
                raise RuntimeError("the held request was never released")
        with self.cv:
            self.done.append(last)
            self.cv.notify_all()
        return Completion(self.reply(req), "stop", 5, 5, model=self.model_id)

    def wait_done(self, pred) -> bool:
        with self.cv:
            return self.cv.wait_for(lambda: pred(self.done), timeout=HANG)


def test_judge_answers_later_turns_while_an_early_question_is_held(tmp_path):
    qs = [Question(i, "writing", [f"question {i} first turn", f"question {i} second turn"]) for i in range(8)]
    eng = Holder("question 0 first turn")
    out = tmp_path / "answers.jsonl"
    t = threading.Thread(target=lambda: answer_questions(eng, qs, out, log=lambda m: None))
    t.start()
    # every other question finishes both turns while question 0's first turn is still running
    assert eng.wait_done(lambda d: sum("second turn" in x for x in d) == 7)
    assert not any("question 0" in x for x in eng.done)
    eng.go.set()
    t.join(HANG)
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["question_id"] for r in recs] == list(range(8))  # question order, not finishing order
    assert all(len(r["choices"][0]["turns"]) == 2 for r in recs)


def test_feedback_grades_other_prompts_while_one_sample_is_held(tmp_path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"prompt number {i}"}) + "\n" for i in range(6)))
    student = Holder("prompt number 0")
    teacher = Holder("never", reply=lambda req: "Score: 7" if req.messages[0]["role"] == "system" else "x")
    cfg = FeedbackConfig(student="s", teacher="t", prompts=prompts, out=tmp_path / "pairs.jsonl", k=2,
                         concurrency=3, chunk=8)
    t = threading.Thread(target=lambda: collect_feedback(cfg, log=lambda m: None, student=student, teacher=teacher))
    t.start()
    # the teacher grades prompts 1..5 (2 samples each) while prompt 0's first sample is held
    assert teacher.wait_done(lambda d: len(d) >= 10)
    student.go.set()
    t.join(HANG)
    ids = [r["id"] for r in read_jsonl(scores_path(cfg.out))]
    assert ids == [f"p{i}" for i in range(6)]
