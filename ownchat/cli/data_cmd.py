"""`ownchat data dedup | convert | stats | rewrite`: look after training files."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ownchat.cli.common import console, print_table, progress, user_errors

app = typer.Typer(help="Training data: ROUGE-L dedup, format conversion, statistics.", no_args_is_help=True)


@app.command("dedup")
@user_errors
def dedup_cmd(
    file: Path = typer.Argument(..., help="JSONL (or JSON list) of records"),
    out: Path = typer.Option(..., "--out", "-o", help="where the kept records go"),
    field: str = typer.Option("instruction", help="record field to compare (dotted paths allowed: a.b)"),
    threshold: float = typer.Option(0.7, help="drop a record whose ROUGE-L F with a kept one is above this"),
    against: Path = typer.Option(None, help="records that count as already kept (e.g. seed tasks)"),
) -> None:
    """Keep, in file order, each record whose ROUGE-L F against every record kept before it is <= threshold."""
    import time

    from ownchat.data.dedup import DedupIndex
    from ownchat.data.jsonl import check_output, read_records, write_jsonl
    from ownchat.errors import DataError, UserError

    if not 0 <= threshold <= 1:
        raise UserError("--threshold must be between 0 and 1")
    check_output(out)
    records = _nonempty(read_records(file), file)
    index = DedupIndex(threshold)
    for rec in read_records(against) if against else []:
        value = _get(rec, field)
        if value is not None:
            index.force_add(str(value))
    kept, dropped = [], 0
    t0 = time.perf_counter()
    with progress("dedup") as bar:
        task = bar.add_task("dedup", total=len(records))
        for line, rec in enumerate(records, start=1):
            value = _get(rec, field)
            if value is None:
                raise DataError(file, line, f"record has no field {field!r}", f"pick another --field; keys: {sorted(rec)[:8]}")
            if index.add(str(value)):
                kept.append(rec)
            else:
                dropped += 1
            if line % 500 == 0 or line == len(records):
                bar.update(task, completed=line)
    elapsed = time.perf_counter() - t0
    write_jsonl(out, kept)
    console.print(f"kept {len(kept)}, dropped {dropped} (ROUGE-L > {threshold}) of {len(records)} in {elapsed:.1f} s"
                  f" -> {out}", highlight=False)


def _nonempty(records: list, file: Path) -> list:
    """An empty input is a mistake (wrong file, failed earlier step): never turn it into an empty output."""
    from ownchat.errors import DataError

    if not records:
        raise DataError(file, None, "no records (the file is empty)",
                        "check that this is the file you meant; nothing was written")
    return records


def _get(rec: dict, field: str):
    cur = rec
    for part in field.split("."):
        if not isinstance(cur, dict) or part not in cur:
            if field == "instruction" and "instruction" not in rec:  # other formats: the first user turn
                from ownchat.data.formats import to_messages

                try:
                    msgs = to_messages(rec, require_answer=False)
                except Exception:  # noqa: BLE001 - reported as a missing field by the caller
                    return None
                return next((m["content"] for m in msgs if m["role"] == "user"), None)
            return None
        cur = cur[part]
    return cur


@app.command("convert")
@user_errors
def convert_cmd(
    file: Path = typer.Argument(..., help="Alpaca, Dolly, ShareGPT, OpenAI-messages or prompt/completion records"),
    to: str = typer.Option(..., "--to", help="alpaca | sharegpt | openai"),
    out: Path = typer.Option(..., "--out", "-o"),
) -> None:
    """Convert between formats. Self-Instruct tasks with several instances become one record each."""
    from ownchat.data.formats import FORMATS, from_messages, to_messages
    from ownchat.data.jsonl import check_output, read_records, write_jsonl
    from ownchat.errors import UserError

    if to not in FORMATS:
        raise UserError(f"--to must be one of {', '.join(FORMATS)}")
    check_output(out)
    out_records = []
    for line, rec in enumerate(_nonempty(read_records(file), file), start=1):
        keep = {k: rec[k] for k in ("id", "provenance") if k in rec}
        instances = rec.get("instances")
        if isinstance(instances, list) and instances and "instruction" in rec:
            for i, inst in enumerate(instances):
                one = {"instruction": rec["instruction"], "input": inst.get("input", ""), "output": inst.get("output", "")}
                extra = {**keep, "id": f"{rec.get('id', line)}-{i}"} if len(instances) > 1 else keep
                out_records.append(from_messages(to_messages(one, where=(file, line)), to, extra))
            continue
        msgs = to_messages(rec, where=(file, line))
        if to == "alpaca" and "instruction" in rec and sum(m["role"] == "user" for m in msgs) == 1:
            out_records.append({**keep, "instruction": rec["instruction"], "input": rec.get("input", rec.get("context", "")),
                                "output": next(m["content"] for m in msgs if m["role"] == "assistant")})
        else:
            out_records.append(from_messages(msgs, to, keep))
    write_jsonl(out, out_records)
    console.print(f"wrote {len(out_records)} {to} records -> {out}", highlight=False)


@app.command("stats")
@user_errors
def stats_cmd(
    file: Path = typer.Argument(...),
    png: Path = typer.Option(None, "--png", help="write length histograms, language mix and the verb/noun chart"),
    as_json: bool = typer.Option(False, "--json", help="print the statistics as JSON"),
    top: int = typer.Option(20, help="how many leading verbs / verb-noun pairs to list"),
) -> None:
    """Counts, length histograms, language mix and the most common leading verbs."""
    from rich.table import Table

    from ownchat.data.stats import dataset_stats, plot_stats, public

    st = dataset_stats(file, top=top)
    if as_json:
        print(json.dumps(public(st), ensure_ascii=False, indent=2))
    else:
        console.print(f"[bold]{st['file']}[/]: {st['records']} records, formats {st['formats']}, "
                      f"languages {st['languages']}", highlight=False)
        t = Table()
        for col in ("", "min", "median", "mean", "p90", "max"):
            t.add_column(col)
        for name in ("instruction_tokens", "output_tokens", "user_turns"):
            h = st[name]
            t.add_row(name, *(str(h[k]) for k in ("min", "median", "mean", "p90", "max")))
        print_table(t, err=True)
        console.print(f"{st['distinct_leading_verbs']} distinct leading verbs; top: "
                      + ", ".join(f"{v} ({c})" for v, c in st["leading_verbs"][:top]), highlight=False)
    if png:
        console.print(f"chart -> {plot_stats(st, png)}", highlight=False)


@app.command("rewrite")
@user_errors
def rewrite_cmd(
    file: Path = typer.Argument(..., help="constrained teacher answers (`ownchat synth answer --constraints` output)"),
    out: Path = typer.Option(..., "--out", "-o", help="the records followed by their variants (OpenAI messages)"),
    per_answer: int = typer.Option(3, "--per-answer", min=1, max=8, help="variants per answer, at most"),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json", help="print the counts as JSON"),
) -> None:
    """Add one more constraint per variant and rewrite the answer to meet it by code, re-checked by IFEval's checker."""
    from collections import Counter

    from ownchat.data.formats import to_messages
    from ownchat.data.jsonl import check_output, read_records, write_jsonl
    from ownchat.errors import UserError
    from ownchat.synth.rewrites import rewrite_all

    if check_output(out).resolve() == file.resolve():
        raise UserError(f"{out}: --out is the input file; name another file (the input is never overwritten)")
    recs = []
    for line, rec in enumerate(_nonempty(read_records(file), file), start=1):
        recs.append({"id": str(rec.get("id", f"line{line}")), "source": rec.get("source", "synth"),
                     "messages": to_messages(rec, where=(file, line)), "provenance": rec.get("provenance") or {}})
    variants = rewrite_all(recs, per_answer, seed)
    write_jsonl(out, recs + variants)
    added = Counter(v["provenance"]["rewrite"]["added"] for v in variants)
    if as_json:
        print(json.dumps({"records": len(recs), "variants": len(variants), "added": dict(added), "out": str(out)}))
    else:
        console.print(f"{len(recs)} records + {len(variants)} rewritten variants -> {out}  "
                      + ", ".join(f"{k} {n}" for k, n in added.most_common()), highlight=False)
