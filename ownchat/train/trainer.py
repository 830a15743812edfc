"""One trainer for SFT, DPO and the reward model: ``fit(cfg, objective)``.

The objective (``sft.SFT``, ``dpo.DPO``, ``rm.RewardObjective``) says what differs: how its data
becomes batches, which module computes the loss, and what its result and run file add. Everything
else is done once, here, under ``accelerate`` (one process, or DDP/FSDP via ``accelerate launch``):

    out/train_config.json  the config; a resume with different order-affecting options is refused
    out/metrics.jsonl      one row per step (+ eval rows), rewritten up to the checkpoint on resume
    out/checkpoints/       step-NNNNNN (atomic, every RNG state): kill -9 and resume = never stopped
    out/adapter/           PEFT adapter + tokenizer (lora/qlora)  |  out/model/  full weights (full)
    out/ownchat_run.json   written last: base, adapter, chat template, licence, data, losses
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from ownchat.data.jsonl import JsonlWriter, read_jsonl, write_jsonl
from ownchat.errors import UserError
from ownchat.train.checkpoint import CKPT_DIR, latest_checkpoint, load_checkpoint, save_checkpoint
from ownchat.train.config import TrainConfig
from ownchat.train.loop import (
    LoopEnd,
    Micro,
    Schedule,
    StepCallback,
    make_optimizer,
    make_scheduler,
    run_steps,
    total_steps,
)
from ownchat.train.model import Start, adapter_targets, save_trained
from ownchat.train.runfile import write_run_file
from ownchat.train.templates import choose_template

METRICS = "metrics.jsonl"


@dataclass
class TrainingData:
    """An objective's data as the loop sees it."""

    schedule: Schedule
    examples: int
    files: list[dict[str, Any]]  # DataFileInfo dicts, for the run file and the model card
    eval: list[Micro] = field(default_factory=list)


@dataclass
class Fit:
    """What a finished (or resumed-at-the-end) run reports to its objective."""

    out: Path
    steps: int
    resumed_from: int | None
    last: dict[str, Any]  # the last step's metrics row
    eval_loss: float | None
    end: LoopEnd | None  # None: nothing left to train
    seconds: float
    plot: Path | None


class Objective(Protocol):
    stage: str  # "sft" | "dpo" | "rm", recorded in the run file
    count_key: str  # what the loss averages over, as a metrics column: "targets" (tokens) or "pairs"

    def start(self, cfg: Any, log) -> Start: ...
    def data(self, cfg: Any, tokenizer: Any, template: str, pad_id: int, log) -> TrainingData: ...
    def build(self, cfg: Any, start: Start, pad_id: int, log) -> torch.nn.Module: ...
    def derive(self, row: dict[str, Any]) -> None: ...
    def describe(self) -> str: ...
    def plot(self, out: Path, rows: list[dict[str, Any]]) -> Path | None: ...
    def result(self, fit: Fit, log) -> Any: ...
    def run_extra(self) -> dict[str, Any]: ...


