"""Multi-turn answers from any model, written in MT-bench's answer format.

One line per question: ``question_id, answer_id, model_id, choices: [{index, turns: [...]}], tstamp``
(plus an ``ownchat`` block with provenance and usage), so files made by FastChat can be judged here and
ours can be judged there. Turn k+1 is asked with turns 1..k and the model's own replies in context,
as soon as turn k is answered: questions run on a rolling queue (``ownchat.engines.rolling``), so the
engine's slots stay full and one long answer holds up nobody. A question's line is written, in
question order, once all its turns are answered; with the response cache a crash loses nothing
(the replayed turns cost no generation).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ownchat.data.jsonl import JsonlWriter, read_jsonl
from ownchat.engines.base import ChatRequest, Engine, SamplingParams, UsageMeter
from ownchat.errors import DataError
from ownchat.judge.questions import Question


@dataclass
class Answer:
    question_id: int | str
    model_id: str
    turns: list[str]
    record: dict[str, Any] = field(default_factory=dict)


@dataclass
class AnswerResult:
    path: Path
    model_id: str
    written: int
    skipped: int
    failed: int
    seconds: float
    usage: dict[str, float]
    hosts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "path": str(self.path)}


def load_answers(path: str | Path) -> dict[Any, Answer]:
    """``question_id -> Answer`` from an MT-bench answer file (first choice; later duplicates win)."""
    path = Path(path)
    out: dict[Any, Answer] = {}
    for i, rec in enumerate(read_jsonl(path, allow_partial_last_line=True), start=1):
        choices = rec.get("choices")
        if "question_id" not in rec or not isinstance(choices, list) or not choices:
            raise DataError(path, i, "not an MT-bench answer record",
                            'need "question_id" and "choices": [{"index": 0, "turns": [...]}]')
        turns = choices[0].get("turns") if isinstance(choices[0], dict) else None
        if not isinstance(turns, list) or not all(isinstance(t, str) for t in turns):
            raise DataError(path, i, "choices[0].turns must be a list of strings")
        out[rec["question_id"]] = Answer(rec["question_id"], str(rec.get("model_id") or path.stem), turns, rec)
    return out


def answers_model_id(answers: dict[Any, Answer], path: Path) -> str:
    ids = {a.model_id for a in answers.values()}
    if len(ids) > 1:
        raise DataError(path, None, f"answers from several models in one file: {sorted(ids)}",
                        "keep one model per answer file")
    return ids.pop() if ids else path.stem


def _answer_id(model_id: str, qid: Any, turns: Sequence[str]) -> str:
    blob = "\x00".join([model_id, str(qid), *turns])
    return hashlib.sha256(blob.encode()).hexdigest()[:22]


def answer_questions(model: str | Engine, questions: Sequence[Question], out: str | Path, *,
                     model_id: str | None = None, max_tokens: int = 512, temperature: float = 0.0,
                     concurrency: int | None = None, engine: str | None = None, cache: bool | str | Path = True,
                     system: str | None = None, log: Callable[[str], None] = print,
                     on_progress: Callable[[int, int], None] | None = None) -> AnswerResult:
    """Answer every turn of ``questions`` with ``model`` (a reference or an Engine) into ``out``.

    Questions already in ``out`` are skipped (resume). ``model_id`` names the model in the file
    (defaults to the reference). A question whose generation errored is not written: it is counted in
    ``failed`` (and logged) and the next run retries it.
    """
    from ownchat.data.provenance import provenance

    start = time.time()
    out = Path(out)
    done = set(load_answers(out)) if out.exists() else set()
    todo = [q for q in questions if q.question_id not in done]
    own_engine = not isinstance(model, Engine)
    if not todo:  # resumed run with nothing left: skip loading the model
        return AnswerResult(out, model_id or str(getattr(model, "model_id", model)), 0, len(questions), 0,
                            round(time.time() - start, 2), {})
    if own_engine:
        from ownchat.engines import load_engine

        eng = load_engine(str(model), engine, cache=cache, concurrency=concurrency, log=log)
    else:
        eng = model
    name = model_id or (str(model) if own_engine else getattr(eng, "model_name", eng.model_id))
    params = SamplingParams(temperature=temperature, max_tokens=max_tokens, seed=0 if temperature else None)
    meter = UsageMeter()
    written = failed = 0
    total_turns = sum(len(q.turns) for q in todo)
    finished_turns = 0

    def job(q: Question):
        """One question: turn k+1 is asked as soon as turn k is answered (no waiting for other questions)."""
        replies: list[str] = []
        meta: dict[str, list] = {"finish": [], "tokens": []}
        for t in range(len(q.turns)):
            (comp,) = yield [ChatRequest.chat(_history(q, replies, t, system), params)]
            if comp.error:  # not written: counted, shown, and retried by the next run
                return replies, meta, (t, comp.error)
            replies.append(comp.text)
            meta["finish"].append(comp.finish_reason)
            meta["tokens"].append(comp.completion_tokens)
        return replies, meta, None

    def on_completion(_i: int, _key: str, comp) -> None:
        nonlocal finished_turns
        meter.add(comp)
        finished_turns += 1
        if on_progress:
            on_progress(finished_turns, total_turns)

    from ownchat.engines.rolling import run_jobs

    try:
        with JsonlWriter(out) as w:
            # lines are written in question order as each question's last turn is in
            for i, (turns, meta, error) in run_jobs(eng, (job(q) for q in todo), slots=concurrency,
                                                    on_completion=on_completion):
                q = todo[i]
                if error is not None:
                    failed += 1
                    log(f"question {q.question_id} turn {error[0] + 1}: {error[1]} (retried next run)")
                    continue
                w.write({
                    "question_id": q.question_id,
                    "answer_id": _answer_id(name, q.question_id, turns),
                    "model_id": name,
                    "choices": [{"index": 0, "turns": turns}],
                    "tstamp": time.time(),
                    "ownchat": {
                        "finish_reasons": meta["finish"],
                        "completion_tokens": meta["tokens"],
                        "provenance": provenance(eng, template="judge-answer", params=params,
                                                 stage="judge.answer"),
                    },
                })
                written += 1
    finally:
        if own_engine:
            eng.close()
    return AnswerResult(out, name, written, len(questions) - len(todo), failed, round(time.time() - start, 2),
                        meter.snapshot(), list(getattr(eng, "base_urls", None) or []))


def _history(q: Question, replies: list[str], turn: int, system: str | None) -> list[dict[str, str]]:
    """The conversation up to user turn ``turn``, with the model's own earlier replies."""
    msgs = [{"role": "system", "content": system}] if system else []
    for k in range(turn):
        msgs += [{"role": "user", "content": q.turns[k]}, {"role": "assistant", "content": replies[k]}]
    msgs.append({"role": "user", "content": q.turns[turn]})
    return msgs
