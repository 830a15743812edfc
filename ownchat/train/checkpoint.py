"""Checkpoints that make a resumed run continue exactly where a ``kill -9`` struck: SFT, DPO and RM alike.

A checkpoint holds the trainable weights, optimizer and scheduler state, every RNG state (Python,
NumPy, torch CPU and CUDA) and the step counter. The batch order is a pure function of
(seed, epoch), so the step counter alone says which batch comes next. Each checkpoint is written
into a temporary directory and renamed into place: a crash mid-save leaves the previous one intact.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ownchat.errors import UserError

CKPT_DIR = "checkpoints"


def trainable_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: Path, step: int, *, model, optimizer, scheduler, extra: dict[str, Any],
                    keep: int = 2) -> Path:
    """Write ``checkpoints/step-NNNNNN`` atomically; keep the newest ``keep`` of them."""
    from safetensors.torch import save_file

    root = Path(run_dir) / CKPT_DIR
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:06d}"
    tmp = root / f".tmp-step-{step:06d}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_file({k: v.contiguous() for k, v in trainable_state(model).items()}, str(tmp / "trainable.safetensors"))
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_state()},
               tmp / "state.pt")
    (tmp / "meta.json").write_text(json.dumps({"step": step, **extra}, indent=2))
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    for old in sorted(root.glob("step-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: Path) -> Path | None:
    root = Path(run_dir) / CKPT_DIR
    done = sorted(p for p in root.glob("step-*") if (p / "meta.json").exists()) if root.exists() else []
    if not done and root.exists() and any((p / "state.json").exists() for p in root.glob("step-*")):
        # DPO / reward-model runs of earlier versions kept adapter/ + trainer.pt + state.json
        raise UserError(f"{root} holds checkpoints of an earlier ownchat version, which cannot be resumed "
                        "exactly: start the run again with another --out")
    return done[-1] if done else None


def load_checkpoint(path: Path, *, model, optimizer, scheduler) -> dict[str, Any]:
    """Restore weights, optimizer, scheduler and RNG; returns the meta (``step`` ...)."""
    from safetensors.torch import load_file

    weights = load_file(str(path / "trainable.safetensors"))
    params = dict(model.named_parameters())
    missing = [k for k in weights if k not in params]
    if missing:
        raise RuntimeError(f"checkpoint {path} does not match the model (e.g. {missing[0]})")
    with torch.no_grad():
        for k, v in weights.items():
            params[k].copy_(v.to(params[k].device, params[k].dtype))
    state = torch.load(path / "state.pt", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    return json.loads((path / "meta.json").read_text())