def seed_all(seed: int) -> None:
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def fit(cfg: TrainConfig, obj: Objective, log=print, on_step: StepCallback | None = None) -> Any:
    """Train (or resume) ``cfg.out`` with ``obj``; returns ``obj.result(...)``."""
    from accelerate import Accelerator
    from transformers import AutoTokenizer

    cfg.validate()
    t0 = time.time()
    # cpu=True on CPU-only machines: otherwise accelerate treats processes started by `accelerate
    # launch` as independent single runs instead of one gloo process group
    acc = Accelerator(cpu=not torch.cuda.is_available())
    main = acc.is_main_process
    say = log if main else (lambda *_a, **_k: None)
    out = Path(cfg.out)
    if main:
        prepare_out_dir(out, cfg)
    acc.wait_for_everyone()
    seed_all(cfg.seed)

    start = obj.start(cfg, say)
    tokenizer = AutoTokenizer.from_pretrained(start.base_dir)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    template = choose_template(tokenizer, start.template)
    say(f"chat template: {template[0]}")
    data = obj.data(cfg, tokenizer, template[1], pad_id, say)
    module = obj.build(cfg, start, pad_id, say)
    optimizer = make_optimizer(module.parameters(), cfg.lr, cfg.weight_decay)
    total = total_steps(cfg.epochs, data.schedule.per_epoch(), cfg.grad_accum * acc.num_processes, cfg.max_steps)
    scheduler = make_scheduler(optimizer, int(cfg.warmup_ratio * total), total, cfg.SCHEDULE)
    module, optimizer = acc.prepare(module, optimizer)

    step, resumed_from, last, eval_loss = 0, None, {}, None
    ckpt = latest_checkpoint(out) if cfg.resume else None
    if ckpt is not None:
        meta = load_checkpoint(ckpt, model=acc.unwrap_model(module), optimizer=optimizer, scheduler=scheduler)
        step = resumed_from = int(meta["step"])
        say(f"resumed from {ckpt.name} (step {step}/{total})")
        # a run resumed at its last step trains nothing more: report what it ended with
        last = meta.get("row") or {"step": step, "loss": meta.get("loss")}
    rows = [r for r in _rows(out) if r.get("step", 0) <= step]
    eval_loss = next((r["eval_loss"] for r in reversed(rows) if r.get("eval_loss") is not None), None)
    acc.wait_for_everyone()  # every process has read the rows before the main one rewrites them
    if main:  # forget metrics logged after the checkpoint (or before any): they are about to be recomputed
        write_jsonl(out / METRICS, rows)
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    say(f"training {obj.describe()} on {acc.num_processes} process(es), {acc.device}: {trainable:,} trainable "
        f"parameters, {data.examples} examples, {total} steps of {cfg.batch_size}x{cfg.grad_accum}"
        + (f"x{acc.num_processes}" if acc.num_processes > 1 else ""))

    def save(done: int, row: dict[str, Any]) -> None:
        if main:
            save_checkpoint(out, done, model=acc.unwrap_model(module), optimizer=optimizer, scheduler=scheduler,
                            extra={"loss": row.get("loss"), "row": row}, keep=cfg.keep_checkpoints)

    metrics = JsonlWriter(out / METRICS, fsync=False) if main else None
    end = None
    try:
        if step < total:
            end = run_steps(acc=acc, module=module, optimizer=optimizer, scheduler=scheduler, schedule=data.schedule,
                            cfg=cfg, start=step, total=total, metrics=metrics, eval_batches=data.eval,
                            count_key=obj.count_key, derive=obj.derive, on_step=on_step if main else None,
                            save=save, last=last, eval_loss=eval_loss)
            last, eval_loss = end.last, end.eval_loss
    finally:
        if metrics is not None:
            metrics.close()

    model = acc.unwrap_model(module).model
    plot = None
    if main:
        if end is not None:
            say(f"padding: {end.padding_fraction:.1%} of batch tokens")
        save_trained(model, tokenizer, template[1], out, getattr(cfg, "method", "lora"))
        try:
            plot = obj.plot(out, list(_rows(out)))
        except Exception as exc:  # noqa: BLE001 - a failed plot must not lose a finished run
            say(f"could not draw curves: {exc}")
    done = Fit(out, total, resumed_from, last, eval_loss, end, round(time.time() - t0, 1), plot)
    result = obj.result(done, say)
    if main:
        write_run_file(out, stage=obj.stage, base=start.base, base_dir=start.base_dir, license=start.license,
                       template=template, method=getattr(cfg, "method", "lora"), data=data.files,
                       hyperparameters=cfg.to_dict(), final_loss=last.get("loss"), eval_loss=eval_loss,
                       steps=total, result=result.to_dict(), parent_adapter=start.adapter,
                       extra={"target_modules": adapter_targets(model), **obj.run_extra()})
    acc.wait_for_everyone()
    return result


def _rows(out: Path):
    path = out / METRICS
    return read_jsonl(path, allow_partial_last_line=True) if path.exists() else iter(())


def prepare_out_dir(out: Path, cfg: TrainConfig) -> None:
    """A fresh run refuses to overwrite an earlier one; a resume refuses a changed config."""
    saved = out / "train_config.json"
    started = (out / CKPT_DIR).exists() or (out / "ownchat_run.json").exists()
    if cfg.resume and saved.exists() and started:
        old = json.loads(saved.read_text())
        new = cfg.to_dict()
        diff = [k for k in cfg.ORDER_KEYS if old.get(k) != new.get(k)]
        if diff:
            raise UserError(f"{out}: cannot resume with a changed config ({', '.join(diff)} differ). "
                            "Resume with the original options, or start a new --out.")
        return
    if started and not cfg.resume:
        raise UserError(f"{out} already holds a training run: pass --resume to continue it, or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(cfg.to_dict(), indent=2))
