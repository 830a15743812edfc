"""`ownchat run RECIPE.yaml` and `ownchat quickstart`: the whole pipeline in one resumable command."""

from __future__ import annotations

from pathlib import Path

import typer

from ownchat.cli.common import ProgressBars, console, print_table, user_errors


def recipes_dir() -> Path:
    """The shipped recipes: ``recipes/`` of the source checkout (``make setup`` installs it editable)."""
    return Path(__file__).resolve().parents[2] / "recipes"


def _print_plan(plan) -> None:
    from rich.table import Table

    from ownchat.recipe.plan import fmt_seconds

    labels = {"skip": "[green]up to date[/]", "run": "run", "resume": "[yellow]resume[/]",
              "rerun": "[yellow]run again (changed)[/]"}
    t = Table(title=f"plan: {plan.recipe.name} -> {plan.run_dir}", title_justify="left")
    for col in ("stage", "status", "time", "tokens in", "tokens out", "cost", "how"):
        t.add_column(col, justify="right" if col in ("time", "tokens in", "tokens out", "cost") else "left",
                     no_wrap=col != "how")
    for row in plan.rows:
        e = row.estimate
        skip = row.status == "skip"
        t.add_row(row.stage.name, labels[row.status], "-" if skip else fmt_seconds(e.seconds),
                  f"{e.tokens_in:,}" if e.tokens_in and not skip else "", f"{e.tokens_out:,}" if e.tokens_out and not skip else "",
                  f"${e.cost_usd:,.2f}" if e.cost_usd and not skip else "", "" if skip else e.note)
    tot = plan.totals()
    t.add_row("[bold]total", "", f"[bold]{fmt_seconds(tot['seconds'])}", f"{int(tot['tokens_in']):,}",
              f"{int(tot['tokens_out']):,}", f"${tot['cost_usd']:,.2f}", "")
    print_table(t, err=True)
    speeds = "GPU" if plan.device == "cuda" else "CPU"
    console.print(f"[dim]times for this machine ({speeds}); tokens in/out and cost count teacher and judge "
                  "calls; speeds measured by earlier runs here replace the defaults[/]")
    if plan.remote_hosts:
        console.print(f"[yellow]privacy:[/] prompts and data will be sent to {', '.join(plan.remote_hosts)}")
    else:
        console.print("[green]privacy:[/] every model is local: nothing leaves this machine")
    for name, s in plan.licence["students"].items():
        colour = {"cleared": "green", "not cleared": "red"}.get(s["verdict"], "yellow")
        console.print(f"[{colour}]licence ({name}):[/] {s['text']}", highlight=False)
    for w in plan.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)


def _run(recipe_path: Path, out: Path | None, dry_run: bool, report_only: bool) -> None:
    from ownchat.data.jsonl import check_input
    from ownchat.recipe import plan_recipe, rebuild_report, run_recipe
    from ownchat.recipe.plan import fmt_seconds

    if recipe_path.is_dir():
        check_input(recipe_path)  # a run directory or a folder of recipes: name the YAML file
    plan = plan_recipe(recipe_path, out)
    if report_only:
        console.print(f"report: {rebuild_report(recipe_path, plan.run_dir)}")
        return
    _print_plan(plan)
    if dry_run:
        console.print("[green]recipe is valid.[/] Run it without --dry-run.")
        return

    def header(i: int, n: int, row, remaining: float) -> None:
        status = "up to date, skipped" if row.status == "skip" else f"~{fmt_seconds(row.estimate.seconds)}"
        eta = f"; about {fmt_seconds(remaining)} of work left" if remaining and row.status != "skip" else ""
        console.rule(f"[bold][{i}/{n}] {row.stage.name}[/] ({status}{eta})")

    outcome = None
    bars = ProgressBars()
    try:
        outcome = run_recipe(recipe_path, plan.run_dir, log=lambda m: console.print(m, highlight=False),
                             on_stage=header, progress=bars)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted.[/] Run the same command again to resume where it stopped.")
        raise typer.Exit(130) from None
    finally:
        bars.close()
        report = plan.run_dir / "report.html"
        if report.exists():
            console.print(f"report: {report}")
    if outcome is None:
        return
    console.rule("[bold green]done")
    console.print(f"ran {len(outcome.ran)} stage(s), skipped {len(outcome.skipped)} up to date, "
                  f"in {fmt_seconds(outcome.seconds)}. Run directory: {plan.run_dir}")
    import json

    info = json.loads((plan.run_dir / "run.json").read_text())
    for name, verdict in info.get("verdicts", {}).items():
        console.print(f"licence ({name}): {verdict} (see {plan.run_dir / 'MODEL_CARD.md'})")
    for name, cmd in info.get("serve", {}).items():
        console.print(f"[bold]serve {name}:[/] {cmd}", highlight=False)


def register(app: typer.Typer) -> None:
    @app.command("run")
    @user_errors
    def run_cmd(recipe: Path = typer.Argument(..., help="a recipe YAML file (see recipes/)"),
                out: Path = typer.Option(None, "--out", help="run directory (default runs/<recipe name>)"),
                dry_run: bool = typer.Option(False, "--dry-run", help="validate and print the plan with time, "
                                             "token and cost estimates; run nothing"),
                report_only: bool = typer.Option(False, "--report-only",
                                                 help="rebuild report.html and the ledgers from the run dir")) -> None:
        """Run a recipe: synth -> sft -> (feedback -> dpo) -> (improve) -> judge -> export.

        Stages whose inputs and settings did not change are skipped; a killed run resumes.
        """
        _run(recipe, out, dry_run, report_only)

    @app.command("quickstart")
    @user_errors
    def quickstart_cmd(tiny: bool = typer.Option(False, "--tiny", help="a 5-minute look (too small to show a gain) instead of ~30 minutes"),
                       out: Path = typer.Option(None, "--out", help="run directory"),
                       dry_run: bool = typer.Option(False, "--dry-run", help="print the plan only")) -> None:
        """Offline: the Qwen pack teaches SmolLM2 (and the gemma-3-270m base model); judged, exported, served."""
        from ownchat.errors import UserError

        recipe = recipes_dir() / ("quickstart-tiny.yaml" if tiny else "quickstart.yaml")
        if not recipe.exists():
            raise UserError(f"{recipe} not found: run from a source checkout, or "
                            "`ownchat run path/to/quickstart.yaml`")
        _run(recipe, out or Path("runs") / ("quickstart-tiny" if tiny else "quickstart"), dry_run, False)
