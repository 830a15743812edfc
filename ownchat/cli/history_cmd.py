"""`ownchat history list | export | delete`: the web chat's conversations, from the local SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ownchat.cli.common import console, print_table, user_errors

app = typer.Typer(help="Chat history saved by `ownchat serve` (a local SQLite file).", no_args_is_help=True)

HistoryOpt = typer.Option(None, "--history", help="SQLite file (default: OWNCHAT_HOME/history.sqlite)")


def _open(path: Path | None):
    from ownchat.errors import UserError
    from ownchat.serve.history import HistoryStore, default_history_db

    db = Path(path).expanduser() if path else default_history_db()
    if not db.exists():
        raise UserError(f"no chat history at {db} (nothing has been saved yet, or pass --history FILE)")
    return HistoryStore(db)


def _pick(store, ref: str) -> str:
    from ownchat.errors import UserError

    ids = store.find(ref)
    if not ids:
        raise UserError(f"no conversation with id {ref!r} (see `ownchat history list`)")
    if len(ids) > 1:
        raise UserError(f"{ref!r} matches {len(ids)} conversations: give more of the id")
    return ids[0]


@app.command("list")
@user_errors
def list_cmd(history: Path = HistoryOpt, as_json: bool = typer.Option(False, "--json")) -> None:
    """Saved conversations, newest first."""
    import datetime as dt

    from rich.table import Table

    store = _open(history)
    convs = store.list(None)
    if as_json:
        typer.echo(json.dumps(convs, ensure_ascii=False, indent=1))
        return
    t = Table(title=f"{len(convs)} conversations in {store.path}")
    for col in ("id", "title", "messages", "model", "updated"):
        t.add_column(col)
    for c in convs:
        when = dt.datetime.fromtimestamp(c["updated"]).strftime("%Y-%m-%d %H:%M")
        t.add_row(c["id"][:8], c["title"], str(c["n_messages"]), c["model"], when)
    print_table(t)


@app.command("export")
@user_errors
def export_cmd(ids: list[str] = typer.Argument(None, help="conversation ids or prefixes (default: all)"),
               out: Path = typer.Option(None, "--out", "-o", help="JSONL file (default: stdout)"),
               history: Path = HistoryOpt) -> None:
    """Conversations as ShareGPT JSONL, ready for `ownchat train sft`."""
    from ownchat.data.jsonl import write_jsonl

    store = _open(history)
    chosen = [_pick(store, i) for i in ids] if ids else [c["id"] for c in reversed(store.list(None))]
    records = [r for r in (store.export_sharegpt(None, cid) for cid in chosen) if r and len(r["conversations"]) > 0]
    if out is None:
        for r in records:
            typer.echo(json.dumps(r, ensure_ascii=False))
        return
    write_jsonl(out, records, mode=0o600)  # atomic, and as private as the database it comes from
    console.print(f"wrote {len(records)} conversations to {out}")


@app.command("delete")
@user_errors
def delete_cmd(ids: list[str] = typer.Argument(None, help="conversation ids or prefixes"),
               all_: bool = typer.Option(False, "--all", help="delete every conversation"),
               yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation with --all"),
               history: Path = HistoryOpt) -> None:
    """Delete conversations now: rows are removed and their bytes overwritten (secure_delete)."""
    from ownchat.errors import UserError

    if bool(ids) == all_:
        raise UserError("name conversation ids to delete, or pass --all (not both)")
    store = _open(history)
    if all_:
        if not yes and not typer.confirm(f"delete all {len(store.list(None))} conversations in {store.path}?"):
            raise typer.Abort()
        n = store.delete_all(None)
        console.print(f"deleted {n} conversations")
        return
    chosen = [_pick(store, i) for i in ids]
    for cid in chosen:
        store.delete(None, cid)
    console.print(f"deleted {len(chosen)} conversation{'s' if len(chosen) != 1 else ''}")
