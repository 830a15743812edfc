"""Report charts as base64 PNG strings (matplotlib, headless), so report.html needs no other files."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # no display on servers; must precede pyplot's import
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _short(name: str, n: int = 28) -> str:
    return name if len(name) <= n else name[: n - 1] + "…"


def outcomes_chart(pairs: Sequence[dict[str, Any]]) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 0.6 + 0.55 * len(pairs)))
    labels = [f"{_short(p['model_a'])} vs {_short(p['model_b'])}" for p in pairs]
    y = np.arange(len(pairs))
    n = np.array([max(p["n"], 1) for p in pairs], dtype=float)
    wa, ti, wb = (np.array([p[k] for p in pairs]) / n for k in ("wins_a", "ties", "wins_b"))
    ax.barh(y, wa, color="#2b8a3e", label="A wins")
    ax.barh(y, ti, left=wa, color="#adb5bd", label="tie")
    ax.barh(y, wb, left=wa + ti, color="#c92a2a", label="B wins")
    ax.axvline(0.5, color="black", lw=0.8, ls=":")
    ax.set_yticks(y, labels)
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of verdicts")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    return _png(fig)


def category_chart(pair: dict[str, Any]) -> str:
    plt = _plt()
    cats = [c for c, v in pair["by_category"].items() if v["win_rate"] is not None]
    fig, ax = plt.subplots(figsize=(7, 0.6 + 0.45 * max(len(cats), 1)))
    rates = np.array([pair["by_category"][c]["win_rate"] for c in cats])
    lo = np.array([pair["by_category"][c]["ci95"][0] for c in cats])
    hi = np.array([pair["by_category"][c]["ci95"][1] for c in cats])
    y = np.arange(len(cats))
    ax.errorbar(rates, y, xerr=[rates - lo, hi - rates], fmt="o", color="#1c7ed6", capsize=3)
    ax.axvline(0.5, color="black", lw=0.8, ls=":")
    ax.set_yticks(y, [f"{c} (n={pair['by_category'][c]['n']})" for c in cats])
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"win rate of {_short(pair['model_a'])} (95% CI)")
    ax.set_title(f"{_short(pair['model_a'])} vs {_short(pair['model_b'])} by category", fontsize=10)
    return _png(fig)


def length_chart(pair: dict[str, Any], recs: Sequence[dict[str, Any]]) -> str | None:
    ok = [r for r in recs if r.get("winner") in ("model_a", "model_b", "tie") and "len_a" in r]
    if len(ok) < 3:
        return None
    plt = _plt()
    x = np.array([math.log((r["len_a"] + 1) / (r["len_b"] + 1)) for r in ok])
    y = np.array([{"model_a": 1.0, "tie": 0.5, "model_b": 0.0}[r["winner"]] for r in ok])
    jitter = np.random.default_rng(0).uniform(-0.03, 0.03, len(y))
    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.scatter(x, y + jitter, s=14, alpha=0.6, color="#5c7cfa", label="verdicts (1 = A wins)")
    ln = pair["length"]
    if ln["lc_win_rate_a"] is not None:
        b0 = math.log(ln["lc_win_rate_a"] / (1 - ln["lc_win_rate_a"]))
        xs = np.linspace(x.min() - 0.2, x.max() + 0.2, 100)
        ax.plot(xs, 1 / (1 + np.exp(-(b0 + ln["length_coef"] * xs))), color="#e8590c", label="logistic fit")
    ax.axvline(0, color="black", lw=0.8, ls=":")
    ax.set_xlabel("log(length A / length B)")
    ax.set_ylabel("outcome for A")
    ax.legend(fontsize=8, loc="best")
    return _png(fig)


def elo_chart(elo: dict[str, dict[str, Any]]) -> str:
    plt = _plt()
    names = list(elo)
    fig, ax = plt.subplots(figsize=(7, 0.6 + 0.45 * len(names)))
    v = np.array([elo[m]["elo"] for m in names])
    lo = np.array([elo[m]["ci95"][0] for m in names])
    hi = np.array([elo[m]["ci95"][1] for m in names])
    y = np.arange(len(names))[::-1]
    ax.errorbar(v, y, xerr=[v - lo, hi - v], fmt="s", color="#7048e8", capsize=3)
    ax.set_yticks(y, [_short(m) for m in names])
    ax.set_xlabel("Elo (Bradley-Terry, 95% CI)")
    return _png(fig)


def grades_chart(grades: dict[str, dict[str, Any]]) -> str:
    plt = _plt()
    names = [m for m in grades if grades[m]["scores"]]
    fig, ax = plt.subplots(figsize=(7, 0.8 + 0.5 * len(names)))
    ax.boxplot([grades[m]["scores"] for m in names], orientation="horizontal", tick_labels=[_short(m) for m in names])
    ax.set_xlim(0.5, 10.5)
    ax.set_xlabel("single-answer grade (1-10)")
    return _png(fig)


def draw_all(pairs: Sequence[dict[str, Any]], verdicts: Sequence[dict[str, Any]],
             elo: dict[str, Any] | None, grades: dict[str, Any] | None) -> dict[str, str]:
    """Every chart the report shows, keyed by a stable name (``category:<i>``, ``length:<i>``...)."""
    figs: dict[str, str] = {}
    if pairs:
        figs["outcomes"] = outcomes_chart(pairs)
    for i, p in enumerate(pairs):
        if p["by_category"]:
            figs[f"category:{i}"] = category_chart(p)
        recs = [r for r in verdicts if (r["model_a"], r["model_b"]) == (p["model_a"], p["model_b"])]
        if (png := length_chart(p, recs)) is not None:
            figs[f"length:{i}"] = png
    if elo:
        figs["elo"] = elo_chart(elo)
    if grades:
        figs["grades"] = grades_chart(grades)
    return figs
