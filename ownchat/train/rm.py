"""A reward model from the same preference pairs: base + LoRA + a scalar head, Bradley–Terry loss.

The loss -log σ(r(chosen) − r(rejected)) only fixes *differences* of rewards, which is all
best-of-N reranking needs. The reward is read at the last token of the left-padded row (the
answer's end-of-turn marker), computed from the model's final hidden state by the ``score`` head
that transformers' ``*ForSequenceClassification`` adds; PEFT trains that head in full alongside the
LoRA matrices (``task_type=SEQ_CLS``).

``RewardModel.load(run_dir)`` gives a scorer for ``BestOfNEngine``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ownchat.data.jsonl import JsonlWriter, write_jsonl
from ownchat.engines.base import Message
from ownchat.errors import UserError
from ownchat.models.identity import file_identity
from ownchat.models.resolve import RUN_FILE
from ownchat.train.pref_common import (
    Checkpoints,
    PrefTrainConfig,
    device_and_dtype,
    finish_step,
    lora_config,
    pick_template,
    prepare_pairs,
    resolve_start,
    seed_all,
    write_run,
)
from ownchat.train.pref_data import collate, render


@dataclass
class RMConfig(PrefTrainConfig):
    lr: float = 1e-4
    center_coef: float = 0.0  # pulls rewards towards 0 so scores stay comparable across prompts


@dataclass
class RMResult:
    out: str
    steps: int
    pairs: int
    final_loss: float | None
    final: dict[str, float]
    resumed_from: int = 0
    seconds: float = 0.0
    plot: str | None = None
    usage: dict[str, float] = field(default_factory=dict)  # stage contract: local training sends nothing
    hosts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rewards(model: Any, batch: dict[str, Any]) -> Any:
    """One scalar per row: the score head on the last position's final hidden state."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    body = getattr(inner, inner.base_model_prefix)
    hidden = body(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                  position_ids=batch["position_ids"], use_cache=False).last_hidden_state
    return inner.score(hidden[:, -1, :]).squeeze(-1).float()


def _load(base_dir: Path, dtype: Any, pad_id: int, cfg: PrefTrainConfig | None, adapter: Path | None,
          trainable: bool) -> Any:
    from peft import PeftModel, get_peft_model
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(base_dir, num_labels=1, dtype=dtype)
    model.config.pad_token_id = pad_id
    if adapter is not None:
        return PeftModel.from_pretrained(model, str(adapter), is_trainable=trainable)
    assert cfg is not None
    return get_peft_model(model, lora_config(cfg, "SEQ_CLS", model))


