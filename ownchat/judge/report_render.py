"""What the judge report says about each pair, as rows for its templates (``judge_report.*.jinja``)."""

from __future__ import annotations

from typing import Any

from ownchat.render import ci as _ci
from ownchat.render import pct as _pct


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


def with_rows(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary plus, per pair, its verdict line and statistics rows (what both templates show)."""
    pairs = [{**p, "verdict_line": _verdict_line(p), "rows": _pair_rows(p)} for p in summary["pairs"]]
    return {**summary, "pairs": pairs}
