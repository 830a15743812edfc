"""``ownchat judge validate``: a judge's verdicts count only once it has passed a known-answer test.

The set (``ownchat/judge/validation/pairs.jsonl``, written for ownchat) holds pairs where one reply
is better by construction: right vs wrong against a reference, on-topic vs an answer to another
question, complete vs cut off, the user's language vs another, an instruction followed vs ignored
(checked by IFEval's code). Each pair is judged exactly as ``judge compare`` judges two models — both
orders, the same prompts, the same combining rule — with the better reply as model A. So the
validation's win rate is the win rate ``compare`` would report for a model that is always better:
a judge that follows position scores 0.5, a perfect one 1.0.

A judge is *valid for pairwise comparison* when that win rate is at least ``VALID_WIN_RATE`` and
its 95% CI's lower bound at least ``VALID_LOWER``. The result is stored under
``$OWNCHAT_HOME/judge_validation`` by judge identity and method, where reports look it up.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ownchat.data.jsonl import read_jsonl
from ownchat.engines.base import Engine, UsageMeter
from ownchat.errors import DataError, UserError
from ownchat.judge.compare import METHODS, ORDERS, PAIR_FOLLOWUP, combine, open_judge, to_model
from ownchat.judge.parse import parse_pair
from ownchat.judge.prob import ProbJob, calibrated, run_prob_jobs
from ownchat.judge.prompts import pair_messages
from ownchat.judge.runner import JudgeJob, JudgeSettings, run_jobs
from ownchat.stats import bootstrap_ci

VALID_WIN_RATE = 0.8  # constructed pairs are easy: a judge worth believing gets most of them right
VALID_LOWER = 0.7  # ... and not by luck on this many pairs
OUTCOME = {"model_a": 1.0, "tie": 0.5, "model_b": 0.0}  # model A is the better reply


@dataclass(frozen=True)
class Pair:
    id: str
    lang: str
    kind: str
    category: str
    question: str
    reference: str | None
    better: str
    worse: str


def default_pairs() -> Path:
    return Path(str(resources.files("ownchat.judge").joinpath("validation/pairs.jsonl")))


def load_pairs(path: str | Path | None = None) -> list[Pair]:
    path = Path(path) if path else default_pairs()
    out = []
    for line, r in enumerate(read_jsonl(path), start=1):
        missing = [k for k in ("id", "lang", "kind", "question", "better", "worse") if not r.get(k)]
        if missing:
            raise DataError(path, line, f"missing {', '.join(missing)}", "see ownchat/judge/validation/README.md")
        out.append(Pair(r["id"], r["lang"], r["kind"], r.get("category", ""), r["question"], r.get("reference"),
                        r["better"], r["worse"]))
    return out


def _messages(p: Pair, order: str, letter: bool):
    first, second = (p.better, p.worse) if order == "ab" else (p.worse, p.better)
    msgs, _ = pair_messages([p.question], [first], [second], 0, p.reference, letter=letter)
    return msgs


def validate_judge(judge: str | Engine, *, method: str = "text", pairs: list[Pair] | None = None,
                   settings: JudgeSettings | None = None, cache: bool | str | Path = True,
                   engine: str | None = None, log: Callable[[str], None] = print,
                   on_progress: Callable[[int, int], None] | None = None, store: bool = True,
                   grades: bool = False) -> dict[str, Any]:
    """Judge every pair in both orders; return (and store) the summary with its verdict.

    ``grades=True`` validates single-answer grading instead: each reply graded on its own, and a pair
    is right when the better reply gets the higher score (equal scores count half).
    """
    if method not in METHODS:
        raise UserError(f"unknown judge method {method!r}: use one of {', '.join(METHODS)}")
    if grades:
        return _validate_grades(judge, method=method, pairs=pairs, settings=settings, cache=cache, engine=engine,
                                log=log, on_progress=on_progress, store=store)
    pairs = pairs if pairs is not None else load_pairs()
    if not pairs:
        raise UserError("no validation pairs to judge")
    settings = settings or JudgeSettings()
    t0 = time.time()
    eng, own = open_judge(judge, cache=cache, concurrency=settings.concurrency, engine=engine, log=log)
    by_id = {p.id: p for p in pairs}
    halves: dict[str, dict[str, Any]] = defaultdict(dict)
    meter = UsageMeter()
    try:
        if method == "text":
            jobs = [JudgeJob((p.id, o), _messages(p, o, False), followup=PAIR_FOLLOWUP) for p in pairs for o in ORDERS]
            results = run_jobs(eng, jobs, parse_pair, settings, meter)
        else:
            jobs = [ProbJob((p.id, o), _messages(p, o, True)) for p in pairs for o in ORDERS]
            results = run_prob_jobs(eng, jobs, concurrency=settings.concurrency, meter=meter)
        for n, res in enumerate(results, start=1):
            pid, order = res.key
            halves[pid][order] = res
            if on_progress:
                on_progress(n, len(jobs))
    finally:
        if own:
            eng.close()
    rows = [_row(by_id[pid], h, method) for pid, h in halves.items()]
    summary = summarize(rows, judge=getattr(eng, "model_name", eng.model_id), judge_id=eng.model_id, method=method)
    summary["seconds"] = round(time.time() - t0, 1)
    summary["usage"] = meter.snapshot()
    if store:
        summary["stored_at"] = str(store_result(summary))
    return summary


def _row(p: Pair, h: dict[str, Any], method: str) -> dict[str, Any]:
    if method == "text":
        labels = {o: h[o].verdict for o in ORDERS}
        winner, consistent = combine(to_model(labels["ab"], "ab"), to_model(labels["ba"], "ba"))
        extra: dict[str, Any] = {}
    else:
        labels = {o: h[o].label for o in ORDERS}
        cal = calibrated(h["ab"].log_odds, h["ba"].log_odds)
        winner, consistent = cal["winner"], cal["consistent"]
        extra = {"d": cal["d"], "bias": cal["bias"]}
    return {"id": p.id, "kind": p.kind, "lang": p.lang, "labels": labels, "winner": winner,
            "consistent": consistent, "outcome": OUTCOME.get(winner) if winner else None, **extra}


def _rate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    vals = [r["outcome"] for r in rows if r["outcome"] is not None]
    if not vals:
        return {"n": 0, "win_rate": None, "ci95": [None, None]}
    lo, hi = bootstrap_ci(vals)
    return {"n": len(vals), "win_rate": round(sum(vals) / len(vals), 4), "ci95": [round(lo, 4), round(hi, 4)]}


def summarize(rows: list[dict[str, Any]], *, judge: str, judge_id: str, method: str) -> dict[str, Any]:
    overall = _rate(rows)
    labels = [lab for r in rows for lab in r["labels"].values() if lab in ("A", "B")]
    ok = [r for r in rows if r["outcome"] is not None]
    failures = len(rows) - len(ok)
    valid = (overall["win_rate"] is not None and overall["win_rate"] >= VALID_WIN_RATE
             and overall["ci95"][0] >= VALID_LOWER)
    reason = (f"win rate for the better reply {overall['win_rate']:.2f} [{overall['ci95'][0]:.2f}, "
              f"{overall['ci95'][1]:.2f}] on {overall['n']} known-answer pairs "
              f"(needs ≥ {VALID_WIN_RATE} with the CI's lower bound ≥ {VALID_LOWER})"
              if overall["win_rate"] is not None else "no verdict could be read")
    by: dict[str, dict[str, Any]] = {}
    for field in ("kind", "lang"):
        groups: dict[str, list] = defaultdict(list)
        for r in rows:
            groups[r[field]].append(r)
        by[field] = {k: _rate(v) for k, v in sorted(groups.items())}
    return {
        "judge": judge, "judge_id": judge_id, "method": method, "n_pairs": len(rows), "failures": failures,
        "win_rate_better": overall, "valid": valid, "verdict": ("valid" if valid else "NOT valid") + ": " + reason,
        "both_orders_right": round(sum(r["winner"] == "model_a" for r in ok) / max(1, len(ok)), 4),
        "position_consistency": round(sum(bool(r["consistent"]) for r in ok) / max(1, len(ok)), 4),
        "first_position_share": round(labels.count("A") / len(labels), 4) if labels else None,
        "by_kind": by["kind"], "by_lang": by["lang"], "rows": rows,
    }


def _validate_grades(judge: str | Engine, *, method: str, pairs: list[Pair] | None, settings: JudgeSettings | None,
                     cache: bool | str | Path, engine: str | None, log: Callable[[str], None],
                     on_progress: Callable[[int, int], None] | None, store: bool) -> dict[str, Any]:
    from ownchat.judge.grade import RATING_FOLLOWUP, _as_outcome
    from ownchat.judge.parse import parse_rating
    from ownchat.judge.prob import DIGITS
    from ownchat.judge.prompts import single_messages

    pairs = pairs if pairs is not None else load_pairs()
    settings = settings or JudgeSettings()
    t0 = time.time()
    eng, own = open_judge(judge, cache=cache, concurrency=settings.concurrency, engine=engine, log=log)
    by_id = {p.id: p for p in pairs}
    scores: dict[str, dict[str, float | None]] = defaultdict(dict)
    meter = UsageMeter()

    def msgs(p: Pair, side: str):
        return single_messages([p.question], [getattr(p, side)], 0, p.reference, digit=method == "prob")[0]

    try:
        if method == "text":
            jobs = [JudgeJob((p.id, side), msgs(p, side), followup=RATING_FOLLOWUP) for p in pairs
                    for side in ("better", "worse")]
            results = run_jobs(eng, jobs, parse_rating, settings, meter)
        else:
            jobs = [ProbJob((p.id, side), msgs(p, side)) for p in pairs for side in ("better", "worse")]
            results = (_as_outcome(r) for r in run_prob_jobs(eng, jobs, concurrency=settings.concurrency,
                                                            meter=meter, choices=DIGITS))
        for n, res in enumerate(results, start=1):
            scores[res.key[0]][res.key[1]] = res.verdict
            if on_progress:
                on_progress(n, len(jobs))
    finally:
        if own:
            eng.close()
    rows = []
    for pid, s in scores.items():
        b, w = s.get("better"), s.get("worse")
        outcome = None if b is None or w is None else 1.0 if b > w else 0.5 if b == w else 0.0
        winner = None if outcome is None else {1.0: "model_a", 0.5: "tie", 0.0: "model_b"}[outcome]
        p = by_id[pid]
        rows.append({"id": pid, "kind": p.kind, "lang": p.lang, "labels": {}, "winner": winner, "consistent": True,
                     "outcome": outcome, "better_score": b, "worse_score": w})
    summary = summarize(rows, judge=getattr(eng, "model_name", eng.model_id), judge_id=eng.model_id,
                        method=f"grade-{method}")
    summary.update(seconds=round(time.time() - t0, 1), usage=meter.snapshot())
    if store:
        summary["stored_at"] = str(store_result(summary))
    return summary


def _store_dir() -> Path:
    from ownchat.paths import home

    return home() / "judge_validation"


def record_path(judge_id: str, method: str) -> Path:
    digest = hashlib.sha256(f"{judge_id}|{method}".encode()).hexdigest()[:16]
    return _store_dir() / f"{digest}.json"


def store_result(summary: dict[str, Any]) -> Path:
    path = record_path(summary["judge_id"], summary["method"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    tmp.write_text(json.dumps({k: v for k, v in summary.items() if k != "rows"}, indent=2, ensure_ascii=False))
    tmp.replace(path)
    return path


def stored_state() -> str:
    """A digest of every stored validation: recipe stages that depend on a judge's validity take it as
    a setting, so validating a judge (or re-validating it) makes them run again."""
    d = _store_dir()
    h = hashlib.sha256()
    for path in sorted(d.glob("*.json")) if d.is_dir() else []:
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:16]


def lookup(judge_id: str, method: str = "text") -> dict[str, Any] | None:
    """The stored validation of this judge and method, or None when it was never validated."""
    path = record_path(judge_id, method)
    return json.loads(path.read_text()) if path.exists() else None


def validity_line(judge_id: str, method: str = "text") -> tuple[bool, str]:
    """(valid, text) for printing beside a win rate."""
    rec = lookup(judge_id, method)
    if rec is None:
        return False, (f"judge not validated ({method} verdicts): run `ownchat judge validate --judge ... "
                       f"--method {method}`; treat this win rate as unverified")
    return bool(rec["valid"]), f"judge validation ({method}): {rec['verdict']}"
