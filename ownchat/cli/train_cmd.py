"""``ownchat train sft``: supervised fine-tuning (LoRA, QLoRA, full). Heavy imports live inside."""

from __future__ import annotations

from pathlib import Path

import typer

from ownchat.cli.common import console, user_errors

app = typer.Typer(help="Fine-tune a model on your conversations (sft; dpo and rm where installed).",
                  no_args_is_help=True)


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
    res = train_sft(cfg, log=lambda m: console.print(m, highlight=False, markup=False))
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


# Preference training (dpo, rm) lives in its own module, written separately.
try:
    from ownchat.cli import train_pref_cmd as _pref
except ModuleNotFoundError as _exc:  # not installed yet
    if _exc.name != "ownchat.cli.train_pref_cmd":
        raise
else:
    _pref.register(app)
