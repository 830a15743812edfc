"""``ownchat train sft|dpo|rm``: supervised fine-tuning (LoRA, QLoRA, full) and preference training
(DPO, reward model), all on the one trainer in ``ownchat.train``. Heavy imports live inside."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from ownchat.cli.common import console, progress, user_errors

app = typer.Typer(help="Fine-tune a model: on your conversations (sft) or on preference pairs (dpo, rm).",
                  no_args_is_help=True)


@contextmanager
def step_bar(kind: str) -> Iterator[Any]:
    """The trainers' ``on_step(row, total)`` drawn as a bar with count, elapsed time, ETA and the losses."""
    with progress(kind, extra="info") as bar:
        task = bar.add_task(kind, total=None, info="")

        def on_step(row: dict, total: int) -> None:
            info = [f"loss {row['loss']:.4f}"]
            if "margin" in row:
                info.append(f"margin {row['margin']:+.3f}  acc {row['accuracy']:.2f}")
            info.append(f"{row.get('tok_s', 0):,.0f} tok/s")
            if row.get("eval_loss") is not None:
                info.append(f"eval {row['eval_loss']:.4f}")
            bar.update(task, completed=row["step"], total=total, info="  ".join(info))

        yield on_step, (lambda m: bar.console.print(m, highlight=False, markup=False, soft_wrap=True))


@app.command("sft")
@user_errors
def sft(
    model: str = typer.Option(None, "--model", "-m", help="base model: pack name, HF directory or hub id"),
    data: list[str] = typer.Option(None, "--data", "-d",
                                   help="training file (Alpaca, Dolly, ShareGPT, OpenAI messages, synth "
                                        "output); repeat to mix, FILE:WEIGHT to up/down-weight"),
    out: Path = typer.Option(None, "--out", "-o", help="run directory"),
    config: Path = typer.Option(None, "--config", "-c", help="YAML file with any of these options"),
    method: str = typer.Option(None, "--method", help="lora (default) | qlora (CUDA) | full"),
    epochs: int = typer.Option(None, "--epochs"),
    max_steps: int = typer.Option(None, "--max-steps", help="stop after this many optimizer steps"),
    lr: float = typer.Option(None, "--lr", help="peak learning rate (default 2e-4)"),
    batch_size: int = typer.Option(None, "--batch-size"),
    grad_accum: int = typer.Option(None, "--grad-accum"),
    seq_len: int = typer.Option(None, "--seq-len", help="longer conversations are cut (and counted)"),
    lora_r: int = typer.Option(None, "--lora-r"),
    lora_alpha: int = typer.Option(None, "--lora-alpha"),
    target_modules: str = typer.Option(None, "--target-modules", help="comma list; default: per architecture"),
    seed: int = typer.Option(None, "--seed"),
    save_every: int = typer.Option(None, "--save-every", help="checkpoint every N steps"),
    eval_fraction: float = typer.Option(None, "--eval-fraction"),
    chat_template: str = typer.Option(None, "--chat-template", help="chatml | llama3 | gemma | Jinja text"),
    packing: bool = typer.Option(None, "--packing/--no-packing", help="pack several examples per row"),
    gradient_checkpointing: bool = typer.Option(None, "--gradient-checkpointing/--no-gradient-checkpointing"),
    resume: bool = typer.Option(False, "--resume", help="continue the run in --out from its last checkpoint"),
) -> None:
    """Supervised fine-tuning with loss on assistant turns only."""
    from ownchat.data.jsonl import check_input
    from ownchat.train.config import load_config, parse_data_arg
    from ownchat.train.sft import train_sft

    for arg in data or []:
        path, _ = parse_data_arg(arg)
        if path.is_dir():
            check_input(path)  # one clear line now, not after the model has loaded
    overrides = dict(model=model, data=data, out=out, method=method, epochs=epochs, max_steps=max_steps, lr=lr,
                     batch_size=batch_size, grad_accum=grad_accum, seq_len=seq_len, lora_r=lora_r,
                     lora_alpha=lora_alpha, seed=seed, save_every=save_every, eval_fraction=eval_fraction,
                     chat_template=chat_template, packing=packing, gradient_checkpointing=gradient_checkpointing,
                     target_modules=target_modules.split(",") if target_modules else None,
                     resume=resume or None)
    cfg = load_config(config, overrides)
    with step_bar("sft") as (on_step, log):
        res = train_sft(cfg, log=log, on_step=on_step)
    fmt = lambda x: "n/a" if x is None else f"{x:.4f}"  # noqa: E731
    console.print(f"[bold green]trained[/] {res.steps} steps, loss {fmt(res.final_loss)}, eval loss {fmt(res.eval_loss)}"
                  + f", {res.tokens_per_second:,.0f} tok/s -> {res.out_dir}")


