"""The data stage: teacher output + user files -> one filtered, deduplicated training set.

Every record keeps (or gets) provenance: synthetic records carry the teacher's, user records get
their file, line and declared licence. The stage tallies records per licence for the licence ledger
and counts what each filter removed for the report.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

from ownchat.data.formats import to_messages
from ownchat.data.jsonl import read_jsonl, read_records, write_jsonl
from ownchat.data.quality import is_refusal
from ownchat.licensing import lookup
from ownchat.recipe.plan import StageContext, StageResult

# Characters whose Simplified and Traditional forms differ: a Traditional Chinese set should use the right column.
_SIMPLIFIED = set("这们说对时会来为个发学问过还后么样经让应现点种关东车见长门开电话语认")
_TRADITIONAL = set("這們說對時會來為個發學問過還後麼樣經讓應現點種關東車見長門開電話語認")


def _lang_ok(text: str, language: str | None) -> bool:
    if not language or not language.lower().startswith("zh"):
        return True
    cjk = sum("\u4e00" <= ch <= "\u9fff" for ch in text)
    if cjk < 0.2 * max(1, len(text.strip())):
        return False
    if language.lower() in ("zh-tw", "zh-hant", "zh-hk"):
        return sum(ch in _SIMPLIFIED for ch in text) <= sum(ch in _TRADITIONAL for ch in text)
    return True


def _rid(messages: list[dict[str, str]]) -> str:
    return hashlib.sha1(json.dumps(messages, ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:16]


def _load(ctx: StageContext, r) -> list[tuple[dict[str, Any], str, dict[str, Any]]]:
    """(record, source, provenance) for every input record, in a stable order."""
    from ownchat.recipe.ledger import data_licence

    rows: list[tuple[dict[str, Any], str, dict[str, Any]]] = []
    if "synth" in ctx.results:
        path = ctx.dep_path("synth", "data")
        for rec in read_jsonl(path, allow_partial_last_line=True):
            prov = rec.get("provenance") or {}
            rows.append((rec, "synth", prov))
    for f in r.data:
        path = r.resolve_path(f.path)
        lic, _ = data_licence(r, f.path, f.license)
        terms = lookup(lic)
        recs = read_records(path)
        for line, rec in enumerate(recs[: f.limit] if f.limit else recs, start=1):
            prov = {"stage": "user-data", "file": f.path, "line": line,
                    "terms": {"key": terms.key, "commercial": terms.commercial, "note": terms.note}}
            rows.append((rec, f.path, prov))
    return rows


def prepare_data(r, ctx: StageContext) -> StageResult:
    filters = r.synth.filters if r.synth else None
    language = r.synth.language if r.synth else None
    counts: Counter[str] = Counter()
    kept: list[dict[str, Any]] = []
    by_source: Counter[str] = Counter()
    seen: set[str] = set()
    for rec, source, prov in _load(ctx, r):
        counts["input"] += 1
        where = (Path(prov.get("file", "synth")), prov.get("line"))
        try:
            msgs = to_messages(rec, where=where)
        except Exception:  # noqa: BLE001 - user files were validated by format; synth rows may be errors
            if source != "synth":
                raise
            counts["dropped: unreadable or no answer"] += 1
            continue
        answer = "\n".join(m["content"] for m in msgs if m["role"] == "assistant")
        prompt = "\n".join(m["content"] for m in msgs if m["role"] == "user")
        if rec.get("error") or not answer.strip():
            counts["dropped: empty answer"] += 1
            continue
        if filters and len(answer) < filters.min_chars:
            counts["dropped: too short"] += 1
            continue
        if filters and filters.max_chars and len(answer) > filters.max_chars:
            counts["dropped: too long"] += 1
            continue
        if filters and filters.drop_refusals and is_refusal(answer):
            counts["dropped: refusal"] += 1
            continue
        if not _lang_ok(answer, language):
            counts[f"dropped: not {language}"] += 1
            continue
        key = re.sub(r"\s+", " ", prompt.strip().lower())
        if (filters is None or filters.dedup) and key in seen:
            counts["dropped: duplicate prompt"] += 1
            continue
        seen.add(key)
        kept.append({"id": rec.get("id") or _rid(msgs), "messages": msgs, "source": source, "provenance": prov})
        by_source[source] += 1
    near = _near_dedup(kept) if (filters is None or filters.dedup) and len(kept) > 1 else set()
    if near:
        counts["dropped: near-duplicate prompt"] += len(near)
        kept = [k for i, k in enumerate(kept) if i not in near]
    random.Random(r.seed).shuffle(kept)
    heldout, kept = split_heldout(kept, r.eval.heldout if r.eval and r.eval.teacher_nll else 0)
    counts["held out (teacher NLL)"] = len(heldout)
    if r.synth and r.synth.rewrites:
        # after the split: no variant of a held-out answer is trained on
        from ownchat.synth.rewrites import rewrite_all

        variants = rewrite_all([k for k in kept if k["source"] == "synth"], r.synth.rewrites, r.seed)
        counts["added: constraint rewrites"] = len(variants)
        by_source["synth (rewritten)"] += len(variants)
        kept += variants
        random.Random(r.seed + 1).shuffle(kept)
    train = ctx.dir / "train.jsonl"
    write_jsonl(train, kept)
    artifacts = {"train": ctx.rel(train)}
    if heldout:
        write_jsonl(ctx.dir / "heldout.jsonl", heldout)
        artifacts["heldout"] = ctx.rel(ctx.dir / "heldout.jsonl")
    prompts = ctx.dir / "prompts.jsonl"
    write_jsonl(prompts, [{"id": k["id"], "messages": [m for m in k["messages"] if m["role"] != "assistant"][:1]}
                          for k in kept])
    counts["kept"] = len(kept)
    return StageResult(
        summary={"records": len(kept), "filters": dict(counts), "by_source": dict(by_source), **_stats(kept)},
        artifacts={**artifacts, "prompts": ctx.rel(prompts)},
        licences=_licence_tally(kept),
        samples=[{"messages": k["messages"]} for k in kept[:3]],
    )


def split_heldout(kept: list[dict[str, Any]], n: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(held out, training): ``n`` teacher-written records never trained on, for the teacher NLL.

    Synthetic records are preferred (the measure is the distance to *the teacher*); a set smaller
    than 4n keeps everything for training rather than starve it.
    """
    if n <= 0 or len(kept) < 4 * n:
        return [], kept
    synth = [i for i, k in enumerate(kept) if k["source"] == "synth"]
    pick = set((synth if len(synth) >= n else list(range(len(kept))))[:n])
    return [kept[i] for i in sorted(pick)], [k for i, k in enumerate(kept) if i not in pick]


