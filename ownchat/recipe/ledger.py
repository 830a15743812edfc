"""The licence ledger (what binds each trained model) and the privacy ledger (what left the machine).

Licence: the base model's licence, each teacher's terms, every human data file's licence (declared in
the recipe or in a ``FILE.license`` sidecar; unknown stays unknown) and the per-record provenance the
stages tallied. The verdict is plain: cleared for commercial use, not cleared (and why), or unknown.

Privacy: one entry per stage and remote host that was sent data: requests, tokens and which records.
Local engines add no entry, so a run on offline packs shows an empty list and says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ownchat.licensing import Terms, lookup, teacher_terms
from ownchat.recipe.plan import StageResult
from ownchat.recipe.schema import ModelSpec, Recipe


def model_licence(ref: str, declared: str | None = None) -> str:
    """A model reference's licence without downloading it: recipe field, pack table, ownchat.json."""
    if declared:
        return declared
    from ownchat.models.packs import PACKS
    from ownchat.models.resolve import _sidecar_license

    if ref in PACKS:
        return PACKS[ref].license
    path = Path(ref).expanduser()
    if path.exists():
        return _sidecar_license(path if path.is_dir() else path.parent)
    return "unknown"


def data_licence(recipe: Recipe, path: str, declared: str | None) -> tuple[str, str]:
    """(licence, where it was declared) for a user data file."""
    if declared:
        return declared, "recipe"
    side = recipe.resolve_path(path + ".license")
    if side.exists():
        text = side.read_text(encoding="utf-8").strip().splitlines()
        if text and text[0].strip():
            return text[0].strip(), side.name
    return "unknown", "not declared (add license: to the recipe or a FILE.license file)"


def spec_terms(spec: ModelSpec) -> Terms:
    engine = "openai" if spec.remote else "local"
    base_url = spec.base_url[0] if isinstance(spec.base_url, list) else spec.base_url
    if spec.remote and base_url is None:
        base_url = "https://api.openai.com/v1"
    if spec.license:
        return lookup(spec.license)
    return teacher_terms(engine, model_licence(spec.model), base_url)


def _item(role: str, what: str, terms: Terms, *, binding: bool, source: str = "") -> dict[str, Any]:
    return {"role": role, "what": what, "terms": terms.to_dict(), "binding": binding, "source": source}


def licence_ledger(recipe: Recipe, results: dict[str, StageResult] | None = None) -> dict[str, Any]:
    """Per student: every item that binds its weights, and a verdict. Works before a run (dry run) too."""
    results = results or {}
    shared: list[dict[str, Any]] = []
    if recipe.teacher and recipe.synth:
        shared.append(_item("teacher", recipe.teacher.model, spec_terms(recipe.teacher), binding=True,
                            source="wrote the training data"))
    if recipe.synth and recipe.synth.mix_sharegpt:
        # mixed in verbatim: ChatGPT's answers, bound by OpenAI's terms whatever the teacher is
        shared.append(_item("data", f"sharegpt pack ({recipe.synth.mix_sharegpt} conversations, synth.mix_sharegpt)",
                            lookup("sharegpt"), binding=True, source="people's questions with ChatGPT's answers"))
    for f in recipe.data:
        lic, where = data_licence(recipe, f.path, f.license)
        shared.append(_item("data", f.path, lookup(lic), binding=True, source=where))
    fb_judge = recipe.judge_model(recipe.feedback) if recipe.feedback else None
    if fb_judge:
        shared.append(_item("feedback judge", fb_judge.model, spec_terms(fb_judge), binding=True,
                            source="its scores chose the DPO pairs"))
    ev_judge = recipe.judge_model(recipe.judge) if recipe.judge else None
    if ev_judge:
        shared.append(_item("evaluation judge", ev_judge.model, spec_terms(ev_judge), binding=False,
                            source="grades only; nothing it writes is trained on"))
    records = [lic for r in results.values() for lic in r.licences]
    students = {}
    for s in recipe.students:
        base = _item("base model", s.base, lookup(model_licence(s.base, s.license)), binding=True)
        items = [base, *shared, *records]
        students[s.name] = {"items": items, **verdict(items)}
    return {"students": students}