@app.command("show-mask")
@user_errors
def show_mask_cmd(
    model: str = typer.Option(..., "--model", "-m"),
    data: Path = typer.Option(..., "--data", "-d"),
    n: int = typer.Option(2, "-n", help="how many conversations to show"),
    chat_template: str = typer.Option(None, "--chat-template"),
) -> None:
    """Print conversations with the supervised tokens highlighted (green) and the mask check."""
    from transformers import AutoTokenizer

    from ownchat.models.resolve import ensure_hf
    from ownchat.train.data import load_file
    from ownchat.train.render import MaskReport, render_conversation, show_mask
    from ownchat.train.templates import choose_template

    tok = AutoTokenizer.from_pretrained(ensure_hf(model))
    _, tpl = choose_template(tok, chat_template)
    convs, _ = load_file(data)
    report = MaskReport()
    for i, conv in enumerate(convs):
        ids, mask = render_conversation(tok, conv, tpl, report=report)
        if i < n:
            console.rule(f"conversation {i + 1}")
            console.print(show_mask(tok, ids, mask))
    console.print(report.summary(), highlight=False, markup=False)


# Flags shared with `train sft` (same names, same meaning).
ModelOpt = typer.Option(..., "--model", "-m", help="base model (pack, HF dir) or an SFT run directory")
AdapterOpt = typer.Option(None, "--adapter", help="SFT run (or adapter folder) to start from")
DataOpt = typer.Option(..., "--data", "-d", help="preference pairs: prompt, chosen, rejected (JSONL)")
OutOpt = typer.Option(..., "--out", "-o", help="run directory (resumes from its last checkpoint)")
MaxStepsOpt = typer.Option(None, "--max-steps", help="default: --epochs over the pairs")
EpochsOpt = typer.Option(1.0, "--epochs")
BatchOpt = typer.Option(4, "--batch-size", help="pairs per micro-batch")
AccumOpt = typer.Option(1, "--grad-accum")
SeqOpt = typer.Option(512, "--seq-len", help="prompt + answer tokens; prompts are cut from the start")
LoraROpt = typer.Option(8, "--lora-r")
LoraAlphaOpt = typer.Option(None, "--lora-alpha", help="default 2 * r")
SeedOpt = typer.Option(0, "--seed")
SaveOpt = typer.Option(50, "--save-every", help="checkpoint every N steps")
TemplateOpt = typer.Option(None, "--chat-template", help="chatml | llama3 | gemma | Jinja text")
GCOpt = typer.Option(False, "--gradient-checkpointing/--no-gradient-checkpointing")
PassOpt = typer.Option(None, "--tokens-per-pass", help="split each batch into forward passes of about this many "
                       "tokens (same gradient, less memory; default 512 on CPU, the whole batch on a GPU)")
# the config fields these flags set: a problem with one is reported under its flag
FLAG_FIELDS = ("model", "adapter", "data", "out", "max_steps", "epochs", "lr", "batch_size", "grad_accum", "seq_len",
               "lora_r", "lora_alpha", "seed", "save_every", "chat_template", "gradient_checkpointing", "tokens_per_pass")


