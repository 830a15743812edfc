"""What every recipe stage shares: model identities for content hashes, engines, cost, plots, progress."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ownchat.errors import UserError
from ownchat.progress import labelled
from ownchat.recipe.plan import StageContext
from ownchat.recipe.schema import ModelSpec


def model_identity(ref: str) -> str:
    """What a model reference points at, for content hashes: a pack's sha, a local file's identity."""
    from ownchat.models.packs import PACKS
    from ownchat.recipe.plan import file_digest

    if ref in PACKS:
        return f"pack:{ref}:{PACKS[ref].sha256 or PACKS[ref].packages[0]}"
    path = Path(ref).expanduser()
    if path.exists():
        return f"file:{path.name}:{file_digest(path)}"
    return ref


def spec_settings(spec: ModelSpec | None) -> dict[str, Any] | None:
    if spec is None:
        return None
    return {"model": model_identity(spec.model), "base_url": spec.base_url}


def open_engine(spec: ModelSpec, log, *, engine: str | None = None):
    """An engine for a teacher/judge spec, behind the shared response cache (resume and re-runs are free)."""
    from ownchat.engines import load_engine

    api_key = os.environ.get(spec.api_key_env)
    if spec.remote and not api_key:
        raise UserError(f"{spec.model} is a remote model and ${spec.api_key_env} is not set; "
                        f"export {spec.api_key_env}=... (or point the recipe at a local pack)")
    return load_engine(spec.model, engine, cache=True, base_url=spec.base_url, api_key=api_key,
                       concurrency=spec.concurrency, log=log)


def priced(usage: dict[str, Any], spec: ModelSpec | None) -> dict[str, Any]:
    """Add the money a remote model's tokens cost, by the recipe's declared price per million tokens."""
    from ownchat.engines.pricing import tokens_cost

    u = dict(usage or {})
    if spec is not None and not u.get("cost_usd"):
        u["cost_usd"] = round(tokens_cost(u.get("prompt_tokens", 0), u.get("completion_tokens", 0),
                                          (spec.price.input, spec.price.output)), 6)
    return u


def engine_label(spec: ModelSpec | None, fallback: str = "") -> str:
    if spec is None:
        return fallback
    return f"{spec.model} @ {spec.base_url or 'api.openai.com'} (remote)" if spec.remote else f"{spec.model} (local)"


def recipe_labels(cfg: Any, section: str, options: dict[str, Any]) -> None:
    """A bad value is reported as the recipe names it (``dpo.options.label_smoothing``), not as a flag."""
    from dataclasses import fields

    cfg.given_as({f.name: f"recipe {section}." + ("options." if f.name in options else "") + f.name
                  for f in fields(cfg)})


def bar(ctx: StageContext, label: str):
    """A ``(done, total)`` callback for the stage APIs, shown by the CLI as one progress bar."""
    return labelled(ctx.progress, label)


def model_dir(ctx: StageContext, stage: str | None, fallback: str) -> str:
    """The model a stage starts from: an upstream stage's trained run, or the base reference."""
    return fallback if stage is None else str(ctx.dep_path(stage, "model"))


def samples(path: Path, k: int = 3) -> list[dict[str, Any]]:
    """The first ``k`` readable conversations of a data file, for the report."""
    from ownchat.data.formats import to_messages
    from ownchat.data.jsonl import read_jsonl

    out: list[dict[str, Any]] = []
    if not path.exists():
        return out
    for rec in read_jsonl(path, allow_partial_last_line=True):
        try:
            out.append({"messages": to_messages(rec)})
        except Exception:  # noqa: BLE001 - a sample is decoration; never fail the stage on it
            continue
        if len(out) >= k:
            break
    return out
