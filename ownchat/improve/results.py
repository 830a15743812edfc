"""What a GSM8K evaluation yields: accuracies with Wilson intervals and per-question outcomes.

Kept apart from ``evaluate`` (which runs the models) so that reports can read results without
importing the runner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ownchat.stats import wilson


@dataclass
class Accuracy:
    correct: int
    n: int

    @property
    def value(self) -> float:
        return self.correct / self.n if self.n else 0.0

    def to_dict(self) -> dict[str, Any]:
        lo, hi = wilson(self.correct, self.n)
        return {"correct": self.correct, "n": self.n, "accuracy": round(self.value, 4),
                "ci95": [round(lo, 4), round(hi, 4)]}

    def __str__(self) -> str:
        lo, hi = wilson(self.correct, self.n)
        return f"{self.value:.1%} [{lo:.1%}, {hi:.1%}] ({self.correct}/{self.n})"


@dataclass
class EvalResult:
    out_dir: Path
    label: str
    n: int
    greedy: Accuracy | None = None
    sc: Accuracy | None = None
    sc_k: int = 0
    curve: list[Accuracy] = field(default_factory=list)  # majority over the first k samples, k=1..K
    mean_share: float | None = None
    timings: dict[str, float] = field(default_factory=dict)
    usage: dict[str, float] = field(default_factory=dict)
    #: per-question correctness in question order ("greedy", "sc"): what paired comparisons need
    per_question: dict[str, list[bool]] = field(default_factory=dict)
    sc_vs_greedy: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "label": self.label, "n": self.n,
                "greedy": self.greedy.to_dict() if self.greedy else None,
                "sc": self.sc.to_dict() if self.sc else None, "sc_k": self.sc_k,
                "accuracy_vs_k": [a.to_dict() for a in self.curve],
                "mean_vote_share": self.mean_share, "timings_s": self.timings, "usage": self.usage,
                "sc_vs_greedy": self.sc_vs_greedy, "hosts": []}
