"""More constrained examples without more teacher calls: a checked answer, rewritten by a program.

A teacher answer that passed its constraints is a good answer to a slightly harder request too: ask
for the same thing in lowercase, in quotes, as exactly three points, with a title or a closing
sentence, and the answer can be rewritten to match by code (lowercased, quoted, split into points,
titled...). Each variant adds one constraint from ``ownchat.synth.constraints`` (its wording, its
IFEval id) and keeps the record only if IFEval's checker passes *every* constraint of the new request
on the rewritten answer, so nothing here is trusted by construction alone.

Why: a small student learns the shape of a constraint from many examples of it, and a teacher call
costs seconds (about 9 s per kept answer for the Qwen pack on 2 cores) where a rewrite costs
microseconds. The rewrites only move text the teacher wrote; they invent no facts. Variants derive
from training records only (the data stage applies this after the held-out split), and their
provenance names the record they came from, so the licence of the teacher's output carries over.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from typing import Any

from ownchat.data.dedup import tokenize
from ownchat.synth import constraints as cons

VERSION = "rewrite/v1"

_AFTERTHOUGHTS = ("I can expand on any part of this if you like.", "A shorter version is possible too.",
                  "Say the word and I will add an example.", "Questions are welcome.")


def _sentences(text: str) -> list[str]:
    flat = re.sub(r"\s+", " ", text).strip()
    return [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])", flat) if s]


def _groups(items: list[str], n: int) -> list[list[str]] | None:
    """``items`` in ``n`` consecutive, non-empty groups of near-equal size."""
    if len(items) < n:
        return None
    size, extra = divmod(len(items), n)
    out, i = [], 0
    for k in range(n):
        j = i + size + (k < extra)
        out.append(items[i:j])
        i = j
    return out


def _plain(answer: str) -> bool:
    """Prose we can restructure: no code, no markup, no list already."""
    return "```" not in answer and "*" not in answer and not re.search(r"^\s*(\d+[.)]|[-•])\s", answer, re.M)


def _title_of(instruction: str) -> str | None:
    words = [w for w in tokenize(instruction) if w.isalpha() and len(w) >= 4 and w not in cons.STOPWORDS]
    seen = list(dict.fromkeys(words))[:3]
    return " ".join(w.capitalize() for w in seen) if seen else None


def _bullets(answer: str, c: cons.Constraint, _: str, __: random.Random) -> str | None:
    groups = _groups(_sentences(answer), c.kwargs["num_bullets"]) if _plain(answer) else None
    return "\n".join("* " + " ".join(g) for g in groups) if groups else None


def _parts(answer: str, c: cons.Constraint, _: str, __: random.Random) -> str | None:
    groups = _groups(_sentences(answer), c.kwargs["num_sections"]) if "```" not in answer else None
    if not groups:
        return None
    label = c.kwargs["section_spliter"]
    return "\n\n".join(f"{label} {i}\n{' '.join(g)}" for i, g in enumerate(groups, 1))


def _highlights(answer: str, c: cons.Constraint, _: str, __: random.Random) -> str | None:
    if not _plain(answer):
        return None
    n = c.kwargs["num_highlights"]
    words = [w for w in dict.fromkeys(re.findall(r"\b[A-Za-z]{6,}\b", answer)) if w.lower() not in cons.STOPWORDS]
    if len(words) < n:
        return None
    for w in words[:n]:  # the first long words, in reading order: usually the subject of the answer
        answer = re.sub(rf"\b{re.escape(w)}\b", f"*{w}*", answer, count=1)
    return answer


def _title(answer: str, _: cons.Constraint, instruction: str, __: random.Random) -> str | None:
    title = _title_of(instruction)
    return f"<<{title}>>\n\n{answer}" if title and not answer.lstrip().startswith("<<") else None


def _json(answer: str, *_: Any) -> str | None:
    return json.dumps({"answer": answer}, ensure_ascii=False, indent=2)


def _no_comma(answer: str, *_: Any) -> str | None:
    return re.sub(r",", "", re.sub(r",\s+", " ", answer)) if "```" not in answer else None


def _postscript(answer: str, c: cons.Constraint, _: str, rng: random.Random) -> str | None:
    return f"{answer.rstrip()}\n\n{c.kwargs['postscript_marker']} {rng.choice(_AFTERTHOUGHTS)}"


def _unchanged(answer: str, *_: Any) -> str | None:
    return answer  # keywords, forbidden words, word counts: kept only when the answer already complies


#: template name -> rewrite(answer, constraint, instruction, rng); the language template has none.
REWRITES: dict[str, Callable[[str, cons.Constraint, str, random.Random], str | None]] = {
    "lowercase": lambda a, *_: a.lower(),
    "uppercase": lambda a, *_: a.upper(),
    "quotes": lambda a, *_: f'"{a.strip()}"',
    "end_phrase": lambda a, c, *_: f"{a.rstrip()}\n\n{c.kwargs['end_phrase']}",
    "postscript": _postscript,
    "title": _title,
    "json": _json,
    "no_comma": _no_comma,
    "bullets": _bullets,
    "parts": _parts,
    "highlights": _highlights,
    "keywords": _unchanged,
    "forbidden_words": _unchanged,
    "words_under": _unchanged,
    "words_at_least": _unchanged,
}

def rewrite_record(rec: dict[str, Any], rng: random.Random, k: int) -> list[dict[str, Any]]:
    """Up to ``k`` checked variants of one single-turn English training record."""
    from ownchat.judge.ifeval_check import check

    msgs = rec["messages"]
    users = [m for m in msgs if m["role"] == "user"]
    answers = [m for m in msgs if m["role"] == "assistant"]
    prov = rec.get("provenance") or {}
    if len(users) != 1 or len(answers) != 1 or prov.get("language", "en") != "en":
        return []
    old = list(prov.get("constraints") or [])
    old_cs = [cons.Constraint(c["id"], c["kwargs"], c["text"]) for c in old]
    instruction = cons.instruction_of(users[0]["content"], [c.text for c in old_cs])
    taken = {n for c in old for n in cons.templates_by_id().get(c["id"], ())}
    system = [m for m in msgs if m["role"] == "system"]
    # rewrites that change the text first: they teach a visible behaviour; the others only pair the
    # same answer with a request it already meets
    moved = sorted(n for n in REWRITES if REWRITES[n] is not _unchanged)
    kept = sorted(n for n in REWRITES if REWRITES[n] is _unchanged)
    rng.shuffle(moved)
    rng.shuffle(kept)
    names = moved + kept
    out: list[dict[str, Any]] = []
    for name in names:
        if len(out) >= k:
            break
        if name in taken or any(frozenset((name, t)) in cons.CLASHES for t in taken):
            continue
        for _ in range(6):  # counts are drawn at random: a few draws find one the answer can meet
            c = cons.TEMPLATES[name](rng, instruction)
            new = REWRITES[name](answers[0]["content"], c, instruction, rng) if c else None
            if not c or not new:
                continue
            every = [*old_cs, c]
            prompt = cons.render(instruction, every)
            if check(new, prompt, [x.instruction_id for x in every], [x.kwargs for x in every]).prompt_strict:
                out.append({"id": f"{rec['id']}~{name}", "source": rec.get("source", "synth"),
                            "messages": [*system, {"role": "user", "content": prompt},
                                         {"role": "assistant", "content": new}],
                            "provenance": {**prov, "constraints": [*old, c.to_dict()],
                                           "rewrite": {"of": rec["id"], "added": name, "by": VERSION}}})
                break
    return out


def rewrite_all(records: list[dict[str, Any]], k: int, seed: int) -> list[dict[str, Any]]:
    """Variants for every record, each record's drawn from its own seeded generator (stable on rerun)."""
    out = []
    for rec in records:
        out += rewrite_record(rec, random.Random(f"{seed}:{VERSION}:{rec['id']}"), k)
    return out
