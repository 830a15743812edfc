"""One self-contained HTML page per run: stages, data, curves, judge results, cost, both ledgers.

Everything is inlined (CSS, PNGs as base64), so the page can be mailed or archived as one file.
The page is rendered from what the stages recorded (``StageResult``), never by re-running anything,
so it can be rebuilt at any time: ``ownchat run RECIPE --report-only``.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from jinja2 import Environment

from ownchat.recipe.plan import StageResult, fmt_seconds

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:20px;color:#1d2330}
h1{margin-bottom:0}h2{border-bottom:2px solid #e3e7ef;padding-bottom:4px;margin-top:32px}
.muted{color:#6b7385}table{border-collapse:collapse;margin:8px 0;width:100%}
td,th{border:1px solid #dde2ec;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f5f9}.ok{background:#e6f6ea}.bad{background:#fde8e8}.unk{background:#fff6dc}
.box{border-radius:8px;padding:10px 14px;margin:8px 0}.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;border:1px solid #e3e7ef;margin:6px 0}code,pre{background:#f3f5f9;padding:1px 4px}
pre{white-space:pre-wrap;padding:8px;max-height:240px;overflow:auto}
.bar{display:inline-block;height:10px;background:#4b7bec;vertical-align:middle}
"""

_TEMPLATE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>ownchat run: {{ name }}</title><style>{{ css }}</style></head><body>
<h1>{{ name }}</h1><p class="muted">{{ description }}</p>
<p>Status: <b>{{ info.status }}</b> &middot; wall time {{ fmt(info.seconds or 0) }}
 &middot; attempt {{ info.attempt }} &middot; started {{ info.first_started }} &middot; run dir <code>{{ run_dir }}</code></p>
{% if info.error %}<div class="box bad">Stopped: {{ info.error }}. Run the same command again to resume.</div>{% endif %}
{% for name, cmd in serve.items() %}<div class="box ok">Serve <b>{{ name }}</b>: <code>{{ cmd }}</code></div>{% endfor %}

{% if results_box %}<h2>Results</h2>
<p class="muted">Objective measures first (IFEval checked by code, the distance to the teacher on held-out answers,
GSM8K), each before &rarr; after paired on the same items with a 95% CI; a difference whose CI contains 0 is not
a result. The judge comes last, with whether it passed <code>ownchat judge validate</code>.</p>
<table><tr><th>student</th><th>measure</th><th>value</th></tr>
{% for who, k, v in results_box %}<tr class="{{ 'unk' if 'not validated' in k or 'not run' in v else '' }}"><td>{{ who }}</td><td>{{ k }}</td><td>{{ v }}</td></tr>{% endfor %}</table>{% endif %}
<h2>Verdicts</h2>
{% for student, s in licence.students.items() %}
<div class="box {{ {'cleared':'ok','not cleared':'bad'}.get(s.verdict,'unk') }}"><b>{{ student }}</b>: {{ s.text }}</div>
{% endfor %}
<div class="box {{ 'unk' if privacy.left_machine else 'ok' }}"><b>Privacy</b>: {{ privacy.text }}</div>

<h2>Stages</h2>
<table><tr><th>stage</th><th>status</th><th class="num">wall time</th><th class="num">planned</th><th>headline</th></tr>
{% for s in info.stages %}<tr class="{{ 'bad' if s.status == 'failed' else '' }}"><td>{{ s.name }}</td>
<td>{{ 'skipped (up to date)' if s.skipped else s.status }}</td><td class="num">{{ fmt(s.seconds or 0) }}</td>
<td class="num">{{ fmt(s.estimate_seconds or 0) }}</td><td>{{ headline(s.summary) }}</td></tr>{% endfor %}
</table>

<h2>Cost</h2>
<table><tr><th>stage</th><th>role</th><th class="num">requests</th><th class="num">cached</th>
<th class="num">prompt tokens</th><th class="num">completion tokens</th><th class="num">cost (USD)</th></tr>
{% for row in cost.rows %}<tr><td>{{ row.stage }}</td><td>{{ row.role }}</td><td class="num">{{ "{:,}".format(row.requests) }}</td>
<td class="num">{{ "{:,}".format(row.cached) }}</td><td class="num">{{ "{:,}".format(row.prompt_tokens) }}</td>
<td class="num">{{ "{:,}".format(row.completion_tokens) }}</td><td class="num">{{ "%.4f"|format(row.cost_usd) }}</td></tr>{% endfor %}
<tr><th colspan="4">total</th><th class="num">{{ "{:,}".format(cost.prompt_tokens) }}</th>
<th class="num">{{ "{:,}".format(cost.completion_tokens) }}</th><th class="num">{{ "%.4f"|format(cost.cost_usd) }}</th></tr></table>