def train_rm(cfg: RMConfig, log: Callable[[str], None] = print,
             on_step: Callable[[dict[str, Any], int], None] | None = None) -> RMResult:
    """Train (or resume) a reward model into ``cfg.out`` (a run dir with ``task: reward``)."""
    import torch
    import torch.nn.functional as F
    from transformers import get_linear_schedule_with_warmup

    if cfg.batch_size < 1 or cfg.grad_accum < 1:
        raise UserError("--batch-size and --grad-accum must be >= 1")
    t0 = time.time()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    seed_all(cfg.seed)
    # --adapter (an SFT run) only picks base and template here: a classifier cannot reuse LM adapters
    start = resolve_start(cfg.model, cfg.adapter, cfg.chat_template, log=log)
    start.adapter = None
    data = prepare_pairs(cfg, start)
    tok, pad_id, jinja, run_template = data.tokenizer, data.pad_id, data.jinja, data.run_template
    pairs, enc, total, order = data.pairs, data.encoded, data.total_steps, data.order
    ckpts = Checkpoints(out)
    latest = ckpts.latest()
    device, dtype = device_and_dtype()
    model = _load(start.base_dir, dtype, pad_id, cfg, latest / "adapter" if latest else None, True)
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    sched = get_linear_schedule_with_warmup(opt, int(cfg.warmup_ratio * total), total)
    step, history = 0, []
    if latest is not None:
        state = ckpts.restore(latest, opt, sched)
        step, history = state["step"], state["history"]
        log(f"resuming reward model from {latest.name} ({step}/{total} steps)")
    resumed_from = step
    write_jsonl(out / "metrics.jsonl", history)
    log(f"reward model: {len(pairs)} pairs, {total} steps of {cfg.batch_size}x{cfg.grad_accum}, {device}")
    with JsonlWriter(out / "metrics.jsonl") as metrics:
        while step < total:
            ts = time.time()
            opt.zero_grad(set_to_none=True)
            acc = {"loss": 0.0, "reward_chosen": 0.0, "reward_rejected": 0.0, "accuracy": 0.0}
            for micro in range(cfg.grad_accum):
                idx = order[step * cfg.grad_accum + micro]
                batch = collate([enc[i].chosen for i in idx] + [enc[i].rejected for i in idx], pad_id)
                batch = {k: (v.to(device) if hasattr(v, "to") else v) for k, v in batch.items()}
                r = rewards(model, batch)
                rc, rr = r[:len(idx)], r[len(idx):]
                loss = -F.logsigmoid(rc - rr) + cfg.center_coef * (rc + rr) ** 2
                (loss.mean() / cfg.grad_accum).backward()
                for key, val in (("loss", loss.detach()), ("reward_chosen", rc.detach()),
                                 ("reward_rejected", rr.detach()), ("accuracy", (rc > rr).float())):
                    acc[key] += float(val.mean()) / cfg.grad_accum
            step = finish_step(step=step, total=total, acc=acc, started=ts, params=params, opt=opt,
                               sched=sched, model=model, ckpts=ckpts, cfg=cfg, history=history,
                               metrics=metrics, on_step=on_step)
    final_loss = history[-1]["loss"] if history else None
    write_run(out, model, start, stage="rm", template=(jinja, run_template), tokenizer=tok,
              data=[str(cfg.data)], final_loss=final_loss, steps=total, cfg=cfg,
              extra={"task": "reward", "seq_len": cfg.seq_len})
    plot = None
    try:
        from ownchat.train.pref_plots import plot_pref_curves

        plot = str(plot_pref_curves(history, out / "rm_curves.png", title="reward model (Bradley–Terry)"))
    except Exception as exc:  # noqa: BLE001 - a failed plot must not lose a finished run
        log(f"could not draw curves: {exc}")
    final = {k: v for k, v in (history[-1] if history else {}).items() if k not in ("step", "seconds")}
    log(f"reward model done: loss {final_loss}, accuracy {final.get('accuracy')} -> {out}")
    return RMResult(str(out), total, len(pairs), final_loss, final, resumed_from, round(time.time() - t0, 1), plot)


class RewardModel:
    """A trained reward-model run, ready to score answers: ``score(prompt_messages, answers)``."""

    def __init__(self, run_dir: str | Path, batch_size: int = 8, log: Callable[[str], None] = print) -> None:
        import torch
        from transformers import AutoTokenizer

        run_dir = Path(run_dir)
        meta_path = run_dir / RUN_FILE
        if not meta_path.exists():
            raise UserError(f"{run_dir} is not a training run (no {RUN_FILE})")
        meta = json.loads(meta_path.read_text())
        if meta.get("task") != "reward":
            raise UserError(f"{run_dir} is not a reward model (train one with `ownchat train rm`)")
        start = resolve_start(meta["base"], None, meta.get("chat_template"), log=log)
        self.tokenizer = AutoTokenizer.from_pretrained(start.base_dir)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None \
            else self.tokenizer.eos_token_id
        self.template, _ = pick_template(self.tokenizer, start.template)
        self.device, dtype = device_and_dtype()
        self.model = _load(start.base_dir, dtype, self.pad_id, None, run_dir / meta["adapter"], False)
        self.model.to(self.device).eval()
        self.seq_len = int(meta.get("seq_len", 1024))
        self.batch_size = batch_size
        self.model_id = "rm:" + file_identity(run_dir / meta["adapter"])
        self._torch = torch

    def score(self, prompt: Sequence[Message], answers: Sequence[str]) -> list[float]:
        """Rewards for several answers to one prompt (higher is better; only differences mean anything)."""
        rows = [render(self.tokenizer, self.template, list(prompt), a, self.seq_len) for a in answers]
        outs: list[float] = []
        with self._torch.no_grad():
            for i in range(0, len(rows), self.batch_size):
                batch = collate(rows[i:i + self.batch_size], self.pad_id)
                batch = {k: (v.to(self.device) if hasattr(v, "to") else v) for k, v in batch.items()}
                outs += rewards(self.model, batch).tolist()
        return outs
