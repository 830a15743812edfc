"""The one training loop, shared by SFT, DPO and the reward model; the objective is a module.

Each trainer hands the loop a module whose ``forward(**batch)`` returns ``(loss summed over the
items of the batch, number of items[, sums of other metrics])``: items are supervised tokens for SFT
and preference pairs for DPO and the reward model. The loop then does the same for all three:
- micro-batches in an order that is a pure function of (seed, epoch) (``Schedule``), split over
  ``accelerate`` processes and accumulated; the loss is the item-weighted mean over the whole step;
- AdamW, warm-up then cosine or linear decay, gradient clipping;
- a metrics row per step (``metrics.jsonl``), a progress callback, and a checkpoint every
  ``save_every`` steps from which ``--resume`` continues exactly (``checkpoint.py``).

Why our own loop rather than HF ``Trainer`` / TRL: the LM head runs only on trained positions, in
chunks (``token_loss.py``), which removes the largest tensors of a small model's step; the loss is
exact under accumulation and mixed batch lengths; and exact resume is simple when the loop owns the
batch order, the RNG states and the step counter. ``benchmarks/train.py`` and
``benchmarks/dpo_memory.py`` measure it against TRL's trainers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from ownchat.train.collate import BatchStats

#: ``on_step(row, total_steps)`` after every optimizer step; ``row`` is the step's metrics row
StepCallback = Callable[[dict[str, Any], int], None]
Micro = tuple[dict, BatchStats]


class Schedule:
    """Micro-batch number g -> its passes [(tensors, stats), ...], walking epochs in order; each
    epoch's order is fixed.

    ``epoch(e)`` gives that epoch's batches (lists of rows of example indices) and ``collate`` turns
    one into the forward passes that compute it: one for SFT, one per few pairs for preference
    training, whose loss is a sum over independent pairs (same gradient, a fraction of the
    activations). Only the current epoch's order is kept in memory.
    """

    def __init__(self, epoch: Callable[[int], list], collate: Callable[[list], list[Micro]]) -> None:
        self._make, self.collate = epoch, collate
        self._epochs: dict[int, list] = {}

    def epoch(self, e: int) -> list:
        if e not in self._epochs:
            self._epochs = {e: self._make(e)}
        return self._epochs[e]

    def per_epoch(self) -> int:
        return len(self.epoch(0))

    def get(self, g: int) -> list[Micro]:
        e, n = 0, len(self.epoch(0))
        while g >= n:
            g -= n
            e += 1
            n = len(self.epoch(e))
        return self.collate(self.epoch(e)[g])


def total_steps(epochs: float, per_epoch: int, per_step: int, max_steps: int | None) -> int:
    """Optimizer steps of a run: ``max_steps``, else ``epochs`` passes of whole steps (at least one)."""
    return max_steps or max(1, math.ceil(epochs * max(1, per_epoch // per_step)))


def make_optimizer(params: Iterable[nn.Parameter], lr: float, weight_decay: float) -> torch.optim.Optimizer:
    # foreach=False: the same update order on every run and world size; the speed gain is nil on CPU
    return torch.optim.AdamW([p for p in params if p.requires_grad], lr=lr, weight_decay=weight_decay,
                             foreach=False)


def make_scheduler(opt: torch.optim.Optimizer, warmup: int, total: int,
                   shape: str = "cosine") -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up, then cosine decay to 10% of the peak rate or (``linear``) a straight line to 0."""

    def cosine(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        t = (step - warmup) / max(1, total - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    def linear(step: int) -> float:  # transformers' get_linear_schedule_with_warmup, which DPO used first
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(opt, cosine if shape == "cosine" else linear)


@dataclass
class StepOutput:
    loss: float  # item-weighted mean over the step's micro-batches on this process
    items: int  # what the loss is averaged over: supervised tokens (SFT) or pairs (preferences)
    tokens: int
    padded: int
    grad_norm: float
    sums: dict[str, float]  # other metrics, summed over items


def _to(batch: dict, device) -> dict:
    return {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}


def train_step(module, optimizer, scheduler, micro_batches: list[list[Micro]], *, accelerator,
               max_grad_norm: float) -> StepOutput:
    """One optimizer step over ``micro_batches`` (gradient accumulation), item-weighted loss."""
    module.train()
    passes = [p for micro in micro_batches for p in micro]
    n_items = sum(stats.targets for _, stats in passes)
    denom = max(1, n_items)
    total = 0.0
    sums: dict[str, float] = {}
    for k, (batch, _) in enumerate(passes):
        last = k == len(passes) - 1
        ctx = accelerator.no_sync(module) if (not last and accelerator.num_processes > 1) else nullcontext()
        with ctx:
            loss_sum, _, *more = module(**_to(batch, accelerator.device))
            accelerator.backward(loss_sum / denom)
        total += float(loss_sum.detach())
        for key, v in (more[0] if more else {}).items():
            sums[key] = sums.get(key, 0.0) + float(v)
    params = [p for p in module.parameters() if p.requires_grad]
    norm = accelerator.clip_grad_norm_(params, max_grad_norm) if max_grad_norm > 0 else torch.tensor(0.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return StepOutput(total / denom, n_items, sum(s.tokens for _, s in passes),
                      sum(s.padded for _, s in passes), float(norm), sums)


def global_means(acc, res: StepOutput) -> tuple[dict[str, float], int, int]:
    """The step's loss and metrics as item-weighted means over every process, and the items and
    tokens of all processes together."""
    keys = sorted(res.sums)
    local = [res.loss * res.items, *(res.sums[k] for k in keys), float(res.items), float(res.tokens)]
    if acc.num_processes > 1:
        local = acc.reduce(torch.tensor(local, device=acc.device, dtype=torch.float64), reduction="sum").tolist()
    n = max(1.0, local[-2])
    means = {"loss": local[0] / n, **{k: v / n for k, v in zip(keys, local[1:-2], strict=True)}}
    return means, int(local[-2]), int(local[-1])


@torch.no_grad()
def evaluate(module, batches: Iterable[Micro], device) -> float | None:
    """Item-weighted mean loss over ``batches`` (dropout off)."""
    module.eval()
    total, count = 0.0, 0
    for batch, _ in batches:
        loss_sum, n, *_ = module(**_to(batch, device))
        total += float(loss_sum)
        count += int(n)
    module.train()
    return total / count if count else None


class Throughput:
    """Tokens per second over the steps of this process (a resumed run starts a fresh clock)."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.tokens = 0

    def add(self, n: int) -> None:
        self.tokens += n

    @property
    def rate(self) -> float:
        return self.tokens / max(1e-9, time.perf_counter() - self.t0)


@dataclass
class LoopEnd:
    """What the steps left behind: the last metrics row, the latest eval loss, throughput, padding."""

    last: dict[str, Any]
    eval_loss: float | None
    tokens: int
    seconds: float
    rate: float
    padding_fraction: float


def run_steps(*, acc, module, optimizer, scheduler, schedule: Schedule, cfg, start: int, total: int,
              metrics, eval_batches: list[Micro], count_key: str, derive: Callable[[dict], None],
              on_step: StepCallback | None, save: Callable[[int, dict], None],
              last: dict[str, Any], eval_loss: float | None) -> LoopEnd:
    """Steps ``start`` .. ``total``: train, log a row, evaluate and checkpoint on schedule."""
    meter = Throughput()
    pad_total = tok_total = 0
    per_step = cfg.grad_accum * acc.num_processes
    for step in range(start, total):
        g0 = step * per_step
        micro = [schedule.get(g0 + a * acc.num_processes + acc.process_index) for a in range(cfg.grad_accum)]
        t_step = time.perf_counter()
        res = train_step(module, optimizer, scheduler, micro, accelerator=acc, max_grad_norm=cfg.max_grad_norm)
        means, items, tokens = global_means(acc, res)
        meter.add(tokens)
        pad_total += res.padded - res.tokens
        tok_total += res.padded
        done = step + 1
        row: dict[str, Any] = {"step": done, **{k: round(v, 6) for k, v in means.items()}}
        derive(row)
        row.update({"lr": scheduler.get_last_lr()[0], "tokens": tokens, count_key: items,
                    "grad_norm": round(res.grad_norm, 4), "tok_s": round(meter.rate, 1),
                    "step_s": round(time.perf_counter() - t_step, 4)})
        is_ckpt = done % cfg.save_every == 0 or done == total
        if eval_batches and (is_ckpt or (getattr(cfg, "eval_every", 0) and done % cfg.eval_every == 0)):
            eval_loss = evaluate(module, eval_batches, acc.device)
            row["eval_loss"] = round(eval_loss, 6) if eval_loss is not None else None
        if metrics is not None and (done % cfg.log_every == 0 or "eval_loss" in row or done == total):
            metrics.write(row)
        last = row
        if on_step is not None:
            on_step(row, total)
        if is_ckpt:
            save(done, row)
        acc.wait_for_everyone()
    return LoopEnd(last, eval_loss, meter.tokens, round(time.perf_counter() - meter.t0, 2), round(meter.rate, 1),
                   round(pad_total / max(1, tok_total), 4))
