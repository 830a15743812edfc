"""LoRA DPO: learn from (chosen, rejected) pairs without a reward model or a second model copy.

The reference policy is the *same* weights: the base with the adapter switched off, or — when
continuing an SFT run — the SFT adapter loaded a second time, frozen, under the name ``ref``. An
adapter is a few MB, so the reference costs no extra copy of the model. Reference log-probs are
computed per batch under ``no_grad`` (no activations kept), and logits are produced for the answer
span only (see ``pref_data``), which is where most of DPO's memory usually goes.

Loss types: ``sigmoid`` (the DPO paper), ``ipo`` (squared, on length-averaged log-probs),
``hinge`` (SLiC) and ``robust`` (label-noise-corrected DPO, with ``label_smoothing`` = flip rate).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ownchat.data.jsonl import JsonlWriter, write_jsonl
from ownchat.errors import UserError
from ownchat.train.pref_common import (
    Checkpoints,
    PrefTrainConfig,
    device_and_dtype,
    finish_step,
    lora_config,
    prepare_pairs,
    resolve_start,
    seed_all,
    write_run,
)
from ownchat.train.pref_data import answer_logps, collate

LOSS_TYPES = ("sigmoid", "ipo", "hinge", "robust")


@dataclass
class DPOConfig(PrefTrainConfig):
    beta: float = 0.1
    loss_type: str = "sigmoid"
    label_smoothing: float = 0.0

    def validate(self) -> None:
        if self.loss_type not in LOSS_TYPES:
            raise UserError(f"--loss must be one of {', '.join(LOSS_TYPES)}")
        if self.beta <= 0:
            raise UserError("--beta must be > 0")
        if not 0 <= self.label_smoothing < 0.5:
            raise UserError("--label-smoothing must be in [0, 0.5)")
        if self.batch_size < 1 or self.grad_accum < 1 or self.seq_len < 16:
            raise UserError("--batch-size and --grad-accum must be >= 1, --seq-len >= 16")


@dataclass
class DPOResult:
    out: str
    steps: int
    pairs: int
    final_loss: float | None
    final: dict[str, float]
    resumed_from: int = 0
    seconds: float = 0.0
    plot: str | None = None
    usage: dict[str, float] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def load_policy(base_dir: Path, dtype: Any, cfg: PrefTrainConfig, start_adapter: Path | None,
                resume: Path | None) -> tuple[Any, bool]:
    """Base + trainable adapter ``default`` (+ frozen ``ref`` copy of the SFT adapter, if any)."""
    from peft import PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=dtype)
    if resume is not None or start_adapter is not None:
        model = PeftModel.from_pretrained(model, str(resume or start_adapter), is_trainable=True)
    else:
        model = get_peft_model(model, lora_config(cfg, "CAUSAL_LM", model))
    if start_adapter is not None:
        model.load_adapter(str(start_adapter), adapter_name="ref", is_trainable=False)
        model.set_adapter("default")
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    return model, start_adapter is not None


def train_dpo(cfg: DPOConfig, log: Callable[[str], None] = print,
              on_step: Callable[[dict[str, Any], int], None] | None = None) -> DPOResult:
    """Train (or resume) a DPO run into ``cfg.out``; ``on_step(metrics, total_steps)`` after each step."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    cfg.validate()
    t0 = time.time()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    seed_all(cfg.seed)
    start = resolve_start(cfg.model, cfg.adapter, cfg.chat_template, log=log)
    data = prepare_pairs(cfg, start)
    tok, pad_id, jinja, run_template = data.tokenizer, data.pad_id, data.jinja, data.run_template
    pairs, enc, total, order = data.pairs, data.encoded, data.total_steps, data.order

    ckpts = Checkpoints(out)
    latest = ckpts.latest()
    device, dtype = device_and_dtype()
    model, ref_adapter = load_policy(start.base_dir, dtype, cfg, start.adapter,
                                     latest / "adapter" if latest else None)
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    sched = get_linear_schedule_with_warmup(opt, int(cfg.warmup_ratio * total), total)
    step, history = 0, []
    if latest is not None:
        state = ckpts.restore(latest, opt, sched)
        step, history = state["step"], state["history"]
        log(f"resuming DPO from {latest.name} ({step}/{total} steps)")
    resumed_from = step
    write_jsonl(out / "metrics.jsonl", history)  # drop lines written after the checkpoint we resume from
    log(f"DPO: {len(pairs)} pairs, {total} steps of {cfg.batch_size}x{cfg.grad_accum}, β={cfg.beta}, "
        f"loss={cfg.loss_type}, reference={'SFT adapter' if ref_adapter else 'base (adapter off)'}, {device}")
    average = cfg.loss_type == "ipo"
    with JsonlWriter(out / "metrics.jsonl") as metrics:
        while step < total:
            ts = time.time()
            opt.zero_grad(set_to_none=True)
            acc: dict[str, float] = {"loss": 0.0, "reward_chosen": 0.0, "reward_rejected": 0.0, "accuracy": 0.0}
            for micro in range(cfg.grad_accum):
                idx = order[step * cfg.grad_accum + micro]
                batch = collate([enc[i].chosen for i in idx] + [enc[i].rejected for i in idx], pad_id)
                batch = {k: (v.to(device) if hasattr(v, "to") else v) for k, v in batch.items()}
                n = len(idx)
                with torch.no_grad(), reference(model, ref_adapter):
                    ref = answer_logps(model, batch, average)
                pol = answer_logps(model, batch, average)
                loss, rc, rr = dpo_loss(pol[:n], pol[n:], ref[:n], ref[n:], cfg.beta, cfg.loss_type,
                                        cfg.label_smoothing)
                (loss.mean() / cfg.grad_accum).backward()
                for key, val in (("loss", loss.detach()), ("reward_chosen", rc), ("reward_rejected", rr),
                                 ("accuracy", (rc > rr).float())):
                    acc[key] += float(val.float().mean()) / cfg.grad_accum
            step = finish_step(step=step, total=total, acc=acc, started=ts, params=params, opt=opt,
                               sched=sched, model=model, ckpts=ckpts, cfg=cfg, history=history,
                               metrics=metrics, on_step=on_step)
    final_loss = history[-1]["loss"] if history else None
    dpo_meta = {"beta": cfg.beta, "loss_type": cfg.loss_type, "label_smoothing": cfg.label_smoothing,
                "reference": "sft adapter" if ref_adapter else "base"}
    write_run(out, model, start, stage="dpo", template=(jinja, run_template), tokenizer=tok,
              data=[str(cfg.data)], final_loss=final_loss, steps=total, cfg=cfg, extra={"dpo": dpo_meta})
    plot = None
    try:
        from ownchat.train.pref_plots import plot_pref_curves

        plot = str(plot_pref_curves(history, out / "dpo_curves.png", title=f"DPO ({cfg.loss_type}, β={cfg.beta})"))
    except Exception as exc:  # noqa: BLE001 - a failed plot must not lose a finished run
        log(f"could not draw curves: {exc}")
    final = {k: v for k, v in (history[-1] if history else {}).items() if k not in ("step", "seconds")}
    log(f"DPO done: {total} steps, loss {final_loss}, margin {final.get('margin')}, "
        f"accuracy {final.get('accuracy')} -> {out}")
    return DPOResult(str(out), total, len(pairs), final_loss, final, resumed_from, round(time.time() - t0, 1), plot)
