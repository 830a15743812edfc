"""Question sets in MT-bench's JSONL format: ``question_id, category, turns[], reference[]``.

Three sources: ownchat's own bench (shipped in ``ownchat/judge/bench``), the real MT-bench file from
the ``mt-bench`` data pack, or any JSONL file in the same format. Every bad line is reported with its
file and line number, because a question set is usually written by hand.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ownchat.data.jsonl import read_jsonl
from ownchat.errors import DataError, UserError

BENCH_DIR = Path(__file__).parent / "bench"
OWN_BENCH = BENCH_DIR / "ownchat_bench.jsonl"
#: categories whose answers are right or wrong: the judge is shown the reference answer for these.
REFERENCE_CATEGORIES = ("math", "reasoning", "coding")


@dataclass
class Question:
    question_id: int | str
    category: str
    turns: list[str]
    reference: list[str] | None = None
    lang: str = "en"
    extra: dict[str, Any] = field(default_factory=dict)

    def reference_for(self, turn: int) -> str | None:
        """The reference for 0-based ``turn``, or None (an empty string counts as none)."""
        if not self.reference or turn >= len(self.reference):
            return None
        return self.reference[turn] or None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"question_id": self.question_id, "category": self.category, "turns": self.turns}
        if self.reference:
            d["reference"] = self.reference
        if self.lang != "en":
            d["lang"] = self.lang
        return {**d, **self.extra}


def _str_list(value: Any, path: Path, line: int, name: str, *, allow_empty_items: bool) -> list[str]:
    if not isinstance(value, list) or not value:
        raise DataError(path, line, f"'{name}' must be a non-empty list of strings",
                        f'e.g. "{name}": ["first turn", "follow-up"]')
    for item in value:
        if not isinstance(item, str) or (not allow_empty_items and not item.strip()):
            raise DataError(path, line, f"'{name}' holds a non-string or empty item: {item!r}",
                            "every turn is a non-empty string")
    return list(value)


def parse_question(obj: dict[str, Any], path: Path, line: int) -> Question:
    if "question_id" not in obj:
        raise DataError(path, line, "missing 'question_id'", "every question needs a unique id")
    qid = obj["question_id"]
    if not isinstance(qid, (int, str)) or isinstance(qid, bool):
        raise DataError(path, line, f"'question_id' must be an integer or string, got {qid!r}")
    turns = _str_list(obj.get("turns"), path, line, "turns", allow_empty_items=False)
    ref = obj.get("reference")
    if ref is not None:
        ref = _str_list(ref, path, line, "reference", allow_empty_items=True)
    known = {"question_id", "category", "turns", "reference", "lang"}
    return Question(qid, str(obj.get("category") or "general"), turns, ref, str(obj.get("lang") or "en"),
                    {k: v for k, v in obj.items() if k not in known})


def load_questions(path: str | Path) -> list[Question]:
    """Read and validate a question file; duplicate ids are an error (answers are keyed on them)."""
    path = Path(path)
    out: list[Question] = []
    seen: dict[Any, int] = {}
    for lineno, rec in _numbered(path):
        q = parse_question(rec, path, lineno)
        if q.question_id in seen:
            raise DataError(path, lineno, f"duplicate question_id {q.question_id!r} (first on line "
                            f"{seen[q.question_id]})", "question ids must be unique")
        seen[q.question_id] = lineno
        out.append(q)
    if not out:
        raise DataError(path, None, "no questions in the file", "one JSON object per line")
    return out


def _numbered(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    # read_jsonl skips blank lines; recover the true line numbers for error messages
    if not path.exists():
        raise DataError(path, None, "file not found", "check the path, or use --bench ownchat / mt-bench")
    # "\n" only, as read_jsonl splits: str.splitlines would also cut at U+2028 inside a record
    lines = [i for i, s in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1) if s.strip()]
    yield from zip(lines, read_jsonl(path), strict=False)


def mt_bench_files() -> dict[str, Path] | None:
    """Paths of the MT-bench pack's files, or None when the pack is not installed."""
    from ownchat.models.store import installed

    inst = installed("mt-bench")
    if inst is None:
        return None
    files = {"questions": inst.path}
    for name, p in inst.extra.items():
        if p.exists():
            files["judge_prompts" if name.startswith("judge_prompts") else "gpt4_reference"] = p
    return files


def load_mt_bench(*, gpt4_references: bool = True) -> list[Question]:
    """The 80 MT-bench questions. Math/reasoning/coding questions without a ``reference`` field get
    the GPT-4 reference answers shipped with MT-bench, as its own reference-guided judging does."""
    files = mt_bench_files()
    if files is None:
        raise UserError("the MT-bench pack is not installed. Run: ownchat models pull mt-bench")
    questions = load_questions(files["questions"])
    ref_file = files.get("gpt4_reference")
    if gpt4_references and ref_file:
        refs = {}
        for rec in read_jsonl(ref_file):
            choices = rec.get("choices") or [{}]
            refs[rec.get("question_id")] = choices[0].get("turns")
        for q in questions:
            if q.reference is None and q.category in REFERENCE_CATEGORIES and refs.get(q.question_id):
                q.reference = list(refs[q.question_id])
    return questions


def resolve_questions(spec: str | Path) -> list[Question]:
    """``ownchat`` (the shipped bench), ``mt-bench`` (the pack) or a path to a JSONL file."""
    s = str(spec)
    if s in ("ownchat", "own", "default"):
        return load_questions(OWN_BENCH)
    if s in ("mt-bench", "mtbench", "mt_bench"):
        return load_mt_bench()
    return load_questions(Path(s).expanduser())


def select(questions: Sequence[Question], *, limit: int | None = None, categories: Sequence[str] = (),
           lang: str | None = None, max_turns: int | None = None, seed: int = 0) -> list[Question]:
    """Filter and trim a question set. ``limit`` takes questions round-robin over categories, in a seeded
    random order within each, so that a small subset still covers every category and language (the
    first N lines of a file are usually one category)."""
    qs = [q for q in questions if (not categories or q.category in categories) and (not lang or q.lang == lang)]
    if max_turns is not None:
        qs = [Question(q.question_id, q.category, q.turns[:max_turns],
                       q.reference[:max_turns] if q.reference else None, q.lang, q.extra) for q in qs]
    if limit is None or limit >= len(qs):
        return qs
    by_cat: dict[str, list[Question]] = {}
    for q in qs:
        by_cat.setdefault(q.category, []).append(q)
    picked: list[Question] = []
    rng = random.Random(seed)
    queues = [rng.sample(v, len(v)) for v in by_cat.values()]
    while len(picked) < limit:
        for queue in queues:
            if queue and len(picked) < limit:
                picked.append(queue.pop(0))
    order = {id(q): i for i, q in enumerate(qs)}
    return sorted(picked, key=lambda q: order[id(q)])


def describe(questions: Sequence[Question]) -> dict[str, Any]:
    """Counts for ``ownchat judge questions``: by category, by language, turns, references."""
    return {
        "questions": len(questions),
        "turns": sum(len(q.turns) for q in questions),
        "multi_turn": sum(len(q.turns) > 1 for q in questions),
        "with_reference": sum(bool(q.reference) for q in questions),
        "categories": dict(Counter(q.category for q in questions)),
        "languages": dict(Counter(q.lang for q in questions)),
    }


def dump_questions(questions: Iterable[Question], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for q in questions:
            f.write(json.dumps(q.to_dict(), ensure_ascii=False) + "\n")
    return path