def verdict(items: list[dict[str, Any]]) -> dict[str, Any]:
    binding = [i for i in items if i["binding"]]
    blocked = [i for i in binding if i["terms"]["commercial"] is False]
    unknown = [i for i in binding if i["terms"]["commercial"] is None]
    conditions = sorted({f"{i['terms']['name']}: {i['terms']['note']}" for i in binding
                         if i["terms"]["commercial"] and i["terms"]["key"] not in ("apache-2.0", "mit")})
    if blocked:
        why = "; ".join(f"{i['role']} {i['what']} ({i['terms']['name']}: {i['terms']['note']})" for i in blocked)
        return {"verdict": "not cleared", "text": f"Not cleared for commercial use: {why}.", "conditions": conditions}
    if unknown:
        why = "; ".join(f"{i['role']} {i['what']} has no known licence" for i in unknown)
        return {"verdict": "unknown", "text": f"Not cleared for commercial use until resolved: {why}.",
                "conditions": conditions}
    text = "Cleared for commercial use" + (" under these conditions: " + " | ".join(conditions) if conditions
                                           else " (permissive licences only; keep the notices).")
    return {"verdict": "cleared", "text": text, "conditions": conditions}


def privacy_ledger(results: dict[str, StageResult], stage_order: list[str]) -> dict[str, Any]:
    entries = []
    for name in stage_order:
        r = results.get(name)
        for e in (r.privacy if r else []):
            entries.append({"stage": name, **e})
    hosts = sorted({e["host"] for e in entries})
    if entries:
        text = (f"Data left this machine: {len(entries)} stage/host pair(s) sent "
                f"{sum(e.get('requests', 0) for e in entries):,} requests to {', '.join(hosts)}.")
    else:
        text = ("Nothing left this machine: every engine in every stage was local, and no stage recorded "
                "a request to any host (the list below is empty).")
    return {"entries": entries, "hosts": hosts, "text": text, "left_machine": bool(entries)}


def remote_entry(spec: ModelSpec | None, role: str, usage: dict[str, Any], records: dict[str, Any],
                 hosts: list[str] | None = None) -> list[dict[str, Any]]:
    """Privacy entries for a stage that used ``spec`` (none when it is local and nothing else was reported)."""
    from urllib.parse import urlparse

    found = set(hosts or [])
    if spec is not None and spec.remote:
        urls = spec.base_url if isinstance(spec.base_url, list) else [spec.base_url or "https://api.openai.com/v1"]
        found |= {urlparse(u).netloc or u for u in urls}
    sent = {k: usage.get(k, 0) for k in ("requests", "cached", "prompt_tokens", "completion_tokens", "cost_usd")}
    # cached replies were answered from the local cache: they did not go out again on this run
    return [{"role": role, "host": h, "model": spec.model if spec else "", **sent, "records": records}
            for h in sorted(found)]


def model_card(recipe: Recipe, ledger: dict[str, Any], privacy: dict[str, Any], serve_cmds: dict[str, str]) -> str:
    lines = [f"# Model card: {recipe.name}", "", recipe.description or "", ""]
    for name, s in ledger["students"].items():
        lines += [f"## {name}", "", f"**Licence verdict:** {s['text']}", "",
                  "| role | what | terms | commercial | binds the weights | note |", "|---|---|---|---|---|---|"]
        for i in s["items"]:
            t = i["terms"]
            com = {True: "yes", False: "no", None: "unknown"}[t["commercial"]]
            lines.append(f"| {i['role']} | {i['what']} | {t['name']} | {com} | {'yes' if i['binding'] else 'no'} "
                         f"| {t['note']} {('(' + i['source'] + ')') if i.get('source') else ''} |")
        if name in serve_cmds:
            lines += ["", f"Serve it: `{serve_cmds[name]}`"]
        lines.append("")
    lines += ["## Privacy", "", privacy["text"], ""]
    for e in privacy["entries"]:
        lines.append(f"- {e['stage']}: {e['host']} ({e.get('model', '')}): {e.get('requests', 0)} requests, "
                     f"{e.get('prompt_tokens', 0):,} prompt + {e.get('completion_tokens', 0):,} completion tokens")
    return "\n".join(lines) + "\n"
