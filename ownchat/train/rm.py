"""A reward model from the same preference pairs: base + LoRA + a scalar head, Bradley–Terry loss.

The loss -log σ(r(chosen) − r(rejected)) only fixes *differences* of rewards, which is all
best-of-N reranking needs. The reward is read at the last token of the left-padded row (the
answer's end-of-turn marker), computed from the model's final hidden state by the ``score`` head
that transformers' ``*ForSequenceClassification`` adds; PEFT trains that head in full alongside the
LoRA matrices (``task_type=SEQ_CLS``). The loop, checkpoints, ``accelerate launch`` and the run file
are the shared trainer's (``trainer.fit``).

``RewardModel(run_dir)`` gives a scorer for ``BestOfNEngine``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from ownchat.engines.base import Message
from ownchat.errors import UserError
from ownchat.models.identity import file_identity
from ownchat.train.config import PrefTrainConfig
from ownchat.train.loop import StepCallback
from ownchat.train.model import Start, add_adapter, load_base, pick_dtype, resolve_start
from ownchat.train.pref_data import PairObjective, PrefResult, collate, render
from ownchat.train.trainer import fit


@dataclass
class RMConfig(PrefTrainConfig):
    lr: float = 1e-4
    center_coef: float = 0.0  # pulls rewards towards 0 so scores stay comparable across prompts

    ORDER_KEYS: ClassVar[tuple[str, ...]] = (*PrefTrainConfig.ORDER_KEYS, "center_coef")
    FLAGS: ClassVar[dict[str, str]] = {"center_coef": "--center"}

    def problems(self) -> list[tuple[str, str]]:
        errs = super().problems()
        if not isinstance(self.center_coef, (int, float)) or self.center_coef < 0:
            errs.append(("center_coef", f"must be a number >= 0, got {self.center_coef!r}"))
        return errs


class RMResult(PrefResult):
    pass


def rewards(model: Any, batch: dict[str, Any]) -> Any:
    """One scalar per row: the score head on the last position's final hidden state."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    body = getattr(inner, inner.base_model_prefix)
    hidden = body(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                  position_ids=batch["position_ids"], use_cache=False).last_hidden_state
    return inner.score(hidden[:, -1, :]).squeeze(-1).float()


class BradleyTerry(torch.nn.Module):
    """``forward(batch of n chosen + n rejected rows) -> (summed pair loss, n, reward/accuracy sums)``."""

    def __init__(self, model: Any, center_coef: float) -> None:
        super().__init__()
        self.model, self.center_coef = model, center_coef

    def forward(self, input_ids, targets=None, position_ids=None, attention_mask=None):
        import torch.nn.functional as F

        r = rewards(self.model, {"input_ids": input_ids, "attention_mask": attention_mask,
                                 "position_ids": position_ids})
        n = input_ids.shape[0] // 2
        rc, rr = r[:n], r[n:]
        loss = -F.logsigmoid(rc - rr) + self.center_coef * (rc + rr) ** 2
        sums = {"reward_chosen": rc.detach().sum(), "reward_rejected": rr.detach().sum(),
                "accuracy": (rc > rr).float().sum()}
        return loss.sum(), n, sums


class RewardObjective(PairObjective):
    """The reward-model objective for ``trainer.fit``."""

    stage = "rm"
    curves = "rm_curves.png"

    def start(self, cfg: RMConfig, log) -> Start:
        start = super().start(cfg, log)
        start.adapter = None  # --adapter (an SFT run) only picks base and template: a classifier cannot reuse LM adapters
        return start

    def build(self, cfg: RMConfig, start: Start, pad_id: int, log) -> BradleyTerry:
        model = add_adapter(load_base(start.base_dir, cfg, reward_head=True, pad_id=pad_id), cfg, task="SEQ_CLS")
        return BradleyTerry(model, cfg.center_coef)

    def describe(self) -> str:
        return f"reward model (Bradley-Terry) on {self.pairs} pairs"

    def title(self) -> str:
        return "reward model (Bradley–Terry)"

    def result(self, f: Any, log) -> RMResult:
        final, fields = self.final(f)
        log(f"reward model done: loss {fields['final_loss']}, accuracy {final.get('accuracy')} -> {f.out}")
        return RMResult(**fields)

    def run_extra(self) -> dict[str, Any]:
        return {"task": "reward", "seq_len": self.cfg.seq_len}


def train_rm(cfg: RMConfig, log: Callable[[str], None] = print, on_step: StepCallback | None = None) -> RMResult:
    """Train (or resume) a reward model into ``cfg.out`` (a run dir with ``task: reward``)."""
    return fit(cfg, RewardObjective(cfg), log=log, on_step=on_step)


class RewardModel:
    """A trained reward-model run, ready to score answers: ``score(prompt_messages, answers)``."""

    def __init__(self, run_dir: str | Path, batch_size: int = 8, log: Callable[[str], None] = print) -> None:
        from peft import PeftModel
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from ownchat.train.runfile import read_run_file
        from ownchat.train.templates import choose_template

        run_dir = Path(run_dir)
        meta = read_run_file(run_dir)
        if meta.get("task") != "reward":
            raise UserError(f"{run_dir} is not a reward model (train one with `ownchat train rm`)")
        start = resolve_start(meta["base"], None, meta.get("chat_template"), log=log)
        self.tokenizer = AutoTokenizer.from_pretrained(start.base_dir)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None \
            else self.tokenizer.eos_token_id
        self.template = choose_template(self.tokenizer, start.template)[1]
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        base = AutoModelForSequenceClassification.from_pretrained(start.base_dir, num_labels=1,
                                                                  dtype=pick_dtype("auto"))
        base.config.pad_token_id = self.pad_id
        self.model = PeftModel.from_pretrained(base, str(run_dir / meta["adapter"])).to(self.device).eval()
        self.seq_len = int(meta.get("seq_len", 1024))
        self.batch_size = batch_size
        self.model_id = "rm:" + file_identity(run_dir / meta["adapter"])

    def score(self, prompt: Sequence[Message], answers: Sequence[str]) -> list[float]:
        """Rewards for several answers to one prompt (higher is better; only differences mean anything)."""
        rows = [render(self.tokenizer, self.template, list(prompt), a, self.seq_len) for a in answers]
        outs: list[float] = []
        with torch.no_grad():
            for i in range(0, len(rows), self.batch_size):
                batch = collate(rows[i:i + self.batch_size], self.pad_id)
                batch = {k: v.to(self.device) for k, v in batch.items()}
                outs += rewards(self.model, batch).tolist()
        return outs
