"""Self-consistency over a file of questions: majority answer and confidence per question.

Input records are GSM8K-style (``question``, optional ``answer`` with ``#### N``: then each row is
also scored) or any chat format ``to_messages`` understands (the prompt is used as it is, without
the maths exemplars). Output ``sc.jsonl`` holds one record per question, appended as each question's
K samples complete; a re-run skips finished questions and the response cache replays samples.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ownchat.data.formats import to_messages
from ownchat.data.jsonl import JsonlWriter, read_jsonl
from ownchat.engines.base import Message, UsageMeter
from ownchat.errors import DataError
from ownchat.improve.evaluate import Accuracy, Progress
from ownchat.improve.extract import answers_match, gold_answer
from ownchat.improve.prompts import build_messages
from ownchat.improve.sc import SCConfig, self_consistency


@dataclass
class SCFileConfig:
    model: str
    questions: Path
    out: Path
    k: int = 5
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 256
    seed: int = 0
    shots: int = 3
    engine: str | None = None
    concurrency: int | None = None
    cache: bool | str = True

    def sc(self) -> SCConfig:
        return SCConfig(k=self.k, temperature=self.temperature, top_p=self.top_p, max_tokens=self.max_tokens,
                        seed=self.seed)


def _prompts(path: Path, shots: int) -> list[tuple[list[Message], str | None, str]]:
    """(messages, gold or None, display question) per record."""
    items = []
    for line, rec in enumerate(read_jsonl(path), start=1):
        if isinstance(rec.get("question"), str):
            sol = rec.get("answer")
            gold = gold_answer(sol) if isinstance(sol, str) else None
            items.append((build_messages(rec["question"], shots=shots), gold, rec["question"]))
            continue
        msgs = to_messages(rec, where=(path, line), require_answer=False)
        if msgs[-1]["role"] == "assistant":  # a finished conversation: vote on its last turn's prompt
            msgs = msgs[:-1]
        if not msgs or msgs[-1]["role"] != "user":
            raise DataError(path, line, "the conversation does not end with a user turn", "nothing to answer")
        items.append((msgs, None, msgs[-1]["content"]))
    if not items:
        raise DataError(path, None, "no records", "one JSON object per line")
    return items


def run_sc_file(cfg: SCFileConfig, log: Callable[[str], Any] = print, *,
                on_progress: Progress | None = None) -> dict[str, Any]:
    from ownchat.engines import load_engine

    items = _prompts(cfg.questions, cfg.shots)
    cfg.out.mkdir(parents=True, exist_ok=True)
    path = cfg.out / "sc.jsonl"
    finished = {r["index"] for r in read_jsonl(path, allow_partial_last_line=True)} if path.exists() else set()
    todo = [i for i in range(len(items)) if i not in finished]
    meter = UsageMeter()
    engine = load_engine(cfg.model, cfg.engine, cache=cfg.cache, concurrency=cfg.concurrency, log=log)
    count = len(finished)
    try:
        with JsonlWriter(path) as w:
            if on_progress:
                on_progress("self-consistency", count, len(items))
            prompts = [items[i][0] for i in todo]
            for j, res in self_consistency(engine, prompts, cfg.sc(), concurrency=cfg.concurrency,
                                           on_sample=lambda _j, _s, comp: meter.add(comp)):
                i = todo[j]
                if any(s.error for s in res.samples):
                    log(f"question {i}: a sample failed; it is retried on the next run")
                    continue
                _, gold, question = items[i]
                agree = res.agreeing()
                rec = {"index": i, "question": question, "answer": res.answer, "confidence": round(res.share, 4),
                       "votes": res.vote.counts, "k": cfg.k,
                       "rationale": agree[0].text if agree else res.samples[0].text}
                if gold is not None:
                    rec |= {"gold": gold, "correct": answers_match(res.answer, gold)}
                w.write(rec)
                count += 1
                if on_progress:
                    on_progress("self-consistency", count, len(items))
    finally:
        engine.close()
    rows = list(read_jsonl(path, allow_partial_last_line=True))
    summary: dict[str, Any] = {"questions": len(items), "answered": len(rows), "k": cfg.k,
                               "mean_confidence": round(sum(r["confidence"] for r in rows) / max(1, len(rows)), 4),
                               "usage": meter.snapshot(), "hosts": [], "config": {**asdict(cfg),
                               "questions": str(cfg.questions), "out": str(cfg.out)}}
    scored = [r for r in rows if "correct" in r]
    if scored:
        summary["accuracy"] = Accuracy(sum(r["correct"] for r in scored), len(scored)).to_dict()
    (cfg.out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
