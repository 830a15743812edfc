"""Curves for preference training: loss, reward margin, and how often chosen out-scores rejected.

One PNG with three panels. Raw per-step values are drawn faintly with a moving average on top:
DPO batches are small, so single steps are noisy and the trend is what the user needs to see.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def moving_average(values: Sequence[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_pref_curves(history: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Write the three-panel PNG for ``history`` (the per-step metric records) and return its path."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt

    path = Path(path)
    steps = [h["step"] for h in history]
    window = max(1, len(history) // 20)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    panels = [
        ("loss", [("loss", "loss")], None),
        ("reward margin (chosen - rejected)", [("margin", "margin"), ("reward_chosen", "chosen"),
                                               ("reward_rejected", "rejected")], 0.0),
        ("accuracy (chosen > rejected)", [("accuracy", "accuracy")], 0.5),
    ]
    for ax, (name, series, ref_line) in zip(axes, panels, strict=True):
        for key, label in series:
            if not history or key not in history[0]:
                continue
            vals = [float(h[key]) for h in history]
            line = ax.plot(steps, vals, alpha=0.25, linewidth=0.8)[0]
            ax.plot(steps, moving_average(vals, window), color=line.get_color(), label=label)
        if ref_line is not None:
            ax.axhline(ref_line, color="grey", linestyle=":", linewidth=0.8)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step")
        if len(series) > 1:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
