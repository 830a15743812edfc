"""Supervised fine-tuning: ``train_sft(SFTConfig(...)) -> TrainResult``.

Data -> per-message loss masks (``render.py``) -> low-padding batches (``collate.py``) -> the shared
trainer (``trainer.fit``) with the token loss (``token_loss.TokenLoss``): the mean negative
log-likelihood of the assistant tokens, the LM head computed only there. The run directory
(``trainer.py`` lists it) is a model reference for ``resolve``/``load_engine`` and ``ownchat export``;
``out/loss.png`` plots the train and held-out losses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ownchat.errors import UserError
from ownchat.train.collate import collate, make_batches, tokenize_all
from ownchat.train.config import SFTConfig, TrainResult
from ownchat.train.data import load_training_data
from ownchat.train.loop import Schedule, StepCallback
from ownchat.train.model import Start, load_for_training, resolve_start
from ownchat.train.render import MaskReport
from ownchat.train.trainer import METRICS, Fit, TrainingData, fit

__all__ = ["SFTConfig", "TrainResult", "train_sft"]


class SFT:
    """The SFT objective for ``trainer.fit``."""

    stage = "sft"
    count_key = "targets"

    def __init__(self, cfg: SFTConfig) -> None:
        self.cfg = cfg
        self.report = MaskReport()

    def start(self, cfg: SFTConfig, log) -> Start:
        start = resolve_start(cfg.model, None, cfg.chat_template, log=log)
        start.adapter = None  # SFT trains a fresh adapter, even on top of an earlier run's base
        return start

    def data(self, cfg: SFTConfig, tokenizer: Any, template: str, pad_id: int, log) -> TrainingData:
        data = load_training_data(cfg.data, cfg.data_weights, eval_fraction=cfg.eval_fraction, seed=cfg.seed)
        train = tokenize_all(tokenizer, data.train, template, cfg.seq_len, self.report)
        held = tokenize_all(tokenizer, data.eval, template, cfg.seq_len)
        if not train:
            raise UserError(f"no trainable examples: {self.report.summary()}")
        log(f"data: {self.report.summary()}")
        schedule = Schedule(lambda e: make_batches(train, cfg.batch_size, cfg.seed, e, packing=cfg.packing,
                                                   seq_len=cfg.seq_len),
                            lambda rows: [collate(train, rows, pad_id)])
        evals = [collate(held, rows, pad_id) for rows in make_batches(held, cfg.batch_size, 0, 0)]
        return TrainingData(schedule, len(train), [f.to_dict() for f in data.files], evals)

    def build(self, cfg: SFTConfig, start: Start, pad_id: int, log):
        from ownchat.train.token_loss import TokenLoss

        return TokenLoss(load_for_training(start.base_dir, cfg, log=log))

    def derive(self, row: dict[str, Any]) -> None:
        pass

    def describe(self) -> str:
        return f"SFT {self.cfg.method}"

    def plot(self, out: Path, rows: list[dict[str, Any]]) -> Path | None:
        from ownchat.train.plots import plot_losses

        return plot_losses(out / METRICS, out / "loss.png", title=f"SFT {self.cfg.method}: {Path(str(self.cfg.model)).name}")

    def result(self, f: Fit, log) -> TrainResult:
        end = f.end
        res = TrainResult(f.out, f.last.get("loss"), f.eval_loss, f.steps, f.out / METRICS,
                          end.tokens if end else 0, end.seconds if end else 0.0, end.rate if end else 0.0,
                          end.padding_fraction if end else 0.0, self.report.to_dict(), f.resumed_from)
        log(f"done: loss {_f(res.final_loss)}, eval {_f(res.eval_loss)} -> {f.out}")
        return res

    def run_extra(self) -> dict[str, Any]:
        return {}


def train_sft(cfg: SFTConfig, log=print, *, on_step: StepCallback | None = None) -> TrainResult:
    """Train (or, with ``cfg.resume``, continue) an SFT run; ``on_step(row, total_steps)`` after each step."""
    return fit(cfg, SFT(cfg), log=log, on_step=on_step)


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"
