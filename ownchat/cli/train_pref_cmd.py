"""``ownchat train dpo`` and ``ownchat train rm``: learn from preference pairs (``ownchat feedback``)."""

from __future__ import annotations

from pathlib import Path

import typer

from ownchat.cli.common import console, progress, user_errors


def register(train_app: typer.Typer) -> None:
    train_app.command("dpo")(dpo)
    train_app.command("rm")(rm)


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


def _run(kind: str, fn, cfg) -> object:
    with progress(kind, extra="info") as bar:
        task = bar.add_task(kind, total=None, info="")

        def on_step(rec: dict, total: int) -> None:
            bar.update(task, completed=rec["step"], total=total,
                       info=f"loss {rec['loss']:.4f}  margin {rec['margin']:+.3f}  acc {rec['accuracy']:.2f}")

        return fn(cfg, log=lambda m: bar.console.print(m, highlight=False, markup=False), on_step=on_step)


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
) -> None:
    """Direct preference optimisation with LoRA; the reference is the same weights, adapter off."""
    from ownchat.train.dpo import DPOConfig, train_dpo

    cfg = DPOConfig(model=model, adapter=adapter, data=data, out=out, beta=beta, loss_type=loss,
                    label_smoothing=label_smoothing, max_steps=max_steps, epochs=epochs, lr=lr,
                    batch_size=batch_size, grad_accum=grad_accum, seq_len=seq_len, lora_r=lora_r,
                    lora_alpha=lora_alpha, seed=seed, save_every=save_every, chat_template=chat_template,
                    gradient_checkpointing=gradient_checkpointing)
    res = _run("dpo", train_dpo, cfg)
    f = res.final
    console.print(f"[bold green]DPO[/] {res.steps} steps on {res.pairs} pairs: loss {res.final_loss:.4f}, "
                  f"margin {f.get('margin', 0):+.3f}, accuracy {f.get('accuracy', 0):.2f} -> {res.out}"
                  + (f"\n  curves: {res.plot}" if res.plot else ""))


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
) -> None:
    """A reward model (scalar head + LoRA, Bradley-Terry loss) for `--best-of N` reranking."""
    from ownchat.train.rm import RMConfig, train_rm

    cfg = RMConfig(model=model, adapter=adapter, data=data, out=out, max_steps=max_steps, epochs=epochs, lr=lr,
                   batch_size=batch_size, grad_accum=grad_accum, seq_len=seq_len, lora_r=lora_r,
                   lora_alpha=lora_alpha, seed=seed, save_every=save_every, chat_template=chat_template,
                   gradient_checkpointing=gradient_checkpointing, center_coef=center)
    res = _run("rm", train_rm, cfg)
    console.print(f"[bold green]reward model[/] {res.steps} steps on {res.pairs} pairs: loss {res.final_loss:.4f}, "
                  f"accuracy {res.final.get('accuracy', 0):.2f} -> {res.out}"
                  + (f"\n  curves: {res.plot}" if res.plot else ""))