def _near_dedup(kept: list[dict[str, Any]]) -> set[int]:
    """Indices of prompts that are near-copies (ROUGE-L >= 0.7) of an earlier one, as Self-Instruct filters."""
    from ownchat.data.dedup import dedup_texts

    firsts = [next((m["content"] for m in k["messages"] if m["role"] == "user"), "") for k in kept]
    return {i for i, keep in enumerate(dedup_texts(firsts, threshold=0.7)) if not keep}


def _stats(kept: list[dict[str, Any]]) -> dict[str, Any]:
    if not kept:
        return {}
    turns = [sum(m["role"] == "assistant" for m in k["messages"]) for k in kept]
    a_len = [sum(len(m["content"]) for m in k["messages"] if m["role"] == "assistant") for k in kept]
    p_len = [sum(len(m["content"]) for m in k["messages"] if m["role"] == "user") for k in kept]
    return {"mean_turns": round(sum(turns) / len(kept), 2), "mean_prompt_chars": round(sum(p_len) / len(kept)),
            "mean_answer_chars": round(sum(a_len) / len(kept)), "max_answer_chars": max(a_len)}


def _licence_tally(kept: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One ledger item per (source, terms) with its record count: every record is accounted for."""
    tally: Counter[tuple[str, str]] = Counter()
    terms_of: dict[str, dict[str, Any]] = {}
    for k in kept:
        t = (k.get("provenance") or {}).get("terms") or {"key": "unknown"}
        who = (k.get("provenance") or {}).get("teacher") or k["source"]
        tally[(who, t["key"])] += 1
        terms_of[t["key"]] = t
    items = []
    for (who, key), n in sorted(tally.items()):
        terms = lookup(key).to_dict()
        items.append({"role": "records", "what": f"{n} training records from {who}", "terms": terms,
                      "binding": True, "source": "per-record provenance"})
    return items
