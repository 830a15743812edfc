"""The SFT stage: LoRA/full fine-tuning on the data stage's training set, in process or under
``accelerate launch``. The trainer writes into ``<stage dir>/model`` with resume on, so a killed stage
continues from its last checkpoint when the runner calls it again.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from ownchat.errors import UserError
from ownchat.recipe.plan import Estimate, Speeds, Stage, StageContext, StageResult
from ownchat.recipe.schema import Recipe, Student
from ownchat.recipe.stages.common import bar, model_identity, recipe_labels


class SFTStage(Stage):
    kind = "sft"
    version = 2  # v2: a chat is led by BOS when the tokenizer adds one (gemma taught ChatML)

    def __init__(self, recipe: Recipe, student: Student, deps: tuple[str, ...], n_examples: int) -> None:
        super().__init__(f"sft:{student.name}", deps)
        self.r, self.student, self.sec, self.n = recipe, student, recipe.sft, n_examples

    def settings(self) -> dict[str, Any]:
        return {"base": model_identity(self.student.base), "chat_template": self.student.chat_template,
                "seed": self.r.seed, **self.sec.model_dump()}

    def input_files(self) -> list[Path]:
        return [self.r.resolve_path(self.sec.accelerate)] if self.sec.accelerate else []

    def steps(self) -> int:
        s = self.sec
        per_epoch = max(1, -(-self.n // (s.batch_size * s.grad_accum)))
        return s.max_steps or per_epoch * s.epochs

    def estimate(self, speeds: Speeds) -> Estimate:
        s = self.sec
        tps, measured = speeds.get("train", self.student.base)
        procs = self.processes()
        tokens = self.steps() * s.batch_size * s.grad_accum * s.seq_len
        return Estimate(tokens / (tps * procs) + 20,
                        note=f"{self.steps():,} steps of {s.batch_size}x{s.grad_accum}x{s.seq_len} @ "
                        f"{tps:,.0f} tok/s" + (f" x {procs} GPUs" if procs > 1 else "")
                        + (", measured" if measured else ""))

    def processes(self) -> int:
        """Processes ``accelerate launch`` will start (from the recipe's accelerate config), else 1."""
        if not self.sec.accelerate:
            return 1
        import yaml

        try:
            cfg = yaml.safe_load(self.r.resolve_path(self.sec.accelerate).read_text()) or {}
            return max(1, int(cfg.get("num_processes", 1)))
        except (OSError, ValueError, yaml.YAMLError):
            return 1

    def run(self, ctx: StageContext) -> StageResult:
        return run_sft_stage(self, ctx)


def run_sft_stage(stage, ctx: StageContext) -> StageResult:
    from ownchat.train.config import SFTConfig

    s, st = stage.sec, stage.student
    out = ctx.dir / "model"
    save_every = max(10, min(50, stage.steps() // 4))
    cfg = SFTConfig(model=st.base, data=[ctx.dep_path("data", "train")], out=out, epochs=s.epochs,
                    max_steps=s.max_steps, lr=s.lr, batch_size=s.batch_size, grad_accum=s.grad_accum,
                    seq_len=s.seq_len, lora_r=s.lora_r, lora_alpha=s.lora_alpha or 2 * s.lora_r,
                    lora_dropout=s.lora_dropout, seed=stage.r.seed, chat_template=st.chat_template,
                    save_every=save_every, resume=True, **s.options)
    recipe_labels(cfg, "sft", s.options)
    if s.accelerate:
        res = _launch_accelerate(cfg.validate(), stage.r.resolve_path(s.accelerate), ctx)
    else:
        from ownchat.train.sft import train_sft

        tick = bar(ctx, f"SFT {st.name}")
        res = train_sft(cfg, log=ctx.log, on_step=lambda row, total: tick(row["step"], total)).to_dict()
    steps = int(res.get("steps") or 0)
    seconds = float(res.get("seconds") or 0)
    nominal = steps * s.batch_size * s.grad_accum * s.seq_len
    images = {}
    if (out / "loss.png").exists():
        images[f"SFT loss: {st.name}"] = ctx.rel(out / "loss.png")
    summary = {k: res.get(k) for k in ("final_loss", "eval_loss", "steps", "tokens", "tokens_per_second",
                                       "padding_fraction", "resumed_from") if res.get(k) is not None}
    return StageResult(summary=summary, artifacts={"model": ctx.rel(out)}, images=images, raw=res,
                       speeds={f"train:{st.base}": nominal / seconds} if seconds > 5 and steps else {})


def _launch_accelerate(cfg, acc_config: Path, ctx: StageContext) -> dict[str, Any]:
    """Multi-GPU/multi-node: the same trainer under ``accelerate launch`` with the recipe's config file."""
    import yaml

    cfg_file = ctx.dir / "sft_config.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(acc_config),
           "-m", "ownchat.cli.main", "train", "sft", "--config", str(cfg_file), "--resume"]
    ctx.log("launching: " + " ".join(cmd))
    rc = subprocess.run(cmd).returncode
    if rc != 0:
        raise UserError(f"accelerate launch failed with exit status {rc}; see the output above "
                        f"(config: {acc_config})")
    from ownchat.train.runfile import read_run_file

    meta = read_run_file(cfg.out)
    return meta.get("result") or {"final_loss": meta.get("final_loss"), "steps": meta.get("steps")}
