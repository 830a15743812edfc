"""Mixing in the ShareGPT pack: people's questions with ChatGPT's answers (Vicuna's training data).

This is not teacher data: the answers were written by OpenAI's ChatGPT, and OpenAI's terms forbid
using its outputs to develop models that compete with OpenAI. A dataset that mixes them in is
therefore **not cleared for a competing model**, whatever the teacher's licence; every mixed record
says so in its provenance, and the recipe's licence ledger lists the pack as a binding item. It is
off unless asked for (``--mix-sharegpt N``), so a user can measure what the data buys and see what
it costs legally.

The pack's file is a (truncated) JSON array; it is read record by record and a truncated tail is
ignored. Conversations are chosen in a fixed order derived from the run seed (so raising N extends
the same selection) and pass the usual output filters.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ownchat.licensing import TERMS

PACK = "sharegpt"
MAX_CHARS = 6000  # a whole conversation: longer ones would be cut by any small model's context
MAX_TURNS = 8  # messages (human + gpt)


def terms_note() -> dict[str, Any]:
    t = TERMS["sharegpt"]
    return {"key": t.key, "commercial": t.commercial, "note": t.note}


def pack_file() -> Path:
    from ownchat.errors import UserError
    from ownchat.models.store import installed

    inst = installed(PACK)
    if inst is None:
        raise UserError("--mix-sharegpt needs the ShareGPT pack: run `ownchat models pull sharegpt` first")
    return inst.path


def iter_conversations(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a JSON array, one at a time; stops quietly at a truncated end."""
    text = path.read_text(encoding="utf-8", errors="replace")
    dec = json.JSONDecoder()
    i = text.find("[") + 1
    n = len(text)
    while i < n:
        while i < n and text[i] in " \t\r\n,":
            i += 1
        if i >= n or text[i] == "]":
            return
        try:
            obj, i = dec.raw_decode(text, i)
        except json.JSONDecodeError:
            return  # the pack's file is cut off mid-record
        if isinstance(obj, dict):
            yield obj


def _usable(conv: Any) -> list[dict[str, str]] | None:
    if not isinstance(conv, list) or not conv:
        return None
    msgs = []
    for k, m in enumerate(conv[:MAX_TURNS]):
        want = "human" if k % 2 == 0 else "gpt"
        if not isinstance(m, dict) or m.get("from") != want or not str(m.get("value", "")).strip():
            return None
        msgs.append({"from": want, "value": str(m["value"]).strip()})
    if len(msgs) % 2:
        msgs.pop()  # end on an answer
    if not msgs or sum(len(m["value"]) for m in msgs) > MAX_CHARS:
        return None
    return msgs


def sharegpt_records(n: int, seed: int, filters, *, path: Path | None = None,
                     log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """``n`` conversations in a seed-fixed order, each passing the output filters, with provenance."""
    path = path or pack_file()
    convs = {}
    for rec in iter_conversations(path):
        if "id" in rec and rec["id"] not in convs:
            convs[str(rec["id"])] = rec.get("conversations")

    def order(cid: str) -> str:
        return hashlib.sha256(f"{seed}:{cid}".encode()).hexdigest()

    out: list[dict[str, Any]] = []
    for cid in sorted(convs, key=order):
        msgs = _usable(convs[cid])
        if msgs is None:
            continue
        if filters.check_instruction(msgs[0]["value"], count=False) or any(
                filters.check_output(m["value"], count=False) for m in msgs[1::2]):
            continue
        out.append({"id": f"sharegpt-{cid}", "conversations": msgs,
                    "provenance": {"stage": "mix", "source": PACK, "pack": PACK, "source_id": cid,
                                   "written_by": "people (questions) and OpenAI ChatGPT (answers)",
                                   "terms": terms_note()}})
        if len(out) >= n:
            break
    if len(out) < n:
        log(f"the ShareGPT pack has only {len(out)} usable conversations (asked for {n})")
    log(f"mixed in {len(out)} ShareGPT conversations: ChatGPT's answers, under OpenAI's terms "
        "(not cleared for a model that competes with OpenAI)")
    return out
