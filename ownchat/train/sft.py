"""Supervised fine-tuning: ``train_sft(SFTConfig(...)) -> TrainResult``.

Data -> per-message loss masks (``render.py``) -> low-padding batches (``collate.py``) -> our loop
(``loop.py``, why not Trainer is explained there) under ``accelerate`` (one process, or DDP/FSDP
via ``accelerate launch``) -> a run directory that ``resolve``/``load_engine`` and ``ownchat
export`` understand:

    out/ownchat_run.json   base ref, adapter folder, chat template (name + Jinja), licence, data, losses
    out/adapter/           PEFT adapter (lora/qlora)   |  out/model/  full weights (full)
    out/metrics.jsonl      one row per step (+ eval rows);  out/loss.png
    out/checkpoints/       step-NNNNNN (atomic), for --resume
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import torch

from ownchat.data.jsonl import JsonlWriter, read_jsonl, write_jsonl
from ownchat.errors import UserError
from ownchat.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from ownchat.train.collate import Example, collate, make_batches, tokenize_all
from ownchat.train.config import SFTConfig, TrainResult
from ownchat.train.data import load_training_data
from ownchat.train.loop import (
    Throughput,
    TokenLoss,
    evaluate,
    make_optimizer,
    make_scheduler,
    train_step,
    unwrap_causal_lm,
)
from ownchat.train.model import load_for_training, save_trained
from ownchat.train.render import MaskReport
from ownchat.train.runfile import write_run_file
from ownchat.train.templates import choose_template

__all__ = ["SFTConfig", "TrainResult", "train_sft"]

# options that change which batch comes at which step: a resume must keep them
_ORDER_KEYS = ("model", "data", "data_weights", "method", "seed", "batch_size", "grad_accum", "seq_len",
               "packing", "eval_fraction", "epochs", "max_steps", "chat_template", "lr", "lora_r")


class BatchSchedule:
    """Micro-batch number g -> (batch, stats), walking epochs in order; each epoch's order is fixed."""

    def __init__(self, examples: list[Example], cfg: SFTConfig, pad_id: int) -> None:
        self.examples, self.cfg, self.pad_id = examples, cfg, pad_id
        self._epochs: dict[int, list] = {}

    def epoch(self, e: int) -> list:
        if e not in self._epochs:
            self._epochs = {e: make_batches(self.examples, self.cfg.batch_size, self.cfg.seed, e,
                                            packing=self.cfg.packing, seq_len=self.cfg.seq_len)}
        return self._epochs[e]

    def per_epoch(self) -> int:
        return len(self.epoch(0))

    def get(self, g: int) -> tuple[dict, object]:
        e, n = 0, len(self.epoch(0))
        while g >= n:
            g -= n
            e += 1
            n = len(self.epoch(e))
        return collate(self.examples, self.epoch(e)[g], self.pad_id)


