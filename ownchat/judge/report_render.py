"""Turning a judge summary into Markdown and a single self-contained HTML page."""

from __future__ import annotations

import html
from typing import Any


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _ci(ci: list[float | None]) -> str:
    return "n/a" if not ci or ci[0] is None else f"[{100 * ci[0]:.1f}%, {100 * ci[1]:.1f}%]"


def _verdict_line(p: dict[str, Any]) -> str:
    lo, hi = p["ci95_a"]
    if lo is None:
        return "no parsed verdicts"
    if not p.get("judge_valid", True):
        return "not a result: the judge has not passed validation (see below)"
    if lo > 0.5:
        return f"**{p['model_a']}** is preferred (CI above 50%)"
    if hi < 0.5:
        return f"**{p['model_b']}** is preferred (CI below 50%)"
    return "no significant difference (CI contains 50%)"


def _valid(p: dict[str, Any]) -> str:
    return "yes" if p.get("judge_valid") else "NO"


def _pair_rows(p: dict[str, Any]) -> list[tuple[str, str]]:
    pos, ln = p["position"], p["length"]
    return [
        ("judge validity", p.get("judge_validity", "n/a")),
        ("verdicts (parsed / failed)", f"{p['n']} / {p['failures']}"),
        ("A wins / ties / B wins", f"{p['wins_a']} / {p['ties']} / {p['wins_b']}"),
        ("win rate of A (ties count half)", f"{_pct(p['win_rate_a'])} {_ci(p['ci95_a'])}"),
        ("inconsistent across orders", f"{_pct(p['inconsistency'])} ({pos['n_inconsistent']})"),
        ("first-shown reply wins, when orders disagree", _pct(pos["first_wins_when_inconsistent"])),
        ("first-shown reply wins, all single verdicts", _pct(pos["first_wins_overall"])),
        ("longer reply wins (decisive verdicts)", f"{_pct(ln['longer_wins_rate'])} (n={ln['n_decisive']})"),
        ("mean length A / B (characters)", f"{ln['mean_len_a'] or 0:.0f} / {ln['mean_len_b'] or 0:.0f}"),
        ("length-controlled win rate of A", f"{_pct(ln['lc_win_rate_a'])} {_ci(ln['lc_ci95_a'])}"
         + (" (extrapolated: one model's replies are always longer)" if ln.get("lc_extrapolated") else "")),
    ]


