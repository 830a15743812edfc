"""GSM8K-format files: ``{"question": ..., "answer": "... #### N"}`` one per line.

The test set ships as the offline ``gsm8k`` pack. For label-free self-improvement the test set is
split once: the first ``EVAL_SIZE`` questions evaluate, the rest form the unlabeled pool. Any
question pool is checked against the evaluation subset (by normalised question text), so a
self-improvement run can never train on a question it is scored on.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ownchat.data.jsonl import read_jsonl
from ownchat.errors import DataError, UserError
from ownchat.improve.extract import gold_answer

EVAL_SIZE = 300  # the first 300 test questions evaluate; the rest are the unlabeled pool


@dataclass(frozen=True)
class Problem:
    index: int  # position in its file (0-based): the stable id used in every output
    question: str
    gold: str | None  # canonical final answer; None for unlabeled questions
    solution: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def test_set_path() -> Path:
    """The GSM8K test set from the offline pack (pulled on first use)."""
    from ownchat.models.store import installed, pull

    inst = installed("gsm8k") or pull("gsm8k")
    return inst.path


def load_problems(path: str | Path | None = None, *, labeled: bool = True) -> list[Problem]:
    """Read a GSM8K-format file (default: the pack's test set).

    ``labeled=True`` requires ``answer`` ending in ``#### N``. ``labeled=False`` reads questions only
    and *drops* any answer present, so label-free code cannot peek at labels by accident.
    """
    path = Path(path) if path else test_set_path()
    out: list[Problem] = []
    for line_no, rec in enumerate(read_jsonl(path), start=1):
        q = rec.get("question", rec.get("problem", rec.get("prompt")))
        if not isinstance(q, str) or not q.strip():
            raise DataError(path, line_no, "record has no 'question' text",
                            'GSM8K format is {"question": "...", "answer": "... #### 42"}')
        if not labeled:
            out.append(Problem(len(out), q.strip(), None))
            continue
        sol = rec.get("answer")
        if not isinstance(sol, str):
            raise DataError(path, line_no, "record has no 'answer'",
                            "labeled GSM8K records need an answer ending in '#### N'")
        gold = gold_answer(sol)
        if gold is None:
            raise DataError(path, line_no, "answer does not end with '#### <number>'",
                            "the final line of a GSM8K solution is '#### 42'")
        out.append(Problem(len(out), q.strip(), gold, sol))
    if not out:
        raise DataError(path, None, "no questions in the file", "one JSON object per line")
    return out


def select(problems: list[Problem], *, offset: int = 0, subset: int | None = None) -> list[Problem]:
    if offset < 0 or (subset is not None and subset <= 0):
        raise UserError("--offset must be >= 0 and --subset > 0")
    if offset >= len(problems):
        raise UserError(f"--offset {offset} is past the end ({len(problems)} questions)")
    end = len(problems) if subset is None else min(len(problems), offset + subset)
    return problems[offset:end]


def question_key(question: str) -> str:
    """Whitespace- and case-insensitive identity of a question (for overlap checks)."""
    norm = re.sub(r"\s+", " ", question.strip().lower())
    return hashlib.sha256(norm.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Split:
    """The record of which questions evaluate and which are unlabeled: written into every report."""

    eval_source: str
    eval_range: tuple[int, int]  # [start, end) in the eval file
    pool_source: str
    pool_size: int
    overlap: int  # pool questions that appear in the eval subset (must be 0)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["eval_range"] = list(self.eval_range)
        d["disjoint"] = self.overlap == 0
        return d


def default_pool(eval_size: int = EVAL_SIZE) -> list[Problem]:
    """The test set beyond the evaluation subset, labels dropped."""
    allq = load_problems(test_set_path(), labeled=False)
    return allq[eval_size:]


def check_disjoint(eval_problems: Iterable[Problem], pool: Iterable[Problem], *, eval_source: str,
                   pool_source: str, eval_range: tuple[int, int]) -> Split:
    """Refuse a pool that shares any question with the evaluation subset."""
    eval_keys = {question_key(p.question) for p in eval_problems}
    pool = list(pool)
    clash = [p for p in pool if question_key(p.question) in eval_keys]
    if clash:
        raise DataError(pool_source, clash[0].index + 1,
                        f"{len(clash)} unlabeled question(s) are also in the evaluation subset "
                        f"(questions {eval_range[0]}..{eval_range[1] - 1})",
                        "remove them, or evaluate on a different --offset/--subset")
    return Split(eval_source, eval_range, pool_source, len(pool), 0)
