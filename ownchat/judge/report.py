"""The judge report: ``report.html`` (self-contained, charts as embedded PNG), ``report.md``, ``summary.json``.

Reading verdict and grade files only: rebuilding a report never calls a model. The statistics come
from ``ownchat.judge.stats``; this module groups records, draws the charts and writes the files.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ownchat.data.jsonl import read_jsonl
from ownchat.errors import DataError
from ownchat.judge import stats
from ownchat.judge.report_render import with_rows
from ownchat.render import write_report

METHODS = {
    "win_rate": "Wins of A plus half the ties, over all verdicts that parsed. Each question/turn is judged "
                "twice with the replies swapped; a win counts only if both orders agree, otherwise it is a tie.",
    "ci": "95% percentile bootstrap, resampling whole questions (turns of one question move together); "
          "seeded, so the same files give the same interval.",
    "position_bias": "Among verdict pairs whose two orders disagree, the share of individual verdicts that "
                     "picked the reply shown first (0.5 = no preference for a position).",
    "length_bias": "Among decisive verdicts with replies of different length, the share won by the longer reply.",
    "length_controlled": "Logistic regression of the outcome (1 / 0.5 / 0, ties as soft labels) on "
                         "x = log((len_a+1)/(len_b+1)) in characters, with a small ridge penalty; the win rate "
                         "at equal length is sigmoid(intercept). Its CI is a question-level bootstrap of the fit.",
    "agreement": "Single grades imply a preference (higher score wins, equal scores tie); agreement is the "
                 "share of verdicts where that preference equals the pairwise outcome.",
    "elo": "Bradley-Terry strengths fitted by minorization-maximization on all pairwise outcomes (ties half "
           "a win each way, 0.1 pseudo-wins per pair), shown on the Elo scale (400 log10, mean 1000); "
           "CIs from a question-level bootstrap.",
}


def _load(files: Sequence[str | Path], required: tuple[str, ...]) -> list[dict[str, Any]]:
    out = []
    for f in files:
        for i, rec in enumerate(read_jsonl(f, allow_partial_last_line=True), start=1):
            missing = [k for k in required if k not in rec]
            if missing:
                raise DataError(f, i, f"missing {', '.join(missing)}",
                                "pass files written by `ownchat judge compare` / `ownchat judge grade`")
            out.append(rec)
    return out


def _usage(recs: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Judge tokens over every attempt recorded (cached replays count in ``cached_*`` only)."""
    u = {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "cached_calls": 0, "retries": 0}
    for r in recs:
        attempts = [a for j in r.get("judgments", []) for a in j.get("attempts", [])] or r.get("attempts", [])
        for a in attempts:
            u["calls"] += 1
            u["retries"] += a.get("attempt", 0) > 0
            if a.get("cached"):
                u["cached_calls"] += 1
            u["prompt_tokens"] += a.get("prompt_tokens", 0)
            u["completion_tokens"] += a.get("completion_tokens", 0)
    return u


def _failures(verdicts: Sequence[dict[str, Any]], grades: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in verdicts:
        if r.get("status") != "ok":
            for j in r.get("judgments", []):
                if j.get("label") is None:
                    out.append({"kind": "pairwise", "pair": f"{r['model_a']} vs {r['model_b']}",
                                "question_id": r["question_id"], "turn": r["turn"], "order": j.get("order"),
                                "attempts": len(j.get("attempts", [])), "last_reply": (j.get("text") or "")[:400]})
    for g in grades:
        if g.get("score") is None:
            out.append({"kind": "grade", "pair": g["model_id"], "question_id": g["question_id"], "turn": g["turn"],
                        "order": None, "attempts": len(g.get("attempts", [])),
                        "last_reply": (g.get("judgment") or "")[:400]})
    return out


def judge_validity(recs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Has the judge behind these verdicts passed `ownchat judge validate` with the same method?

    A win rate from a judge that failed (or never took) the known-answer test is reported as such,
    never as the headline.
    """
    from ownchat.judge.validate import validity_line

    keys = sorted({(r.get("judge", ""), r.get("method", "text")) for r in recs})
    lines = [validity_line(j, m) for j, m in keys]
    return {"judge_valid": all(ok for ok, _ in lines) and bool(lines),
            "judge_validity": "; ".join(text for _, text in lines), "judge_methods": sorted({m for _, m in keys})}


def build_report(verdict_files: Sequence[str | Path], out_dir: str | Path, grade_files: Sequence[str | Path] = (),
                 *, n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Compute the statistics, write the three report files into ``out_dir``; return the summary."""
    from ownchat.judge import charts

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    verdicts = _load(verdict_files, ("question_id", "turn", "model_a", "model_b", "winner"))
    grades = _load(grade_files, ("question_id", "turn", "model_id", "score"))
    if not verdicts and not grades:
        raise DataError(verdict_files[0] if verdict_files else out_dir, None, "no verdicts or grades to report")
    by_pair: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in verdicts:
        by_pair[(r["model_a"], r["model_b"])].append(r)
    pairs = [{**stats.pair_summary(rs, n_boot=n_boot, seed=seed), **judge_validity(rs)} for rs in by_pair.values()]
    models = sorted({m for r in verdicts for m in (r["model_a"], r["model_b"])} | {g["model_id"] for g in grades})
    elo = stats.elo_with_ci(verdicts, n_boot=min(n_boot, 500), seed=seed) if len(models) >= 3 else None
    grade_sum = stats.grade_summary(grades, n_boot=n_boot, seed=seed) if grades else None
    agree = stats.agreement(verdicts, grades) if grades and verdicts else None
    summary: dict[str, Any] = {
        "pairs": pairs,
        "models": models,
        "elo": elo,
        "grades": {m: {k: v for k, v in g.items() if k != "scores"} for m, g in (grade_sum or {}).items()} or None,
        "agreement": agree,
        "failures": _failures(verdicts, grades),
        "judges": sorted({f"{r['judge_name']} ({r.get('judge')})" if r.get("judge_name") else str(r.get("judge"))
                          for r in [*verdicts, *grades]}),
        "prompts": sorted({json.dumps(r["prompt"], sort_keys=True) for r in [*verdicts, *grades] if "prompt" in r}),
        "judge_usage": _usage([*verdicts, *grades]),
        "files": {"verdicts": [str(f) for f in verdict_files], "grades": [str(f) for f in grade_files]},
        "bootstrap": {"n_boot": n_boot, "seed": seed},
        "methods": METHODS,
    }
    summary["prompts"] = [json.loads(p) for p in summary["prompts"]]
    figures = charts.draw_all(pairs, verdicts, elo, grade_sum)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    shown = with_rows(summary)
    write_report(out_dir / "report.md", "judge_report.md.jinja", s=shown)
    write_report(out_dir / "report.html", "judge_report.html.jinja", s=shown, figs=figures)
    return summary
