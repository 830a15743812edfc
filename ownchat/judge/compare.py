"""Pairwise judging in both orders: a win counts only when the judge picks it both ways round.

Every (question, turn) is judged twice, once with model A's reply shown first and once with model B's
first. Agreeing orders give the winner; disagreeing ones (the judge followed the position, not the
content) become a tie and are flagged ``consistent: false``, so the report can show the position-bias
rate. Turn 2 is judged with each model's whole conversation. A verdict line is written only once both
orders are in, so a killed run resumes cleanly; the response cache makes the replay free.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ownchat.data.jsonl import JsonlWriter, read_jsonl
from ownchat.engines.base import Engine, UsageMeter
from ownchat.errors import UserError
from ownchat.judge.answer import Answer, answers_model_id, load_answers
from ownchat.judge.parse import parse_pair
from ownchat.judge.prob import ProbJob, calibrated, run_prob_jobs
from ownchat.judge.prompts import pair_messages
from ownchat.judge.questions import Question, resolve_questions
from ownchat.judge.runner import JudgeJob, JudgeSettings, run_jobs

ORDERS = ("ab", "ba")  # "ab": model A shown as assistant A; "ba": model B shown first
METHODS = ("text", "prob")
PAIR_FOLLOWUP = "the verdict: [[A]] or [[B]]"


@dataclass
class JudgeRunResult:
    path: Path
    judge: str
    written: int
    skipped: int
    failed: int
    seconds: float
    usage: dict[str, float]
    missing: list[Any] = field(default_factory=list)  # question ids without an answer on one side
    hosts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "path": str(self.path)}


def to_model(label: str | None, order: str) -> str | None:
    """Map a judge label (A/B/tie, positional) to ``model_a``/``model_b``/``tie`` for that order."""
    if label is None:
        return None
    if label == "tie":
        return "tie"
    first_is_a = order == "ab"
    return "model_a" if (label == "A") == first_is_a else "model_b"


def combine(g1: str | None, g2: str | None) -> tuple[str | None, bool]:
    """(winner, consistent) from the verdicts of the two orders, already mapped to models."""
    if g1 is None or g2 is None:
        return None, False
    if g1 == g2:
        return g1, True
    return "tie", False


def open_judge(judge: str | Engine, *, cache: bool | str | Path, concurrency: int | None,
               engine: str | None, log: Callable[[str], None]) -> tuple[Engine, bool]:
    if isinstance(judge, Engine):
        return judge, False
    from ownchat.engines import load_engine

    return load_engine(str(judge), engine, cache=cache, concurrency=concurrency, log=log), True


def _questions(questions: Sequence[Question] | str | Path) -> list[Question]:
    return list(questions) if not isinstance(questions, (str, Path)) else resolve_questions(questions)


def turn_indices(q: Question, turns: Sequence[int] | None) -> list[int]:
    """0-based turns to judge: all of the question's turns, or the 1-based ``turns`` asked for."""
    return [t for t in range(len(q.turns)) if turns is None or (t + 1) in turns]


