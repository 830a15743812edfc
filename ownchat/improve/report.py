"""The LMSI paper's table on our own models: Markdown + JSON + PNG.

Rows run Greedy CoT -> self-consistency -> after LMSI (greedy, self-consistency); each row shows the
accuracy, its 95% Wilson interval and the number of questions, so a reader sees at once whether a
gain is larger than the noise of a small evaluation subset.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ownchat.improve.results import Accuracy, EvalResult
from ownchat.stats import wilson


@dataclass(frozen=True)
class Row:
    method: str
    model: str
    acc: Accuracy
    k: int = 1  # samples per question

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "model": self.model, "k": self.k, **self.acc.to_dict()}


def eval_rows(result: EvalResult, prefix: str = "", model: str | None = None) -> list[Row]:
    model = model or result.label
    rows = []
    if result.greedy:
        rows.append(Row(f"{prefix}Greedy CoT", model, result.greedy, 1))
    if result.sc:
        rows.append(Row(f"{prefix}Self-consistency", model, result.sc, result.sc_k))
    return rows


def lmsi_rows(before: EvalResult | None, after: EvalResult | None) -> list[Row]:
    rows: list[Row] = []
    if before:
        rows += eval_rows(before, model="base")
    if after:
        rows += eval_rows(after, "LMSI + ", model="LMSI-tuned")
    return rows


def write_report(rows: list[Row], out: Path, *, title: str, split: dict[str, Any] | None = None,
                 curves: list[tuple[str, EvalResult | None]] | None = None,
                 extra: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write ``report.md``, ``report.json``, ``report.png`` (and ``accuracy_vs_k.png`` with curves)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"md": out / "report.md", "json": out / "report.json", "png": out / "report.png"}
    series = [(label, r.curve, r.greedy) for label, r in (curves or []) if r is not None and r.curve]
    if series:
        paths["curve"] = plot_accuracy_vs_k(series, out / "accuracy_vs_k.png")
    from ownchat.render import write_report as render_to

    render_to(paths["md"], "gsm8k_report.md.jinja", title=title, rows=[r.to_dict() for r in rows], split=split,
              extra=extra or {}, curve=bool(series))
    paths["json"].write_text(json.dumps({"title": title, "rows": [r.to_dict() for r in rows], "split": split,
                                         **(extra or {})}, indent=2))
    _bar_chart(rows, paths["png"], title)
    return paths


def _bar_chart(rows: list[Row], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(4, 1.6 * len(rows)), 4), dpi=120)
    vals = [r.acc.value for r in rows]
    bands = [wilson(r.acc.correct, r.acc.n) for r in rows]
    err = [[v - b[0] for v, b in zip(vals, bands, strict=True)], [b[1] - v for v, b in zip(vals, bands, strict=True)]]
    labels = [f"{r.method}\n(K={r.k}, n={r.acc.n})" for r in rows]
    ax.bar(range(len(rows)), vals, yerr=err, capsize=4, color=[f"C{i}" for i in range(len(rows))])
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    ax.set_ylabel("GSM8K accuracy (95% Wilson CI)")
    ax.set_ylim(0, max(0.05, max((b[1] for b in bands), default=0.05)) * 1.1)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_accuracy_vs_k(series: list[tuple[str, list[Accuracy], Accuracy | None]], path: Path) -> Path:
    """One line per model: majority-vote accuracy at k=1..K with its 95% band; greedy dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for i, (label, curve, greedy) in enumerate(series):
        color = f"C{i}"
        ks = list(range(1, len(curve) + 1))
        ax.plot(ks, [a.value for a in curve], marker="o", color=color, label=f"{label}: self-consistency")
        bands = [wilson(a.correct, a.n) for a in curve]
        ax.fill_between(ks, [b[0] for b in bands], [b[1] for b in bands], color=color, alpha=0.15)
        if greedy is not None:
            ax.axhline(greedy.value, color=color, linestyle="--", label=f"{label}: greedy")
    ax.set_xticks(range(1, max((len(c) for _, c, _ in series), default=1) + 1))
    ax.set_xlabel("samples K (majority vote over the first K)")
    ax.set_ylabel("GSM8K accuracy")
    n = series[0][1][0].n if series and series[0][1] else 0
    ax.set_title(f"Accuracy vs K (n={n}, 95% Wilson bands)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