@app.command("dpo")
@user_errors
def dpo(
    model: str = ModelOpt, adapter: Path = AdapterOpt, data: Path = DataOpt, out: Path = OutOpt,
    beta: float = typer.Option(0.1, "--beta", help="how far the policy may drift from the reference"),
    loss: str = typer.Option("sigmoid", "--loss", help="sigmoid | ipo | hinge | robust"),
    label_smoothing: float = typer.Option(0.0, "--label-smoothing", help="assumed label-flip rate (robust)"),
    max_steps: int = MaxStepsOpt, epochs: float = EpochsOpt,
    lr: float = typer.Option(5e-5, "--lr"), batch_size: int = BatchOpt, grad_accum: int = AccumOpt,
    seq_len: int = SeqOpt, lora_r: int = LoraROpt, lora_alpha: int = LoraAlphaOpt, seed: int = SeedOpt,
    save_every: int = SaveOpt, chat_template: str = TemplateOpt, gradient_checkpointing: bool = GCOpt,
    tokens_per_pass: int = PassOpt,
) -> None:
    """Direct preference optimisation with LoRA; the reference is the same weights, adapter off."""
    from ownchat.train.dpo import DPOConfig, train_dpo

    cfg = DPOConfig(model=model, adapter=adapter, data=data, out=out, beta=beta, loss_type=loss,
                    label_smoothing=label_smoothing, max_steps=max_steps, epochs=epochs, lr=lr,
                    batch_size=batch_size, grad_accum=grad_accum, seq_len=seq_len, lora_r=lora_r,
                    lora_alpha=lora_alpha, seed=seed, save_every=save_every, chat_template=chat_template,
                    gradient_checkpointing=gradient_checkpointing, tokens_per_pass=tokens_per_pass)
    with step_bar("dpo") as (on_step, log):
        res = train_dpo(cfg.from_flags(FLAG_FIELDS + ("beta", "loss_type", "label_smoothing")), log=log,
                        on_step=on_step)
    f = res.final
    console.print(f"[bold green]DPO[/] {res.steps} steps on {res.pairs} pairs: loss {res.final_loss:.4f}, "
                  f"margin {f.get('margin', 0):+.3f}, accuracy {f.get('accuracy', 0):.2f} -> {res.out}"
                  + (f"\n  curves: {res.plot}" if res.plot else ""))


@app.command("rm")
@user_errors
def rm(
    model: str = ModelOpt, adapter: Path = typer.Option(None, "--adapter",
                                                        help="SFT run: only its base and template are used"),
    data: Path = DataOpt, out: Path = OutOpt,
    max_steps: int = MaxStepsOpt, epochs: float = EpochsOpt,
    lr: float = typer.Option(1e-4, "--lr"), batch_size: int = BatchOpt, grad_accum: int = AccumOpt,
    seq_len: int = SeqOpt, lora_r: int = LoraROpt, lora_alpha: int = LoraAlphaOpt, seed: int = SeedOpt,
    save_every: int = SaveOpt, chat_template: str = TemplateOpt, gradient_checkpointing: bool = GCOpt,
    center: float = typer.Option(0.0, "--center", help="penalty pulling rewards towards 0"),
    tokens_per_pass: int = PassOpt,
) -> None:
    """A reward model (scalar head + LoRA, Bradley-Terry loss) for `--best-of N` reranking."""
    from ownchat.train.rm import RMConfig, train_rm

    cfg = RMConfig(model=model, adapter=adapter, data=data, out=out, max_steps=max_steps, epochs=epochs, lr=lr,
                   batch_size=batch_size, grad_accum=grad_accum, seq_len=seq_len, lora_r=lora_r,
                   lora_alpha=lora_alpha, seed=seed, save_every=save_every, chat_template=chat_template,
                   gradient_checkpointing=gradient_checkpointing, center_coef=center,
                   tokens_per_pass=tokens_per_pass)
    with step_bar("rm") as (on_step, log):
        res = train_rm(cfg.from_flags(FLAG_FIELDS + ("center_coef",)), log=log, on_step=on_step)
    console.print(f"[bold green]reward model[/] {res.steps} steps on {res.pairs} pairs: loss {res.final_loss:.4f}, "
                  f"accuracy {res.final.get('accuracy', 0):.2f} -> {res.out}"
                  + (f"\n  curves: {res.plot}" if res.plot else ""))
