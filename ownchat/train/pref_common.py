"""What DPO and reward-model training share: the base + LoRA model, checkpoints, the run directory.

Checkpoints hold the adapter, the optimizer and scheduler state, the RNG state and the metric
history; each is written to a temporary folder and renamed into place, so ``kill -9`` at any moment
leaves either the previous checkpoint or the new one, never half of one. Data order is a pure
function of (seed, epoch), so a resumed run sees exactly the batches the dead one would have.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ownchat.errors import UserError
from ownchat.models.resolve import RUN_FILE


@dataclass
class PrefTrainConfig:
    """Flags shared with ``train sft``; DPO and RM subclass it with their own knobs."""

    model: str
    data: Path
    out: Path
    adapter: Path | None = None  # an SFT run (or adapter folder) to continue training
    max_steps: int | None = None  # None: run ``epochs`` over the pairs
    epochs: float = 1.0
    lr: float = 5e-5
    batch_size: int = 4
    grad_accum: int = 1
    seq_len: int = 512
    lora_r: int = 8
    lora_alpha: int | None = None  # default 2 * r
    lora_dropout: float = 0.0
    warmup_ratio: float = 0.1
    seed: int = 0
    save_every: int = 50
    chat_template: str | None = None
    gradient_checkpointing: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


@dataclass
class Start:
    """Where a run starts: base model, license, template, and the SFT adapter to continue (if any)."""

    base: str  # reference recorded in ownchat_run.json
    base_dir: Path
    license: str
    template: str | None  # name or Jinja asked for (flag or SFT run); None: decide from the tokenizer
    adapter: Path | None


def resolve_start(model: str, adapter: Path | None, template: str | None, log=print) -> Start:
    """``--model`` may itself be an SFT run; ``--adapter`` may be a run dir or a bare adapter folder."""
    from ownchat.models.resolve import ensure_hf, resolve

    ref = resolve(model, log=log)
    base = ref.meta.get("base", model) if ref.meta else model
    adapter_dir = ref.adapter
    if adapter is not None:
        adapter = Path(adapter)
        if (adapter / RUN_FILE).exists():
            meta = json.loads((adapter / RUN_FILE).read_text())
            if not meta.get("adapter"):
                raise UserError(f"{adapter} has no adapter to continue (merged run?): pass it as --model")
            adapter_dir = adapter / meta["adapter"]
            template = template or meta.get("chat_template")
        elif (adapter / "adapter_config.json").exists():
            adapter_dir = adapter
        else:
            raise UserError(f"{adapter} is neither a training run (ownchat_run.json) nor a PEFT adapter folder")
    template = template or ref.chat_template
    base_dir = ensure_hf(base, log=log) if ref.adapter or ref.kind == "gguf" else ref.path
    return Start(base, base_dir, ref.license, template, adapter_dir)


def pick_template(tokenizer: Any, requested: str | None) -> tuple[str | None, str | None]:
    """(Jinja to render with, value for the run's ``chat_template``); both None = the tokenizer's own."""
    from ownchat.train.templates import choose_template

    name, jinja = choose_template(tokenizer, requested)
    if name == "model":
        return None, None
    return jinja, (name if name != "custom" else jinja)


def device_and_dtype() -> tuple[str, Any]:
    import torch

    if torch.cuda.is_available():
        return "cuda", torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return "cpu", torch.float32  # bf16 matmuls are slow on most CPUs


def lora_config(cfg: PrefTrainConfig, task: str, model: Any) -> Any:
    """Same targets as ``train sft`` (per-architecture table, never the output head)."""
    from peft import LoraConfig

    from ownchat.train.lora import detect_target_modules

    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha or 2 * cfg.lora_r, lora_dropout=cfg.lora_dropout,
                      target_modules=detect_target_modules(model), bias="none", task_type=task)


def seed_all(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def batch_order(n: int, batch_size: int, seed: int, steps: int) -> list[list[int]]:
    """Indices for ``steps`` micro-batches: a fresh permutation per epoch, fixed by (seed, epoch)."""
    import torch

    batches: list[list[int]] = []
    epoch = 0
    while len(batches) < steps:
        g = torch.Generator().manual_seed(seed * 1000 + epoch)
        perm = torch.randperm(n, generator=g).tolist()
        batches += [perm[i:i + batch_size] for i in range(0, n, batch_size)]
        epoch += 1
    return batches[:steps]


class Checkpoints:
    """``out/checkpoints/step-NNNNNN``: adapter/, trainer.pt (optimizer, scheduler, RNG), state.json."""

    def __init__(self, out: Path, keep: int = 2) -> None:
        self.root = Path(out) / "checkpoints"
        self.keep = keep

    def latest(self) -> Path | None:
        done = sorted(p for p in self.root.glob("step-*") if (p / "state.json").exists())
        return done[-1] if done else None

    def save(self, step: int, model: Any, optimizer: Any, scheduler: Any, state: dict[str, Any]) -> Path:
        import torch

        final = self.root / f"step-{step:06d}"
        tmp = self.root / f".tmp-step-{step:06d}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        model.save_pretrained(tmp / "adapter", selected_adapters=["default"])
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "rng": torch.get_rng_state(), "py_rng": random.getstate()}, tmp / "trainer.pt")
        (tmp / "state.json").write_text(json.dumps({**state, "step": step, "time": time.time()}))
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for old in sorted(p for p in self.root.glob("step-*") if p != final)[:-max(0, self.keep - 1) or None]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def restore(self, ckpt: Path, optimizer: Any, scheduler: Any) -> dict[str, Any]:
        import torch

        blob = torch.load(ckpt / "trainer.pt", weights_only=False)
        optimizer.load_state_dict(blob["optimizer"])
        scheduler.load_state_dict(blob["scheduler"])
        torch.set_rng_state(blob["rng"])
        random.setstate(blob["py_rng"])
        return json.loads((ckpt / "state.json").read_text())


def write_run(out: Path, model: Any, start: Start, *, stage: str, template: tuple[str | None, str | None],
              tokenizer: Any, data: list[str], final_loss: float | None, steps: int, cfg: PrefTrainConfig,
              extra: dict[str, Any]) -> None:
    """The final adapter and ``ownchat_run.json`` (same keys as ``train sft``), so ``load_engine(out)``
    serves the result. ``template`` is ``pick_template``'s (jinja, run value)."""
    from ownchat.licensing import lookup

    out = Path(out)
    tmp = out / ".adapter.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, selected_adapters=["default"])
    shutil.rmtree(out / "adapter", ignore_errors=True)
    tmp.rename(out / "adapter")
    base = start.base
    if Path(base).expanduser().exists():  # a local path must survive the run directory moving
        base = str(Path(base).expanduser().resolve())
    jinja, value = template
    terms = lookup(start.license)
    meta = {"stage": stage, "base": base, "base_hf_dir": str(start.base_dir), "adapter": "adapter", "merged": None,
            "chat_template": value, "chat_template_name": value if value and len(value) < 40 else
            ("model" if value is None else "custom"),
            "chat_template_jinja": jinja or getattr(tokenizer, "chat_template", None),
            "license": start.license,
            "license_terms": {"key": terms.key, "commercial": terms.commercial, "note": terms.note},
            "data": data, "method": "lora", "hyperparameters": cfg.to_dict(), "final_loss": final_loss,
            "steps": steps, "parent_adapter": str(start.adapter) if start.adapter else None,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **extra}
    tmp_meta = out / (RUN_FILE + ".tmp")
    tmp_meta.write_text(json.dumps(meta, indent=2, default=str))
    tmp_meta.replace(out / RUN_FILE)


def finish_step(*, step: int, total: int, acc: dict[str, float], started: float, params: list[Any], opt: Any,
                sched: Any, model: Any, ckpts: Any, cfg: Any, history: list[dict], metrics: Any,
                on_step: Any) -> int:
    """The end of one optimiser step, shared by DPO and the reward model: clip, step, record, checkpoint."""
    import torch

    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    sched.step()
    step += 1
    rec = {"step": step, **{k: round(v, 5) for k, v in acc.items()},
           "margin": round(acc["reward_chosen"] - acc["reward_rejected"], 5),
           "lr": sched.get_last_lr()[0], "seconds": round(time.time() - started, 2)}
    history.append(rec)
    metrics.write(rec)
    if on_step:
        on_step(rec, total)
    if step % cfg.save_every == 0 or step == total:
        ckpts.save(step, model, opt, sched, {"history": history, "config": cfg.to_dict()})
    return step


@dataclass
class PairData:
    """Tokenizer, template and encoded pairs: what DPO and the reward model both start from."""

    tokenizer: Any
    pad_id: int
    jinja: str | None
    run_template: str | None
    pairs: list
    encoded: list
    total_steps: int
    order: list[list[int]]


def prepare_pairs(cfg: Any, start: Start) -> PairData:
    import math

    from transformers import AutoTokenizer

    from ownchat.train.pref_data import encode_pairs, load_pairs

    tok = AutoTokenizer.from_pretrained(start.base_dir)
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    jinja, run_template = pick_template(tok, start.template)
    pairs = load_pairs(cfg.data)
    enc = encode_pairs(tok, jinja, pairs, cfg.seq_len)
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * len(pairs) / (cfg.batch_size * cfg.grad_accum)))
    order = batch_order(len(pairs), cfg.batch_size, cfg.seed, total * cfg.grad_accum)
    return PairData(tok, pad_id, jinja, run_template, pairs, enc, total, order)
