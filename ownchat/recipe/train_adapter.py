"""Calling the training-side stage APIs: SFT (in process or under ``accelerate launch``), DPO, LMSI, export.

Every trainer writes into ``<stage dir>/model`` with resume on, so a killed stage continues from its
last checkpoint when the runner calls it again.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from ownchat.errors import UserError
from ownchat.recipe.plan import StageContext, StageResult


def _model_dir(ctx: StageContext, stage: str | None, fallback: str) -> str:
    """The model a stage starts from: an upstream stage's trained run, or the base reference."""
    if stage is None:
        return fallback
    return str(ctx.dep_path(stage, "model"))


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
    _recipe_labels(cfg, "sft", s.options)
    if s.accelerate:
        res = _launch_accelerate(cfg.validate(), stage.r.resolve_path(s.accelerate), ctx)
    else:
        from ownchat.recipe.stages_eval import stage_bar
        from ownchat.train.sft import train_sft

        with stage_bar(f"SFT {st.name}") as tick:
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


def _recipe_labels(cfg, section: str, options: dict[str, Any]) -> None:
    """A bad value is reported as the recipe names it (``dpo.options.label_smoothing``), not as a flag."""
    from dataclasses import fields

    cfg.given_as({f.name: f"recipe {section}." + ("options." if f.name in options else "") + f.name
                  for f in fields(cfg)})


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


def run_dpo_stage(stage, ctx: StageContext) -> StageResult:
    from ownchat.train.dpo import DPOConfig, train_dpo

    s, st = stage.sec, stage.student
    out = ctx.dir / "model"
    sft_run = ctx.dep_path(stage.sft_stage, "model")
    cfg = DPOConfig(model=str(sft_run), adapter=sft_run, data=ctx.dep_path(stage.feedback_stage, "pairs"),
                    out=out, max_steps=s.max_steps, epochs=s.epochs, lr=s.lr, batch_size=s.batch_size,
                    seq_len=s.seq_len, seed=stage.r.seed, beta=s.beta, **s.options)
    _recipe_labels(cfg, "dpo", s.options)
    from ownchat.recipe.stages_eval import stage_bar

    with stage_bar(f"DPO {st.name}") as tick:
        res = train_dpo(cfg, log=ctx.log, on_step=lambda row, total: tick(row["step"], total)).to_dict()
    images = {}
    if res.get("plot") and Path(res["plot"]).exists():
        images[f"DPO: {st.name}"] = ctx.rel(Path(res["plot"]))
    else:
        from ownchat.recipe.stages import plot_metrics

        png = plot_metrics(out / "metrics.jsonl", ("loss", "margin", "accuracy"), ctx.dir / "dpo.png",
                           f"DPO: {st.name}")
        if png:
            images[f"DPO: {st.name}"] = ctx.rel(png)
    summary = {k: res.get(k) for k in ("steps", "pairs", "final_loss", "resumed_from")}
    summary.update({f"final {k}": v for k, v in (res.get("final") or {}).items()})
    return StageResult(summary=summary, artifacts={"model": ctx.rel(out)}, images=images, raw=res)


def run_improve_stage(stage, ctx: StageContext) -> StageResult:
    from ownchat.improve.lmsi import LMSIConfig, run_lmsi

    s, st = stage.sec, stage.student
    model = _model_dir(ctx, stage.model_stage, st.base)
    cfg = LMSIConfig(model=model, out=ctx.dir / "lmsi", pool_size=s.n, k=s.samples, eval_size=s.eval_n,
                     max_tokens=s.max_tokens, seed=stage.r.seed, **s.options)
    res = run_lmsi(cfg, log=ctx.log).to_dict()
    summary: dict[str, Any] = {k: res.get(k) for k in ("pool", "kept_questions", "train_examples", "final_loss")}
    rows = []
    for label in ("before", "after"):
        ev = res.get(label) or {}
        g = ev.get("greedy") or {}
        if g:
            summary[f"gsm8k {label}"] = _acc_text(g)
            rows.append([label, g.get("correct"), g.get("n"), _acc_text(g)])
    if rows:
        summary["tables"] = [{"title": "GSM8K accuracy (greedy CoT, 95% Wilson interval)",
                              "header": ["model", "correct", "questions", "accuracy"], "rows": rows}]
    images = {p.stem: ctx.rel(p) for p in sorted((ctx.dir / "lmsi").glob("*.png"))}
    if not res.get("run_dir"):
        raise UserError("LMSI produced no trained model")
    return StageResult(summary=summary, artifacts={"model": ctx.rel(Path(res["run_dir"]))}, images=images,
                       usage={"student (self-consistency)": res.get("usage") or {}}, raw=res)


def _acc_text(g: dict[str, Any]) -> str:
    acc, ci = g.get("accuracy"), g.get("ci95") or [None, None]
    if acc is None:
        return str(g)
    return f"{acc:.1%}" + (f" [{ci[0]:.1%}, {ci[1]:.1%}]" if ci[0] is not None else "")


def run_export_stage(stage, ctx: StageContext) -> StageResult:
    from ownchat.export import export_run

    run_dir = ctx.dep_path(stage.model_stage, "model")
    e = stage.r.export
    dest = Path(export_run(run_dir, to=e.to, out=ctx.dir / "export", log=ctx.log, outtype=e.outtype))
    served = dest / "model.gguf" if (dest / "model.gguf").exists() else dest
    size = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
    return StageResult(summary={"format": e.to, "outtype": e.outtype if e.to != "hf" else "fp",
                                "size_mb": round(size / 1e6, 1)},
                       artifacts={"model": ctx.rel(served), "folder": ctx.rel(dest)})
