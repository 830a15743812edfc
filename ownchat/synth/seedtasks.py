"""Seed tasks in the Self-Instruct seed format, and the records every mode writes.

Seed format (one JSON object a line): ``id, name, instruction, instances: [{input, output}],
is_classification`` and optionally ``language``. ownchat ships its own set (English and Traditional
Chinese) as package data; ``--seeds FILE`` replaces it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ownchat.data.jsonl import read_jsonl
from ownchat.data.lang import matches
from ownchat.errors import DataError

DEFAULT_SEEDS = Path(__file__).parent / "seeds" / "seed_tasks.jsonl"


def load_seeds(path: str | Path | None = None, language: str | None = None) -> list[dict[str, Any]]:
    """Validated seed tasks; with ``language``, only those written in it (all of them if none are)."""
    path = Path(path) if path else DEFAULT_SEEDS
    tasks = []
    for line, rec in enumerate(read_jsonl(path), start=1):
        inst = rec.get("instruction")
        instances = rec.get("instances")
        if not isinstance(inst, str) or not inst.strip():
            raise DataError(path, line, "seed task without an 'instruction'",
                            "use the Self-Instruct seed format: id, name, instruction, instances, is_classification")
        if not isinstance(instances, list) or not instances or not all(
                isinstance(i, dict) and "output" in i for i in instances):
            raise DataError(path, line, "'instances' must be a non-empty list of {input, output}",
                            'e.g. "instances": [{"input": "", "output": "..."}]')
        tasks.append({"id": rec.get("id", f"seed_{line}"), "name": rec.get("name", ""), "instruction": inst.strip(),
                      "instances": [{"input": str(i.get("input", "") or ""), "output": str(i["output"])}
                                    for i in instances],
                      "is_classification": bool(rec.get("is_classification", False)),
                      "language": rec.get("language")})
    if not tasks:
        raise DataError(path, None, "no seed tasks", "add at least a few tasks")
    if language:
        chosen = [t for t in tasks if _in_language(t, language)]
        if chosen:
            return chosen
    return tasks


def _in_language(task: dict[str, Any], language: str) -> bool:
    if task.get("language"):
        return task["language"].split("-")[0] == language.split("-")[0]
    return matches(task["instruction"], language)


def record(rid: str, instruction: str, inp: str, output: str, prov: dict[str, Any],
           **extra: Any) -> dict[str, Any]:
    return {"id": rid, "instruction": instruction, "input": inp, "output": output, **extra, "provenance": prov}
