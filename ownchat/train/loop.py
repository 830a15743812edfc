"""A small training loop shared by SFT and preference training.

Why our own loop rather than HF ``Trainer`` / TRL ``SFTTrainer``:
- the LM head runs only on supervised positions (``TokenLoss``): on a 49k-token vocabulary the
  full logits tensor is the largest activation of a small model, and most positions (prompt,
  system text, padding) carry no loss. That alone saves a fifth of the FLOPs and most of the
  peak memory on SmolLM2, without gradient checkpointing (which TRL turns on by default and which
  re-runs the forward pass);
- the loss is the token-weighted mean over the whole accumulated step, exact under gradient
  accumulation and mixed batch lengths;
- exact resume is simple when the loop owns the batch order (a pure function of seed and epoch),
  the RNG states and the step counter (see ``checkpoint.py``).
``benchmarks/train.py`` measures the result against SFTTrainer with its defaults.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ownchat.train.collate import IGNORE


def unwrap_causal_lm(model):
    """The transformers ``*ForCausalLM`` inside PEFT / DDP wrappers."""
    while hasattr(model, "module"):
        model = model.module
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model


class TokenLoss(nn.Module):
    """``forward(batch) -> (summed NLL, number of targets)`` computing logits only where trained.

    Wrapping the model in a module (instead of calling its parts from the loop) keeps DDP/FSDP
    correct: accelerate wraps this module, so every forward goes through the wrapper's hooks.
    """

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model
        lm = unwrap_causal_lm(model)
        self._split = hasattr(lm, "get_decoder") and lm.get_output_embeddings() is not None
        self._softcap = getattr(lm.config, "final_logit_softcapping", None)

    def hidden_and_head(self):
        lm = unwrap_causal_lm(self.model)
        return lm.get_decoder(), lm.get_output_embeddings()

    def forward(self, input_ids, targets, position_ids=None, attention_mask=None):
        sel = targets != IGNORE
        if self._split:
            decoder, head = self.hidden_and_head()
            h = decoder(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                        use_cache=False).last_hidden_state
            logits = head(h[sel]).float()
        else:  # models without a separable head: full logits, then select
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                             use_cache=False)
            logits = out.logits[sel].float()
        if self._softcap:
            logits = torch.tanh(logits / self._softcap) * self._softcap
        return F.cross_entropy(logits, targets[sel], reduction="sum"), sel.sum()


def make_optimizer(params: Iterable[nn.Parameter], lr: float, weight_decay: float) -> torch.optim.Optimizer:
    # foreach=False: the same update order on every run and world size; the speed gain is nil on CPU
    return torch.optim.AdamW([p for p in params if p.requires_grad], lr=lr, weight_decay=weight_decay,
                             foreach=False)


def make_scheduler(opt: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up then cosine decay to 10% of the peak rate."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        t = (step - warmup) / max(1, total - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


@dataclass
class StepOutput:
    loss: float
    targets: int
    tokens: int
    padded: int
    grad_norm: float


def _to(batch: dict, device) -> dict:
    return {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}


def train_step(module, optimizer, scheduler, micro_batches: list[tuple[dict, object]], *, accelerator,
               max_grad_norm: float) -> StepOutput:
    """One optimizer step over ``micro_batches`` (gradient accumulation), token-weighted loss."""
    module.train()
    n_targets = sum(stats.targets for _, stats in micro_batches)
    denom = max(1, n_targets)
    total = 0.0
    for k, (batch, _) in enumerate(micro_batches):
        last = k == len(micro_batches) - 1
        ctx = accelerator.no_sync(module) if (not last and accelerator.num_processes > 1) else _null()
        with ctx:
            loss_sum, _ = module(**_to(batch, accelerator.device))
            accelerator.backward(loss_sum / denom)
        total += float(loss_sum.detach())
    params = [p for p in module.parameters() if p.requires_grad]
    norm = accelerator.clip_grad_norm_(params, max_grad_norm) if max_grad_norm > 0 else torch.tensor(0.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return StepOutput(total / denom, n_targets, sum(s.tokens for _, s in micro_batches),
                      sum(s.padded for _, s in micro_batches), float(norm))


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


@torch.no_grad()
def evaluate(module, batches: Iterable[tuple[dict, object]], device) -> float | None:
    """Token-weighted mean loss over ``batches`` (dropout off)."""
    module.eval()
    total, count = 0.0, 0
    for batch, _ in batches:
        loss_sum, n = module(**_to(batch, device))
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


ProgressFn = Callable[[int, int, dict], None]
