"""Single-answer grading: each turn of each model's answers scored 1–10 by the judge.

Reference-guided where the question has a reference (math, reasoning, coding). Turn 2 is graded with
the whole conversation shown. One line per (model, question, turn); a grade the judge would not give
in a readable form after the retries is written with ``score: null`` and ``status: "failed"``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ownchat.data.jsonl import JsonlWriter, read_jsonl
from ownchat.engines.base import Engine, UsageMeter
from ownchat.judge.answer import Answer, answers_model_id, load_answers
from ownchat.judge.compare import JudgeRunResult, _questions, open_judge, turn_indices
from ownchat.judge.parse import parse_rating
from ownchat.judge.prob import DIGITS, ProbJob, ProbOutcome, expected_score, run_prob_jobs
from ownchat.judge.prompts import single_messages
from ownchat.judge.questions import Question
from ownchat.judge.runner import JudgeJob, JudgeOutcome, JudgeSettings, run_jobs

RATING_FOLLOWUP = "'Rating: [[N]]', N an integer from 1 to 10"


def grade_answers(questions: Sequence[Question] | str | Path, answer_files: Sequence[str | Path],
                  judge: str | Engine, out: str | Path, *, turns: Sequence[int] | None = None,
                  settings: JudgeSettings | None = None, cache: bool | str | Path = True,
                  engine: str | None = None, log: Callable[[str], None] = print,
                  on_progress: Callable[[int, int], None] | None = None, method: str = "text") -> JudgeRunResult:
    """Grade every answer file against ``questions``; append one grade per model/question/turn.

    ``method="prob"``: a one-digit 1–9 rating read as its expectation over the digit tokens (put on
    the 1–10 scale), for engines that give token probabilities; ``"text"``: ``Rating: [[N]]``.
    """
    if method not in ("text", "prob"):
        from ownchat.errors import UserError

        raise UserError(f"unknown judge method {method!r}: use text or prob")
    from ownchat.data.provenance import provenance

    start = time.time()
    settings = settings or JudgeSettings()
    qs = _questions(questions)
    out = Path(out)
    done = {(r["model_id"], r["question_id"], r["turn"]) for r in read_jsonl(out, allow_partial_last_line=True)
            if r.get("method", "text") == method} if out.exists() else set()
    jobs: list[JudgeJob] = []
    units: dict[tuple[str, Any, int], tuple[Question, Answer]] = {}
    missing: list[Any] = []
    for f in answer_files:
        answers = load_answers(f)
        model = answers_model_id(answers, Path(f))
        for q in qs:
            a = answers.get(q.question_id)
            if a is None:
                missing.append(f"{model}:{q.question_id}")
                continue
            for t in turn_indices(q, turns):
                if (model, q.question_id, t + 1) in done or t >= len(a.turns):
                    continue
                units[(model, q.question_id, t)] = (q, a)
                msgs, _ = single_messages(q.turns, a.turns, t, q.reference_for(t), digit=method == "prob")
                jobs.append(JudgeJob((model, q.question_id, t), msgs, followup=RATING_FOLLOWUP))
    if missing:
        log(f"{len(missing)} answer(s) missing and skipped: {missing[:10]}")
    if not jobs:  # everything already judged: do not load the judge just to find that out
        return JudgeRunResult(out, str(getattr(judge, "model_id", judge)), 0, len(done), 0,
                              round(time.time() - start, 2), {}, missing)
    eng, own = open_judge(judge, cache=cache, concurrency=settings.concurrency, engine=engine, log=log)
    meter = UsageMeter()
    written = failed = 0
    try:
        with JsonlWriter(out) as w:
            results = (run_jobs(eng, jobs, parse_rating, settings, meter) if method == "text" else
                       (_as_outcome(r) for r in run_prob_jobs(eng, [ProbJob(j.key, j.messages) for j in jobs],
                                                              concurrency=settings.concurrency, meter=meter,
                                                              choices=DIGITS)))
            for n, res in enumerate(results, start=1):
                model, qid, t = res.key
                q, a = units[res.key]
                _, prompt = single_messages(q.turns, a.turns, t, q.reference_for(t), digit=method == "prob")
                rec = {
                    "question_id": qid, "turn": t + 1, "category": q.category, "lang": q.lang,
                    "model_id": model, "score": res.verdict, "status": "ok" if res.ok else "failed", "method": method,
                    "length": len(a.turns[t]), "judgment": res.text, "attempts": res.attempts,
                    "judge": eng.model_id, "judge_name": getattr(eng, "model_name", eng.model_id),
                    "prompt": prompt.record(), "tstamp": time.time(),
                    "provenance": provenance(eng, template=prompt.name, params=settings.params(0),
                                             stage="judge.grade", prompt=prompt.record()),
                }
                failed += not res.ok
                w.write(rec)
                written += 1
                if on_progress:
                    on_progress(n, len(jobs))
    finally:
        if own:
            eng.close()
    return JudgeRunResult(out, getattr(eng, "model_name", eng.model_id), written, len(done), failed,
                          round(time.time() - start, 2), meter.snapshot(), missing,
                          list(getattr(eng, "base_urls", None) or []))


def _as_outcome(res: ProbOutcome) -> JudgeOutcome:
    """A one-digit grade in the shape of a text grade: the expected score is the verdict."""
    attempts = [{"attempt": 0, **res.to_dict()}]
    return JudgeOutcome(res.key, expected_score(res.result), json.dumps(res.to_dict()), attempts)
