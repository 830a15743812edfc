"""Training curves as PNGs: SFT's loss (train and held-out eval), and preference training's loss,
reward margin and accuracy (chosen out-scores rejected)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ownchat.data.jsonl import read_jsonl


def plot_losses(metrics_path: Path, out_png: Path, title: str = "") -> Path | None:
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on training machines
    import matplotlib.pyplot as plt

    rows = list(read_jsonl(metrics_path, allow_partial_last_line=True)) if Path(metrics_path).exists() else []
    train = [(r["step"], r["loss"]) for r in rows if "loss" in r]
    evals = [(r["step"], r["eval_loss"]) for r in rows if r.get("eval_loss") is not None]
    if not train:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
    ax.plot(*zip(*train, strict=True), label="train", linewidth=1)
    if evals:
        ax.plot(*zip(*evals, strict=True), "o-", label="eval (held out)", linewidth=1.5)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (nats / supervised token)")
    ax.set_title(title or Path(metrics_path).parent.name)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_png)
    plt.close(fig)
    return out_png


def moving_average(values: Sequence[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_pref_curves(history: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Write the three-panel PNG for ``history`` (the per-step metric records) and return its path.

    Raw per-step values are drawn faintly with a moving average on top: preference batches are
    small, so single steps are noisy and the trend is what the user needs to see.
    """
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
