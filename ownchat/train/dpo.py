"""LoRA DPO: learn from (chosen, rejected) pairs without a reward model or a second model copy.

The reference policy is the *same* weights: the base with the adapter switched off, or — when
continuing an SFT run — the SFT adapter loaded a second time, frozen, under the name ``ref``. An
adapter is a few MB, so the reference costs no extra copy of the model. Reference log-probs are
computed per batch under ``no_grad`` (no activations kept), and the LM head runs on the answer
tokens only, in chunks (``token_loss``), which is where most of DPO's memory usually goes.

Loss types: ``sigmoid`` (the DPO paper), ``ipo`` (squared, on length-averaged log-probs),
``hinge`` (SLiC) and ``robust`` (label-noise-corrected DPO, with ``label_smoothing`` = flip rate).
The loop, checkpoints (exact resume), ``accelerate launch`` and the run file are the shared
trainer's (``trainer.fit``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

from ownchat.train.config import PrefTrainConfig
from ownchat.train.loop import StepCallback
from ownchat.train.model import add_adapter, load_base
from ownchat.train.pref_data import PairObjective, PrefResult
from ownchat.train.token_loss import TokenLogps, row_sums
from ownchat.train.trainer import fit

LOSS_TYPES = ("sigmoid", "ipo", "hinge", "robust")


@dataclass
class DPOConfig(PrefTrainConfig):
    beta: float = 0.1
    loss_type: str = "sigmoid"
    label_smoothing: float = 0.0

    ORDER_KEYS: ClassVar[tuple[str, ...]] = (*PrefTrainConfig.ORDER_KEYS, "beta", "loss_type", "label_smoothing")
    FLAGS: ClassVar[dict[str, str]] = {"loss_type": "--loss"}

    def problems(self) -> list[tuple[str, str]]:
        errs = super().problems()
        if self.loss_type not in LOSS_TYPES:
            errs.append(("loss_type", f"{self.loss_type!r} is not one of {', '.join(LOSS_TYPES)}"))
        if not isinstance(self.beta, (int, float)) or self.beta <= 0:
            errs.append(("beta", f"must be > 0, got {self.beta!r}"))
        if not isinstance(self.label_smoothing, (int, float)) or not 0 <= self.label_smoothing < 0.5:
            errs.append(("label_smoothing", f"must be in [0, 0.5), got {self.label_smoothing!r}"))
        return errs


class DPOResult(PrefResult):
    pass


def dpo_loss(pol_c: Any, pol_r: Any, ref_c: Any, ref_r: Any, beta: float, loss_type: str = "sigmoid",
             label_smoothing: float = 0.0) -> tuple[Any, Any, Any]:
    """Per-pair loss and the implicit rewards β·log(π/π_ref) of chosen and rejected answers."""
    import torch.nn.functional as F

    h = (pol_c - ref_c) - (pol_r - ref_r)  # how much more the policy prefers chosen than the reference does
    if loss_type == "sigmoid":
        loss = -F.logsigmoid(beta * h) * (1 - label_smoothing) - F.logsigmoid(-beta * h) * label_smoothing
    elif loss_type == "robust":
        loss = (-F.logsigmoid(beta * h) * (1 - label_smoothing)
                + F.logsigmoid(-beta * h) * label_smoothing) / (1 - 2 * label_smoothing)
    elif loss_type == "ipo":
        loss = (h - 1 / (2 * beta)) ** 2
    elif loss_type == "hinge":
        loss = F.relu(1 - beta * h)
    else:
        raise ValueError(f"unknown loss type {loss_type!r}")
    return loss, beta * (pol_c - ref_c).detach(), beta * (pol_r - ref_r).detach()


@contextmanager
def reference(model: Any, ref_adapter: bool) -> Iterator[None]:
    """Run the reference policy: the frozen ``ref`` adapter, or the base with adapters disabled."""
    model.eval()
    try:
        if ref_adapter:
            model.set_adapter("ref")
            try:
                yield
            finally:
                model.set_adapter("default")  # also makes "default" trainable again, "ref" frozen
        else:
            with model.disable_adapter():
                yield
    finally:
        model.train()


class DPOLoss(TokenLogps):
    """``forward(batch of n chosen + n rejected rows) -> (summed pair loss, n, reward/accuracy sums)``."""

    def __init__(self, model: Any, cfg: DPOConfig, ref_adapter: bool) -> None:
        super().__init__(model)
        self.cfg, self.ref_adapter = cfg, ref_adapter

    def logps(self, batch: dict[str, Any]) -> Any:
        logp, rows = self.token_logps(**batch)
        n = batch["input_ids"].shape[0]
        total = row_sums(logp, rows, n)
        if self.cfg.loss_type != "ipo":
            return total
        return total / row_sums(logp.new_ones(logp.shape), rows, n).clamp(min=1)  # IPO: per-token average

    def forward(self, input_ids, targets, position_ids=None, attention_mask=None):
        import torch

        batch = dict(input_ids=input_ids, targets=targets, position_ids=position_ids, attention_mask=attention_mask)
        n = input_ids.shape[0] // 2
        with torch.no_grad(), reference(self.model, self.ref_adapter):
            ref = self.logps(batch)
        pol = self.logps(batch)
        loss, rc, rr = dpo_loss(pol[:n], pol[n:], ref[:n], ref[n:], self.cfg.beta, self.cfg.loss_type,
                                self.cfg.label_smoothing)
        sums = {"reward_chosen": rc.sum(), "reward_rejected": rr.sum(), "accuracy": (rc > rr).float().sum()}
        return loss.sum(), n, sums


class DPO(PairObjective):
    """The DPO objective for ``trainer.fit``."""

    stage = "dpo"
    curves = "dpo_curves.png"
    ref_adapter = False

    def build(self, cfg: DPOConfig, start: Any, pad_id: int, log) -> DPOLoss:
        """Base + trainable adapter ``default`` (+ frozen ``ref`` copy of the SFT adapter, if any)."""
        model = add_adapter(load_base(start.base_dir, cfg), cfg, continue_from=start.adapter)
        if start.adapter is not None:
            model.load_adapter(str(start.adapter), adapter_name="ref", is_trainable=False)
            model.set_adapter("default")
        self.ref_adapter = start.adapter is not None
        return DPOLoss(model, cfg, self.ref_adapter)

    def describe(self) -> str:
        c = self.cfg
        return (f"DPO ({c.loss_type}, β={c.beta}, reference: "
                f"{'SFT adapter' if self.ref_adapter else 'base, adapter off'}) on {self.pairs} pairs")

    def title(self) -> str:
        return f"DPO ({self.cfg.loss_type}, β={self.cfg.beta})"

    def result(self, f: Any, log) -> DPOResult:
        final, fields = self.final(f)
        log(f"DPO done: {f.steps} steps, loss {fields['final_loss']}, margin {final.get('margin')}, "
            f"accuracy {final.get('accuracy')} -> {f.out}")
        return DPOResult(**fields)

    def run_extra(self) -> dict[str, Any]:
        c = self.cfg
        return {"dpo": {"beta": c.beta, "loss_type": c.loss_type, "label_smoothing": c.label_smoothing,
                        "reference": "sft adapter" if self.ref_adapter else "base"}}


def train_dpo(cfg: DPOConfig, log=print, on_step: StepCallback | None = None) -> DPOResult:
    """Train (or resume) a DPO run into ``cfg.out``; ``on_step(metrics row, total_steps)`` after each step."""
    return fit(cfg, DPO(cfg), log=log, on_step=on_step)