def compare_answers(questions: Sequence[Question] | str | Path, answers_a: str | Path, answers_b: str | Path,
                    judge: str | Engine, out: str | Path, *, turns: Sequence[int] | None = None,
                    settings: JudgeSettings | None = None, cache: bool | str | Path = True,
                    engine: str | None = None, log: Callable[[str], None] = print,
                    on_progress: Callable[[int, int], None] | None = None, method: str = "text") -> JudgeRunResult:
    """Judge ``answers_a`` against ``answers_b`` in both orders; append verdicts to ``out``.

    ``method="text"``: the judge explains briefly and writes ``[[A]]``/``[[B]]``; a win needs both
    orders to agree. ``method="prob"``: one-letter verdicts read from token probabilities, both
    orders combined by balanced position calibration (``ownchat.judge.prob``).
    Returns the run's result (``.path`` is the verdict file, ready for ``build_report``).
    """
    if method not in METHODS:
        raise UserError(f"unknown judge method {method!r}: use one of {', '.join(METHODS)}")
    from ownchat.data.provenance import provenance

    start = time.time()
    settings = settings or JudgeSettings()
    qs = _questions(questions)
    pa, pb, out = Path(answers_a), Path(answers_b), Path(out)
    ans_a, ans_b = load_answers(pa), load_answers(pb)
    model_a, model_b = answers_model_id(ans_a, pa), answers_model_id(ans_b, pb)
    if model_a == model_b:
        model_b += " (B)"  # the same model against itself (e.g. two seeds) still needs two names
    done = {(r["question_id"], r["turn"]) for r in read_jsonl(out, allow_partial_last_line=True)
            if r.get("model_a") == model_a and r.get("model_b") == model_b
            and r.get("method", "text") == method} if out.exists() else set()
    missing = [q.question_id for q in qs if q.question_id not in ans_a or q.question_id not in ans_b]
    if missing:
        log(f"{len(missing)} question(s) lack an answer from one of the models and are skipped: {missing[:10]}")
    jobs, units = [], {}
    for q in qs:
        if q.question_id in missing:
            continue
        a, b = ans_a[q.question_id], ans_b[q.question_id]
        for t in turn_indices(q, turns):
            if (q.question_id, t + 1) in done or t >= len(a.turns) or t >= len(b.turns):
                continue
            units[(q.question_id, t)] = (q, a, b)
            ref = q.reference_for(t)
            for order in ORDERS:
                first, second = (a, b) if order == "ab" else (b, a)
                msgs, prompt = pair_messages(q.turns, first.turns, second.turns, t, ref, letter=method == "prob")
                jobs.append(JudgeJob((q.question_id, t, order), msgs, followup=PAIR_FOLLOWUP))
    skipped = len(done)
    if not jobs:  # everything already judged: do not load the judge just to find that out
        return JudgeRunResult(out, str(getattr(judge, "model_id", judge)), 0, len(done), 0,
                              round(time.time() - start, 2), {}, missing)
    eng, own = open_judge(judge, cache=cache, concurrency=settings.concurrency, engine=engine, log=log)
    meter = UsageMeter()
    halves: dict[tuple[Any, int], dict[str, Any]] = {}
    written = failed = finished = 0
    outcomes = (run_jobs(eng, jobs, parse_pair, settings, meter) if method == "text" else
                run_prob_jobs(eng, [ProbJob(j.key, j.messages) for j in jobs], concurrency=settings.concurrency,
                              meter=meter))
    try:
        with JsonlWriter(out) as w:
            for res in outcomes:
                qid, t, order = res.key
                halves.setdefault((qid, t), {})[order] = res
                finished += 1
                if on_progress:
                    on_progress(finished, len(jobs))
                if len(halves[(qid, t)]) < 2:
                    continue
                q, a, b = units[(qid, t)]
                rec = _record(q, t, a, b, model_a, model_b, halves.pop((qid, t)), eng, method)
                rec["provenance"] = provenance(eng, template=rec["prompt"]["name"], params=settings.params(0),
                                               stage="judge.compare", prompt=rec["prompt"])
                failed += rec["status"] != "ok"
                w.write(rec)
                written += 1
    finally:
        if own:
            eng.close()
    return JudgeRunResult(out, getattr(eng, "model_name", eng.model_id), written, skipped, failed,
                          round(time.time() - start, 2), meter.snapshot(), missing,
                          list(getattr(eng, "base_urls", None) or []))


def _record(q: Question, t: int, a: Answer, b: Answer, model_a: str, model_b: str,
            halves: dict[str, Any], eng: Engine, method: str = "text") -> dict[str, Any]:
    _, prompt = pair_messages(q.turns, a.turns, b.turns, t, q.reference_for(t), letter=method == "prob")
    if method == "prob":
        g = {o: to_model(halves[o].label, o) for o in ORDERS}
        cal = calibrated(halves["ab"].log_odds, halves["ba"].log_odds)
        winner, consistent = cal["winner"], cal["consistent"]
        judgments = [{"order": o, **halves[o].to_dict()} for o in ORDERS]
        extra = {"d": cal["d"], "bias": cal["bias"], "p_a": cal["p_a"]}
    else:
        g = {o: to_model(halves[o].verdict, o) for o in ORDERS}
        winner, consistent = combine(g["ab"], g["ba"])
        judgments = [{"order": o, "label": halves[o].verdict, "text": halves[o].text,
                      "attempts": halves[o].attempts} for o in ORDERS]
        extra = {}
    return {
        "question_id": q.question_id, "turn": t + 1, "category": q.category, "lang": q.lang,
        "model_a": model_a, "model_b": model_b,
        "g1": g["ab"], "g2": g["ba"], "winner": winner, "consistent": consistent,
        "status": "ok" if winner is not None else "failed",
        "len_a": len(a.turns[t]), "len_b": len(b.turns[t]),
        "method": method, **extra, "judgments": judgments,
        "judge": eng.model_id, "judge_name": getattr(eng, "model_name", eng.model_id),
        "prompt": prompt.record(), "tstamp": time.time(),
    }
