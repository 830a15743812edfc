"""Provenance stamped on every record ownchat writes: who made it, how, under which terms."""

from __future__ import annotations

import time
from typing import Any

from ownchat.engines.base import Engine, SamplingParams
from ownchat.licensing import teacher_terms


def engine_license(engine: Engine) -> str | None:
    inner = getattr(engine, "inner", engine)
    return getattr(inner, "license", None)


def provenance(engine: Engine, *, template: str, params: SamplingParams, stage: str,
               **extra: Any) -> dict[str, Any]:
    inner = getattr(engine, "inner", engine)
    terms = teacher_terms(inner.name, engine_license(engine), getattr(inner, "base_url", None))
    return {
        "stage": stage,
        "teacher": getattr(inner, "model_name", inner.model_id),
        "model_id": inner.model_id,
        "engine": inner.name,
        "template": template,
        "params": params.to_dict(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "terms": {"key": terms.key, "commercial": terms.commercial, "note": terms.note},
        **extra,
    }
