"""The ``ownchat`` command: one subcommand per stage, each defined in its own module."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="ownchat",
    help="Replicate your own ChatGPT: learn from a teacher, fine-tune cheaply, judge rigorously, serve privately.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# (module, sub-app name or None when the module adds plain commands to the root app)
_MODULES = [
    ("ownchat.cli.models_cmd", "models"),
    ("ownchat.cli.generate_cmd", None),
    ("ownchat.cli.data_cmd", "data"),
    ("ownchat.cli.synth_cmd", "synth"),
    ("ownchat.cli.train_cmd", "train"),
    ("ownchat.cli.export_cmd", None),
    ("ownchat.cli.judge_cmd", "judge"),
    ("ownchat.cli.serve_cmd", None),
    ("ownchat.cli.history_cmd", "history"),
    ("ownchat.cli.feedback_cmd", None),
    ("ownchat.cli.improve_cmd", "improve"),
    ("ownchat.cli.eval_cmd", "eval"),
    ("ownchat.cli.run_cmd", None),
]


def _register() -> None:
    for module_name, sub in _MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # stage not written yet
                continue
            raise
        if sub is None:
            module.register(app)
        else:
            app.add_typer(module.app, name=sub)


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