{% for sec in sections %}
<h2>{{ sec.title }}</h2>
{% if sec.tables %}{% for t in sec.tables %}<h3>{{ t.title }}</h3><table><tr>{% for h in t.header %}<th>{{ h }}</th>{% endfor %}</tr>
{% for r in t.rows %}<tr>{% for c in r %}<td>{{ c|safe }}</td>{% endfor %}</tr>{% endfor %}</table>{% endfor %}{% endif %}
{% if sec.summary %}<table>{% for k, v in sec.summary %}<tr><th style="width:30%">{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}</table>{% endif %}
{% for title, img in sec.images %}<h3>{{ title }}</h3><img alt="{{ title }}" src="data:image/png;base64,{{ img }}">{% endfor %}
{% if sec.samples %}<h3>Samples</h3>{% for smp in sec.samples %}<pre>{{ smp }}</pre>{% endfor %}{% endif %}
{% endfor %}

<h2>Licence ledger</h2>
{% for student, s in licence.students.items() %}<h3>{{ student }}</h3>
<table><tr><th>role</th><th>what</th><th>terms</th><th>commercial</th><th>binds weights</th><th>note</th></tr>
{% for i in s["items"] %}<tr class="{{ {True:'ok',False:'bad'}.get(i.terms.commercial,'unk') if i.binding else '' }}">
<td>{{ i.role }}</td><td>{{ i.what }}</td><td>{% if i.terms.url %}<a href="{{ i.terms.url }}">{{ i.terms.name }}</a>{% else %}{{ i.terms.name }}{% endif %}</td>
<td>{{ {True:'yes',False:'no'}.get(i.terms.commercial,'unknown') }}</td><td>{{ 'yes' if i.binding else 'no' }}</td>
<td>{{ i.terms.note }}{% if i.source %} <span class="muted">({{ i.source }})</span>{% endif %}</td></tr>{% endfor %}</table>
{% endfor %}

<h2>Privacy ledger</h2><p>{{ privacy.text }}</p>
{% if privacy.entries %}<table><tr><th>stage</th><th>host</th><th>model</th><th class="num">requests</th>
<th class="num">prompt tokens</th><th class="num">completion tokens</th><th>records sent</th></tr>
{% for e in privacy.entries %}<tr><td>{{ e.stage }}</td><td>{{ e.host }}</td><td>{{ e.model }}</td><td class="num">{{ e.requests }}</td>
<td class="num">{{ "{:,}".format(e.prompt_tokens or 0) }}</td><td class="num">{{ "{:,}".format(e.completion_tokens or 0) }}</td>
<td>{{ records(e.records) }}</td></tr>{% endfor %}</table>{% endif %}
<table><tr><th>stage</th><th>engines used</th></tr>{% for name, engines in privacy_engines %}
<tr><td>{{ name }}</td><td>{{ engines }}</td></tr>{% endfor %}</table>

<h2>Versions</h2><table><tr><th>python</th><td>{{ info.python }}</td></tr><tr><th>platform</th><td>{{ info.platform }}</td></tr>
<tr><th>git commit</th><td>{{ info.git or 'not a git checkout' }}</td></tr>
{% for k, v in (info.packages or {}).items() %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}</table>
</body></html>"""


def _b64(path: Path) -> str | None:
    try:
        return base64.b64encode(path.read_bytes()).decode()
    except OSError:
        return None


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
    images = [(t, b) for t, p in r.images.items() if (b := _b64(run_dir / p))]
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
    env = Environment(autoescape=True)
    page = env.from_string(_TEMPLATE).render(
        name=name, description=description, info=info, run_dir=str(run_dir), css=_CSS, fmt=fmt_seconds,
        headline=headline, records=_records, results_box=results_box, sections=sections, cost=_cost(results, order), licence=licence,
        privacy=privacy, serve=serve, privacy_engines=[(n, engines.get(n, "")) for n in order])
    out = run_dir / "report.html"
    tmp = out.with_suffix(".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return out