def train_sft(cfg: SFTConfig, log=print, *, progress: bool = True) -> TrainResult:
    from accelerate import Accelerator

    from ownchat.models.resolve import ensure_hf, resolve

    cfg.validate()
    # cpu=True on CPU-only machines: otherwise accelerate treats processes started by `accelerate
    # launch` as independent single runs instead of one gloo process group
    acc = Accelerator(cpu=not torch.cuda.is_available())
    main = acc.is_main_process
    say = log if main else (lambda *_a, **_k: None)
    out = Path(cfg.out)
    _prepare_out_dir(out, cfg, main)
    torch.manual_seed(cfg.seed)

    ref = resolve(cfg.model, log=say)
    base_dir = ensure_hf(ref, log=say)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    tpl_name, tpl = choose_template(tokenizer, cfg.chat_template)
    data = load_training_data(cfg.data, cfg.data_weights, eval_fraction=cfg.eval_fraction, seed=cfg.seed)
    report = MaskReport()
    train_ex = tokenize_all(tokenizer, data.train, tpl, cfg.seq_len, report)
    eval_ex = tokenize_all(tokenizer, data.eval, tpl, cfg.seq_len)
    if not train_ex:
        raise UserError(f"no trainable examples: {report.summary()}")
    say(f"data: {report.summary()} (template: {tpl_name})")

    model = load_for_training(base_dir, cfg, log=say)
    module = TokenLoss(model)
    optimizer = make_optimizer(module.parameters(), cfg.lr, cfg.weight_decay)
    sched_data = BatchSchedule(train_ex, cfg, pad_id)
    per_step = cfg.grad_accum * acc.num_processes
    steps_per_epoch = max(1, sched_data.per_epoch() // per_step)
    total = cfg.max_steps or cfg.epochs * steps_per_epoch
    scheduler = make_scheduler(optimizer, int(cfg.warmup_ratio * total), total)
    module, optimizer = acc.prepare(module, optimizer)
    eval_batches = [collate(eval_ex, rows, pad_id) for rows in make_batches(eval_ex, cfg.batch_size, 0, 0)]

    start, resumed_from = 0, None
    resumed_loss = resumed_eval = None
    ckpt = latest_checkpoint(out) if cfg.resume else None
    if ckpt is not None:
        meta = load_checkpoint(ckpt, model=acc.unwrap_model(module), optimizer=optimizer, scheduler=scheduler)
        start = resumed_from = int(meta["step"])
        say(f"resumed from {ckpt.name} (step {start}/{total})")
        rows = [r for r in read_jsonl(out / "metrics.jsonl", allow_partial_last_line=True)
                if r.get("step", 0) <= start] if (out / "metrics.jsonl").exists() else []
        if main:  # forget metrics logged after that checkpoint: they are about to be recomputed
            write_jsonl(out / "metrics.jsonl", rows)
        # a run resumed at its last step trains nothing more: report the losses it ended with
        resumed_loss = meta.get("loss")
        resumed_eval = next((r["eval_loss"] for r in reversed(rows) if r.get("eval_loss") is not None), None)
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    say(f"training {cfg.method} on {acc.num_processes} process(es), {acc.device}: {trainable:,} trainable "
        f"parameters, {len(train_ex)} examples, {steps_per_epoch} steps/epoch, {total} steps")

    metrics = JsonlWriter(out / "metrics.jsonl", fsync=False) if main else None
    meter = Throughput()
    pad_total = tok_total = 0
    loss, eval_loss = resumed_loss, resumed_eval
    bar = _bar(total, start) if (progress and main) else None
    try:
        for step in range(start, total):
            g0 = step * per_step
            micro = [sched_data.get(g0 + a * acc.num_processes + acc.process_index) for a in range(cfg.grad_accum)]
            t_step = time.perf_counter()
            res = train_step(module, optimizer, scheduler, micro, accelerator=acc, max_grad_norm=cfg.max_grad_norm)
            loss = _global_mean(acc, res.loss, res.targets)
            meter.add(res.tokens * acc.num_processes)
            pad_total += res.padded - res.tokens
            tok_total += res.padded
            done = step + 1
            row = {"step": done, "loss": round(loss, 6), "lr": scheduler.get_last_lr()[0], "tokens": res.tokens,
                   "targets": res.targets, "grad_norm": round(res.grad_norm, 4), "tok_s": round(meter.rate, 1),
                   "step_s": round(time.perf_counter() - t_step, 4)}
            is_ckpt = done % cfg.save_every == 0 or done == total
            if eval_batches and (is_ckpt or (cfg.eval_every and done % cfg.eval_every == 0)):
                eval_loss = evaluate(module, eval_batches, acc.device)
                row["eval_loss"] = round(eval_loss, 6) if eval_loss is not None else None
            if metrics and (done % cfg.log_every == 0 or "eval_loss" in row):
                metrics.write(row)
            if bar is not None:
                bar[0].update(bar[1], completed=done,
                              info=f"loss {loss:.3f}  {meter.rate:,.0f} tok/s" +
                              (f"  eval {eval_loss:.3f}" if eval_loss is not None else ""))
            if is_ckpt and main:
                save_checkpoint(out, done, model=acc.unwrap_model(module), optimizer=optimizer,
                                scheduler=scheduler, extra={"loss": loss}, keep=cfg.keep_checkpoints)
            acc.wait_for_everyone()
    finally:
        if bar is not None:
            bar[0].stop()
        if metrics:
            metrics.close()
    pad_frac = pad_total / max(1, tok_total)
    result = TrainResult(out, loss, eval_loss, total, out / "metrics.jsonl", meter.tokens,
                         round(time.perf_counter() - meter.t0, 2), round(meter.rate, 1), round(pad_frac, 4),
                         report.to_dict(), resumed_from)
    if main:
        say(f"padding: {pad_frac:.1%} of batch tokens")
        inner = unwrap_causal_lm(acc.unwrap_model(module).model)
        save_trained(acc.unwrap_model(module).model, inner, tokenizer, tpl, out, cfg)
        peft_cfg = getattr(acc.unwrap_model(module).model, "peft_config", {}).get("default")
        targets = sorted(peft_cfg.target_modules) if peft_cfg is not None else None
        write_run_file(out, cfg=cfg, ref=ref, base_dir=base_dir, template=(tpl_name, tpl), data=data,
                       result=result, extra={"target_modules": targets})
        from ownchat.train.plots import plot_losses

        plot_losses(out / "metrics.jsonl", out / "loss.png", title=f"SFT {cfg.method}: {Path(str(cfg.model)).name}")
        say(f"done: loss {_f(loss)}, eval {_f(eval_loss)} -> {out}")
    acc.wait_for_everyone()
    return result


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def _global_mean(acc, local_mean: float, n: int) -> float:
    if acc.num_processes == 1:
        return local_mean
    t = torch.tensor([local_mean * n, float(n)], device=acc.device)
    t = acc.reduce(t, reduction="sum")
    return float(t[0] / max(1.0, float(t[1])))


def _bar(total: int, start: int):
    from ownchat.cli.common import progress

    p = progress("training", extra="info")
    task = p.add_task("training", total=total, completed=start, info="")
    p.start()
    return p, task


def _prepare_out_dir(out: Path, cfg: SFTConfig, main: bool) -> None:
    """A fresh run refuses to overwrite an earlier one; a resume refuses a changed config."""
    saved = out / "train_config.json"
    if not main:
        return
    if cfg.resume and saved.exists():
        old = json.loads(saved.read_text())
        new = cfg.to_dict()
        diff = [k for k in _ORDER_KEYS if old.get(k) != new.get(k)]
        if diff:
            raise UserError(f"{out}: cannot resume with a changed config ({', '.join(diff)} differ). "
                            "Resume with the original options, or start a new --out.")
        return
    if out.exists() and any(out.iterdir()) and not cfg.resume:
        if (out / "checkpoints").exists() or (out / "ownchat_run.json").exists():
            raise UserError(f"{out} already holds a training run: pass --resume to continue it, "
                            "or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("metrics.jsonl",):
        if (out / stale).exists() and not cfg.resume:
            (out / stale).unlink()
    if (out / "checkpoints").exists() and not cfg.resume:
        shutil.rmtree(out / "checkpoints")
    saved.write_text(json.dumps(cfg.to_dict(), indent=2))

