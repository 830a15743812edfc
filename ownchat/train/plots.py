"""Loss curve PNG from ``metrics.jsonl``: training loss per step and held-out eval loss."""

from __future__ import annotations

from pathlib import Path

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
