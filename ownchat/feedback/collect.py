"""``collect_feedback``: the student samples k answers, the teacher scores them, pairs come out.

This replaces human RLHF labelling with teacher scores (RLAIF). Each prompt is one job on a rolling
queue (``ownchat.engines.rolling``): the student samples later prompts while the teacher grades
earlier ones, and no slot waits for the slowest answer of a batch. Prompts are written in input
order as they finish; every sample and score also lands in the response cache, so a crash loses
only the requests in flight and the resumed run replays the rest instead of paying again.

Two files are written: ``out`` (preference pairs, TRL-readable) and ``<out stem>.scores.jsonl`` (one
record per prompt with every candidate, its score and the grader's reply). The scores file is the
resume marker: a prompt is done once its scores record exists.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ownchat.data.formats import to_messages
from ownchat.data.jsonl import JsonlWriter, read_jsonl, write_jsonl
from ownchat.data.provenance import provenance
from ownchat.data.quality import is_garbled
from ownchat.engines.base import ChatRequest, Engine, Message, SamplingParams, UsageMeter
from ownchat.engines.rolling import run_jobs
from ownchat.errors import DataError, UserError
from ownchat.feedback.pairs import PAIR_MODES, Candidate, make_pairs
from ownchat.feedback.prompts import RUBRIC_VERSION, conversation_text
from ownchat.feedback.score import ScoreItem, score_steps

RULE_SCORE = 1.0  # the rubric's floor, given without asking the teacher
STUDENT, TEACHER = "student", "teacher"  # engine keys of the rolling queue


@dataclass
class FeedbackConfig:
    student: str
    teacher: str
    prompts: Path
    out: Path
    k: int = 4
    temperature: float = 0.8
    top_p: float = 0.95
    max_tokens: int = 256
    seed: int = 0
    include_teacher: bool = False
    pairs: str = "best-worst"
    margin: float = 1.0
    retries: int = 2
    limit: int | None = None
    chunk: int = 8  # prompts that may finish ahead of the oldest unwritten one (the reorder buffer)
    cache: bool | str | Path = True
    student_engine: str | None = None  # "llamacpp" | "hf" | "openai"; None picks by model kind
    teacher_engine: str | None = None
    teacher_base_url: str | None = None  # an OpenAI-compatible server for the teacher
    concurrency: int | None = None
    #: how the user wrote each setting, for error messages: CLI flags by default; a recipe passes its keys
    names: dict[str, str] = field(default_factory=dict)

    def _name(self, key: str) -> str:
        return self.names.get(key) or "--" + key.replace("_", "-")

    def validate(self) -> None:
        """Every problem at once, each named as the user wrote it (a flag, or a recipe key)."""
        problems = []
        if self.k < 1 or (self.k < 2 and not self.include_teacher):
            problems.append(f"{self._name('k')} must be at least 2 (or 1 with {self._name('include_teacher')}): "
                            "a pair needs two answers")
        if self.temperature <= 0:
            problems.append(f"{self._name('temperature')} must be > 0: greedy decoding gives k identical samples")
        if self.pairs not in PAIR_MODES:
            problems.append(f"{self._name('pairs')} must be one of {', '.join(PAIR_MODES)}")
        if self.margin <= 0:
            problems.append(f"{self._name('margin')} must be > 0")
        if problems:
            raise UserError(f"{len(problems)} problem(s) in the feedback settings: " + "; ".join(problems))


@dataclass
class FeedbackResult:
    out: str
    scores: str
    prompts: int
    resumed: int
    counts: dict[str, int]
    usage: dict[str, dict[str, float]]
    hosts: list[str] = field(default_factory=list)
    seconds: float = 0.0
    pairs_total: int = 0  # pairs in ``out`` now, including those of earlier (resumed) runs

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def scores_path(out: Path) -> Path:
    return Path(out).with_name(Path(out).stem + ".scores.jsonl")


def load_prompts(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """Records with ``prompt`` or ``messages`` (any format ``to_messages`` reads), optional ``reference``.

    A trailing assistant turn is dropped (the student writes that turn); ids come from an ``id``
    field or a hash of the messages, so resuming survives reordering the file.
    """
    out: list[dict[str, Any]] = []
    for line, rec in enumerate(read_jsonl(path), start=1):
        msgs = to_messages(rec, where=(path, line), require_answer=False)
        while msgs and msgs[-1]["role"] == "assistant":
            msgs.pop()
        if not msgs or msgs[-1]["role"] != "user":
            raise DataError(path, line, "the prompt must end with a user turn", "give `prompt` or `messages`")
        ref = rec.get("reference")
        if ref is not None and not isinstance(ref, str):
            raise DataError(path, line, "'reference' must be a string", "")
        pid = str(rec.get("id") or hashlib.sha1(json.dumps(msgs, sort_keys=True).encode()).hexdigest()[:16])
        out.append({"id": pid, "messages": msgs, "reference": ref, "line": line})
        if limit and len(out) >= limit:
            break
    if not out:
        raise DataError(path, None, "no prompts found", "one JSON object per line with `prompt` or `messages`")
    return out


def _resume(out: Path, sp: Path) -> set[str]:
    """Ids already finished; pairs written for an unfinished prompt (crash mid-chunk) are dropped."""
    done = {r["id"] for r in read_jsonl(sp, allow_partial_last_line=True)} if sp.exists() else set()
    if out.exists():
        rows = list(read_jsonl(out, allow_partial_last_line=True))
        kept = [r for r in rows if r.get("id") in done]
        if len(kept) != len(rows) or (out.stat().st_size and not out.read_bytes().endswith(b"\n")):
            write_jsonl(out, kept)
    return done


def _hosts(*engines: Engine) -> list[str]:
    hosts: list[str] = []
    for eng in engines:
        urls = getattr(getattr(eng, "inner", eng), "base_urls", None) or []
        hosts += [u for u in ([urls] if isinstance(urls, str) else urls) if u not in hosts]
    return hosts


def collect_feedback(cfg: FeedbackConfig, log: Callable[[str], None] = print, *,
                     student: Engine | None = None, teacher: Engine | None = None,
                     on_progress: Callable[[int, int], None] | None = None) -> FeedbackResult:
    """Run the whole stage; pass ``student``/``teacher`` engines to reuse ones already loaded."""
    from ownchat.engines import load_engine

    cfg.validate()
    t0 = time.time()
    out, sp = Path(cfg.out), scores_path(Path(cfg.out))
    prompts = load_prompts(Path(cfg.prompts), cfg.limit)
    done = _resume(out, sp)
    todo = [p for p in prompts if p["id"] not in done]
    resumed = len(prompts) - len(todo)
    if resumed:
        log(f"resuming: {resumed}/{len(prompts)} prompts already scored in {sp}")
    if not todo:  # nothing left: do not load models just to write nothing
        log(f"feedback: all {len(prompts)} prompts already scored -> {out}")
        return FeedbackResult(str(out), str(sp), len(prompts), resumed, {}, {}, [], round(time.time() - t0, 1),
                              _count_lines(out))
    if student is None:
        student = load_engine(cfg.student, cfg.student_engine, cache=cfg.cache, concurrency=cfg.concurrency, log=log)
    if teacher is None:
        same = cfg.teacher == cfg.student and cfg.teacher_engine == cfg.student_engine and not cfg.teacher_base_url
        teacher = student if same else \
            load_engine(cfg.teacher, cfg.teacher_engine, cache=cfg.cache, concurrency=cfg.concurrency,
                        base_url=cfg.teacher_base_url, log=log)
    s_meter, t_meter = UsageMeter(), UsageMeter()
    sample = SamplingParams(temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_tokens, seed=cfg.seed)
    greedy = SamplingParams(temperature=0.0, max_tokens=cfg.max_tokens)
    prov = {"student": provenance(student, template="feedback-sample", params=sample, stage="feedback"),
            "teacher": provenance(teacher, template=RUBRIC_VERSION, params=greedy, stage="feedback"),
            "rubric": RUBRIC_VERSION, "pairs": cfg.pairs, "margin": cfg.margin}
    counts: Counter = Counter()
    finished = resumed
    if on_progress:
        on_progress(finished, len(prompts))
    # one pool per engine: the student samples while the teacher grades other prompts' answers
    engines: dict[str, tuple[Engine, int | None]] = {STUDENT: (student, cfg.concurrency)}
    t_key = STUDENT if teacher is student else TEACHER
    if t_key == TEACHER:
        engines[TEACHER] = (teacher, cfg.concurrency)
    jobs = (_prompt_job(p, cfg, sample, greedy, t_key, s_meter, t_meter) for p in todo)
    with JsonlWriter(out) as pw, JsonlWriter(sp) as sw:
        # results come back in prompt order; each prompt's pairs, then its scores record (the resume marker)
        for i, (cands, graded, local) in run_jobs(engines, jobs, ahead=max(cfg.chunk, 4)):
            p = todo[i]
            counts.update(local)
            for pair in make_pairs(cands, cfg.pairs, cfg.margin, counts):
                pw.write(_pair_record(p, pair.chosen, pair.rejected, prov))
            sw.write({"id": p["id"], "messages": p["messages"], "reference": p["reference"],
                      "candidates": [dict(c.to_dict(), grader=graded.get(id(c))) for c in cands],
                      "rubric": RUBRIC_VERSION})
            finished += 1
            if on_progress:
                on_progress(finished, len(prompts))
    counts["prompts_done"] = len(todo)
    log(f"feedback: {len(todo)} prompts scored ({resumed} resumed), {counts['pairs']} pairs, "
        f"{counts['tie_prompts']} tied prompts, {counts['unscored']} unscored answers -> {out}")
    return FeedbackResult(str(out), str(sp), len(prompts), resumed, dict(counts),
                          {"student": s_meter.snapshot(), "teacher": t_meter.snapshot()},
                          _hosts(student, teacher), round(time.time() - t0, 1), _count_lines(out))


def _count_lines(path: Path) -> int:
    from ownchat.data.jsonl import count_lines

    return count_lines(path)  # "\n" only: str.splitlines would also cut at U+2028 inside a record


def _prompt_job(p: dict[str, Any], cfg: FeedbackConfig, sample: SamplingParams, greedy: SamplingParams,
                t_key: str, s_meter: UsageMeter, t_meter: UsageMeter):
    """One prompt: k student samples (distinct seeds via ``sample_index``), the teacher's own answer
    when asked for, then the teacher's scores (with retries). Returns (candidates, grader notes, counts)."""
    local: Counter = Counter()
    comps = yield STUDENT, [ChatRequest.chat(p["messages"], sample, sample_index=j) for j in range(cfg.k)]
    # an errored sample stays in the pool with score None: counted as unscored, never paired
    cands = [Candidate("" if c.error else c.text, None, "student", j, c.finish_reason) for j, c in enumerate(comps)]
    for c in comps:
        s_meter.add(c)
    if cfg.include_teacher:
        (tc,) = yield t_key, [ChatRequest.chat(p["messages"], greedy)]
        t_meter.add(tc)
        cands.append(Candidate("" if tc.error else tc.text, None, "teacher", 0, tc.finish_reason))
    # empty or errored answers are not sent to the grader: they stay unscored, never paired.
    # Degenerate loops get the lowest score by rule, unpaid: the 1.5B grader was seen choosing
    # a reply that repeated one date 40 times over an honest "please give me the text".
    graded: dict[int, dict[str, Any]] = {}
    for c in cands:
        if c.text.strip() and is_garbled(c.text):
            c.score, graded[id(c)] = RULE_SCORE, {"rule": "garbled", "score": RULE_SCORE}
            local["garbled_by_rule"] += 1
    flat = [c for c in cands if c.text.strip() and id(c) not in graded]
    steps = score_steps([ScoreItem(p["messages"], c.text, p["reference"]) for c in flat], retries=cfg.retries)
    try:
        reqs = next(steps)
        while True:
            replies = yield t_key, reqs
            for r in replies:
                t_meter.add(r)
            reqs = steps.send(replies)
    except StopIteration as stop:
        scored = stop.value
    for c, s in zip(flat, scored, strict=True):
        c.score = s.score
        graded[id(c)] = {"reply": s.reply, "attempts": s.attempts, "errors": s.errors}
    return cands, graded, local


def _pair_record(p: dict[str, Any], chosen: Candidate, rejected: Candidate, prov: dict[str, Any]) -> dict[str, Any]:
    msgs: list[Message] = p["messages"]
    return {
        "id": p["id"],
        # TRL's standard (string) format ...
        "prompt": conversation_text(msgs),
        "chosen": chosen.text,
        "rejected": rejected.text,
        # ... and the conversational one, which keeps system prompts and multi-turn history
        "prompt_messages": msgs,
        "chosen_messages": [{"role": "assistant", "content": chosen.text}],
        "rejected_messages": [{"role": "assistant", "content": rejected.text}],
        "score_chosen": chosen.score,
        "score_rejected": rejected.score,
        "chosen_source": chosen.source,
        "rejected_source": rejected.source,
        "provenance": prov,
    }