def render_markdown(s: dict[str, Any]) -> str:
    out = ["# ownchat judge report", ""]
    out.append(f"Judge: {', '.join(s['judges'])}. Prompts: "
               + ", ".join(f"{p['name']} v{p['version']} ({p['sha']})" for p in s["prompts"]) + ".")
    u = s["judge_usage"]
    out.append(f"Judge calls: {u['calls']} ({u['cached_calls']} from cache, {u['retries']} retries), "
               f"{u['prompt_tokens']} prompt + {u['completion_tokens']} completion tokens.")
    out.append("")
    if s["pairs"]:
        out += ["## Pairwise results", "",
                "| A | B | W / T / L | win rate A | 95% CI | inconsistent | LC win rate A | failed | judge valid |",
                "|---|---|---|---|---|---|---|---|---|"]
        for p in s["pairs"]:
            out.append(f"| {p['model_a']} | {p['model_b']} | {p['wins_a']} / {p['ties']} / {p['wins_b']} | "
                       f"{_pct(p['win_rate_a'])} | {_ci(p['ci95_a'])} | {_pct(p['inconsistency'])} | "
                       f"{_pct(p['length']['lc_win_rate_a'])} | {p['failures']} | {_valid(p)} |")
        for p in s["pairs"]:
            out += ["", f"### {p['model_a']} vs {p['model_b']}: {_verdict_line(p)}", ""]
            out += ["| statistic | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in _pair_rows(p)]
            out += ["", "| category | n | W / T / L | win rate A | 95% CI |", "|---|---|---|---|---|"]
            for c, v in p["by_category"].items():
                out.append(f"| {c} | {v['n']} | {v['wins_a']} / {v['ties']} / {v['wins_b']} | "
                           f"{_pct(v['win_rate'])} | {_ci(v['ci95'])} |")
    if s["elo"]:
        out += ["", "## Ranking (Bradley–Terry, Elo scale)", "", "| model | Elo | 95% CI |", "|---|---|---|"]
        for m, v in s["elo"].items():
            lo, hi = v["ci95"]
            out.append(f"| {m} | {v['elo']:.0f} | [{lo:.0f}, {hi:.0f}] |")
    if s["grades"]:
        out += ["", "## Single-answer grades (1–10)", "", "| model | n | mean | 95% CI | failed |", "|---|---|---|---|---|"]
        for m, g in s["grades"].items():
            lo, hi = g["ci95"]
            mean = "n/a" if g["mean"] is None else f"{g['mean']:.2f}"
            ci = "n/a" if lo is None else f"[{lo:.2f}, {hi:.2f}]"
            out.append(f"| {m} | {g['n']} | {mean} | {ci} | {g['failures']} |")
    if s["agreement"]:
        a = s["agreement"]
        out += ["", f"Single vs pairwise agreement: {_pct(a['agreement'])} of {a['n']} verdicts; "
                    f"{_pct(a['decisive_agreement'])} of the {a['n_decisive']} where both were decisive."]
    out += ["", f"## Failures ({len(s['failures'])})", ""]
    if s["failures"]:
        out += ["Judgments without a readable verdict after all retries (excluded from the rates):", ""]
        for f in s["failures"][:50]:
            reply = f["last_reply"].replace("\n", " ")[:160]
            out.append(f"- {f['kind']} {f['pair']} q{f['question_id']} t{f['turn']}"
                       f"{' order ' + f['order'] if f['order'] else ''}: {f['attempts']} attempts; last reply: {reply!r}")
    else:
        out.append("None: every judgment was parsed.")
    out += ["", "## Methods", ""] + [f"- **{k}**: {v}" for k, v in s["methods"].items()]
    return "\n".join(out) + "\n"


_CSS = """body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#212529}
table{border-collapse:collapse;margin:0.8em 0}td,th{border:1px solid #dee2e6;padding:4px 8px;text-align:left}
th{background:#f1f3f5}img{max-width:100%}.note{color:#495057;font-size:0.9em}code{background:#f1f3f5}"""


def _table(head: list[str], rows: list[list[Any]]) -> str:
    h = "".join(f"<th>{html.escape(str(c))}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def _img(figs: dict[str, str], key: str, alt: str) -> str:
    return f'<p><img alt="{html.escape(alt)}" src="data:image/png;base64,{figs[key]}"></p>' if key in figs else ""


def render_html(s: dict[str, Any], figs: dict[str, str]) -> str:
    e = html.escape
    u = s["judge_usage"]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>ownchat judge report</title>"
             f"<style>{_CSS}</style></head><body><h1>ownchat judge report</h1>",
             f"<p class='note'>Judge: {e(', '.join(s['judges']))}. Prompts: "
             + e(", ".join(f"{p['name']} v{p['version']} ({p['sha']})" for p in s["prompts"]))
             + f". Judge calls: {u['calls']} ({u['cached_calls']} cached, {u['retries']} retries); "
               f"{u['prompt_tokens']} prompt + {u['completion_tokens']} completion tokens.</p>"]
    if s["pairs"]:
        parts.append("<h2>Pairwise results</h2>")
        parts.append(_table(["A", "B", "W / T / L", "win rate A", "95% CI", "inconsistent", "LC win rate A", "failed",
                             "judge valid"],
                            [[p["model_a"], p["model_b"], f"{p['wins_a']} / {p['ties']} / {p['wins_b']}",
                              _pct(p["win_rate_a"]), _ci(p["ci95_a"]), _pct(p["inconsistency"]),
                              _pct(p["length"]["lc_win_rate_a"]), p["failures"], _valid(p)] for p in s["pairs"]]))
        parts.append(_img(figs, "outcomes", "outcomes per pair"))
        for i, p in enumerate(s["pairs"]):
            verdict = _verdict_line(p).replace("**", "")
            parts.append(f"<h3>{e(p['model_a'])} vs {e(p['model_b'])}: {e(verdict)}</h3>")
            parts.append(_table(["statistic", "value"], [list(r) for r in _pair_rows(p)]))
            parts.append(_table(["category", "n", "W / T / L", "win rate A", "95% CI"],
                                [[c, v["n"], f"{v['wins_a']} / {v['ties']} / {v['wins_b']}", _pct(v["win_rate"]),
                                  _ci(v["ci95"])] for c, v in p["by_category"].items()]))
            parts.append(_img(figs, f"category:{i}", "win rate by category"))
            parts.append(_img(figs, f"length:{i}", "outcome against length ratio"))
    if s["elo"]:
        parts.append("<h2>Ranking (Bradley–Terry, Elo scale)</h2>")
        parts.append(_table(["model", "Elo", "95% CI"], [[m, f"{v['elo']:.0f}", f"[{v['ci95'][0]:.0f}, "
                                                          f"{v['ci95'][1]:.0f}]"] for m, v in s["elo"].items()]))
        parts.append(_img(figs, "elo", "Elo ratings"))
    if s["grades"]:
        parts.append("<h2>Single-answer grades (1–10)</h2>")
        parts.append(_table(["model", "n", "mean", "95% CI", "failed"],
                            [[m, g["n"], "n/a" if g["mean"] is None else f"{g['mean']:.2f}",
                              "n/a" if g["ci95"][0] is None else f"[{g['ci95'][0]:.2f}, {g['ci95'][1]:.2f}]",
                              g["failures"]] for m, g in s["grades"].items()]))
        parts.append(_img(figs, "grades", "grade distribution"))
    if s["agreement"]:
        a = s["agreement"]
        parts.append(f"<p>Single vs pairwise agreement: {_pct(a['agreement'])} of {a['n']} verdicts; "
                     f"{_pct(a['decisive_agreement'])} of the {a['n_decisive']} where both were decisive.</p>")
    parts.append(f"<h2>Failures ({len(s['failures'])})</h2>")
    if s["failures"]:
        parts.append(_table(["kind", "pair / model", "question", "turn", "order", "attempts", "last reply"],
                            [[f["kind"], f["pair"], f["question_id"], f["turn"], f["order"] or "", f["attempts"],
                              f["last_reply"]] for f in s["failures"]]))
    else:
        parts.append("<p>None: every judgment was parsed.</p>")
    parts.append("<h2>Methods</h2><ul>" + "".join(f"<li><b>{e(k)}</b>: {e(v)}</li>" for k, v in s["methods"].items())
                 + "</ul></body></html>")
    return "\n".join(p for p in parts if p)
