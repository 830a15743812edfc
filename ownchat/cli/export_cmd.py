"""``ownchat export RUN_DIR --to hf|gguf|ollama``."""

from __future__ import annotations

from pathlib import Path

import typer

from ownchat.cli.common import console, user_errors


def register(app: typer.Typer) -> None:
    @app.command("export")
    @user_errors
    def export(
        run_dir: Path = typer.Argument(..., help="a directory written by `ownchat train`"),
        to: str = typer.Option("gguf", "--to", help="hf (merged model) | gguf (llama.cpp) | ollama (GGUF + Modelfile) | lora-gguf (adapter only)"),
        out: Path = typer.Option(None, "--out", "-o", help="default: RUN_DIR/export-<to>"),
        outtype: str = typer.Option("f16", "--outtype", help="GGUF precision: f32, f16, bf16, q8_0"),
    ) -> None:
        """Merge the adapter into the base and write a model others can run, with a model card."""
        from ownchat.export import export_run

        dest = export_run(run_dir, to, out, log=lambda m: console.print(m, highlight=False, markup=False),
                          outtype=outtype)
        console.print(f"[bold green]exported[/] {dest}")
        if to == "ollama":
            console.print(f"run it: cd {dest} && ollama create mymodel -f Modelfile && ollama run mymodel")
