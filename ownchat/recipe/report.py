"""One self-contained HTML page per run: stages, data, curves, judge results, cost, both ledgers.

Everything is inlined (CSS, PNGs as base64), so the page can be mailed or archived as one file.
The page is rendered from what the stages recorded (``StageResult``), never by re-running anything,
so it can be rebuilt at any time: ``ownchat run RECIPE --report-only``.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from ownchat.recipe.plan import StageResult, fmt_seconds
from ownchat.render import b64png, write_report


def headline(summary: dict[str, Any]) -> str:
    """The few scalar numbers of a stage summary, in one line."""
    parts = []
    for k, v in (summary or {}).items():
        if isinstance(v, bool | int | float | str) and len(parts) < 5 and len(str(v)) < 40:
            parts.append(f"{k}: {v:,.4g}" if isinstance(v, float) else f"{k}: {v}")
    return ", ".join(parts)


def _records(rec: Any) -> str:
    if not rec:
        return ""
    if isinstance(rec, dict):
        ids = rec.get("ids") or []
        shown = ", ".join(map(str, ids[:8])) + (" ..." if len(ids) > 8 else "")
        return f"{rec.get('count', len(ids))} records from {rec.get('file', '?')}" + (f" (ids {shown})" if ids else "")
    return str(rec)


def _flat(summary: dict[str, Any], skip: set[str]) -> list[tuple[str, str]]:
    out = []
    for k, v in (summary or {}).items():
        if k in skip:
            continue
        if isinstance(v, dict) and all(not isinstance(x, dict | list) for x in v.values()):
            v = ", ".join(f"{a}: {b}" for a, b in v.items())
        elif isinstance(v, float):
            v = f"{v:,.4g}"
        elif isinstance(v, dict | list):
            v = html.unescape(str(v))[:400]
        out.append((k, str(v)))
    return out


def _comparison_tables(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Judge comparisons (see stages.JudgeStage): win/tie/loss with a 95% interval, overall and per category."""
    tables = []
    for c in summary.get("comparisons", []):
        rows = []
        for label, r in [("all", c), *sorted((c.get("per_category") or {}).items())]:
            lo, hi = r.get("ci", [None, None]) or [None, None]
            wr = r.get("win_rate")
            bar = f'<span class="bar" style="width:{int(100 * (wr or 0))}px"></span> ' if wr is not None else ""
            ci = f"[{lo:.0%}, {hi:.0%}]" if lo is not None else ""
            rows.append([html.escape(str(label)), r.get("wins", 0), r.get("ties", 0), r.get("losses", 0),
                         f"{bar}{wr:.0%}" if wr is not None else "n/a", ci])
        title = f"{c.get('a')} vs {c.get('b')} (judge: {c.get('judge', '?')})"
        tables.append({"title": title, "header": ["category", "wins", "ties", "losses", "win rate", "95% CI"],
                       "rows": rows})
    return tables


def _section(name: str, r: StageResult, run_dir: Path) -> dict[str, Any] | None:
    images = [(t, b) for t, p in r.images.items() if (b := b64png(run_dir / p))]
    tables = _comparison_tables(r.summary)
    for t in r.summary.get("tables", []):
        tables.append(t)
    summary = _flat(r.summary, {"comparisons", "tables", "headline"})
    samples = []
    for s in r.samples[:5]:
        if "messages" in s:
            samples.append("\n\n".join(f"[{m['role']}] {m['content']}" for m in s["messages"]))
        else:
            samples.append("\n".join(f"{k}: {v}" for k, v in s.items()))
    if not (images or tables or summary or samples):
        return None
    return {"title": name, "summary": summary, "images": images, "tables": tables, "samples": samples}


def _cost(results: dict[str, StageResult], order: list[str]) -> dict[str, Any]:
    rows = []
    for name in order:
        r = results.get(name)
        for role, u in (r.usage if r else {}).items():
            rows.append({"stage": name, "role": role, "requests": int(u.get("requests", 0)),
                         "cached": int(u.get("cached", 0)), "prompt_tokens": int(u.get("prompt_tokens", 0)),
                         "completion_tokens": int(u.get("completion_tokens", 0)),
                         "cost_usd": float(u.get("cost_usd", 0.0))})
    return {"rows": rows, "prompt_tokens": sum(r["prompt_tokens"] for r in rows),
            "completion_tokens": sum(r["completion_tokens"] for r in rows),
            "cost_usd": sum(r["cost_usd"] for r in rows)}


# the report's headline order: measures that need no judge first, the judge last
_HEADLINE_ORDER = {"ifeval": 0, "teacher-nll": 1, "improve": 2, "judge": 3}


def headline_rows(order: list[str], results: dict[str, StageResult]) -> list[tuple[str, str, str]]:
    """(student, measure, value) rows: each stage's ``headline`` entries, GSM8K and judge lines."""
    rows: list[tuple[int, int, str, str, str]] = []
    for i, name in enumerate(order):
        r = results.get(name)
        if r is None:
            continue
        kind, _, who = name.partition(":")
        entries = dict(r.summary.get("headline") or {})
        entries.update({k: v for k, v in r.summary.items() if k.startswith(("win rate", "gsm8k", "judge"))
                        and isinstance(v, str)})
        for k, v in entries.items():
            rows.append((_HEADLINE_ORDER.get(kind, 9), i, who, k, str(v)))
    return [(who, k, v) for _, _, who, k, v in sorted(rows, key=lambda t: (t[2].removesuffix("-base"), t[0], t[1]))]


def render_report(run_dir: Path, *, name: str, description: str, info: dict[str, Any],
                  results: dict[str, StageResult], licence: dict[str, Any], privacy: dict[str, Any],
                  serve: dict[str, str], engines: dict[str, str]) -> Path:
    order = [s["name"] for s in info.get("stages", [])] or list(results)
    sections = [sec for n in order if n in results and (sec := _section(n, results[n], run_dir))]
    results_box = headline_rows(order, results)
    return write_report(run_dir / "report.html", "run_report.html.jinja",
                        name=name, description=description, info=info, run_dir=str(run_dir), fmt=fmt_seconds,
                        headline=headline, records=_records, results_box=results_box, sections=sections,
                        cost=_cost(results, order), licence=licence, privacy=privacy, serve=serve,
                        privacy_engines=[(n, engines.get(n, "")) for n in order])
