"""Answer a JSONL file of prompts with any engine, resumably.

Each input line holds ``messages`` or ``prompt`` (Alpaca/Dolly/ShareGPT records work too; a trailing
assistant turn is treated as the reference answer and not sent). Each output line is the input record
plus ``output``, ``finish_reason``, ``usage``, ``input_line`` and ``provenance``, appended as soon as it
is ready. A re-run skips records already in the output (matched by ``id`` when the input has one, else
by input line), so a crash or an unreachable teacher costs nothing already paid for.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ownchat.data.formats import to_messages
from ownchat.data.jsonl import JsonlWriter, read_jsonl
from ownchat.data.provenance import provenance
from ownchat.engines.base import ChatRequest, Engine, EngineError, SamplingParams, UsageMeter
from ownchat.errors import DataError


@dataclass
class GenerateConfig:
    params: SamplingParams = field(default_factory=SamplingParams)
    concurrency: int | None = None  # default: what the engine says it can take
    system: str | None = None  # prepended to chat records that have no system message
    completion: bool = False  # ``prompt`` records are raw text (base models), not a user turn
    #: stop early, keeping everything written, when this many requests fail in a row (teacher down)
    max_consecutive_errors: int = 8


@dataclass
class GenerateResult:
    out: Path
    total: int
    written: int
    skipped: int  # already in the output from an earlier run
    errors: int
    seconds: float
    usage: dict[str, float]
    hosts: list[str]  # where prompts were sent ([] for local engines): the privacy ledger reads this

    @property
    def tokens_per_s(self) -> float:
        return self.usage.get("completion_tokens", 0) / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["out"] = str(self.out)
        return d


@dataclass
class PromptItem:
    key: tuple[str, Any]
    line: int
    record: dict[str, Any]
    request: ChatRequest


def record_key(record: dict[str, Any], line: int) -> tuple[str, Any]:
    return ("id", json.dumps(record["id"])) if "id" in record else ("line", line)


def load_prompts(path: str | Path, config: GenerateConfig) -> list[PromptItem]:
    """Parse every line up front, so a malformed line 900 fails before any money is spent."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, None, "file not found", "check the path")
    items = []
    with open(path, encoding="utf-8") as f:
        for line_no, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise DataError(path, line_no, f"invalid JSON ({exc.msg} at column {exc.colno})",
                                "each line must be one JSON object") from None
            if not isinstance(rec, dict):
                raise DataError(path, line_no, f"expected a JSON object, got {type(rec).__name__}",
                                'use {"messages": [...]} or {"prompt": "..."}')
            items.append(PromptItem(record_key(rec, line_no), line_no, rec, _request(rec, path, line_no, config)))
    return items


def _request(rec: dict[str, Any], path: Path, line: int, config: GenerateConfig) -> ChatRequest:
    if config.completion and "prompt" in rec and "messages" not in rec:
        if not isinstance(rec["prompt"], str):
            raise DataError(path, line, "'prompt' must be a string", "")
        return ChatRequest.completion(rec["prompt"], config.params)
    msgs = to_messages(rec, where=(path, line), require_answer=False)
    while msgs and msgs[-1]["role"] == "assistant":
        msgs = msgs[:-1]  # the reference answer: we generate our own
    if not msgs:
        raise DataError(path, line, "no user message to answer", 'add {"role": "user", "content": ...}')
    if config.system and msgs[0]["role"] != "system":
        msgs = [{"role": "system", "content": config.system}, *msgs]
    return ChatRequest.chat(msgs, config.params)


def done_keys(out: Path) -> set[tuple[str, Any]]:
    if not out.exists():
        return set()
    return {record_key(r, r.get("input_line", -1)) for r in read_jsonl(out, allow_partial_last_line=True)}


def generate_file(engine: Engine, inp: str | Path, out: str | Path, config: GenerateConfig | None = None, *,
                  log: Callable[[str], Any] = print,
                  on_record: Callable[[int, int, UsageMeter], None] | None = None) -> GenerateResult:
    """Generate an answer for every prompt in ``inp`` not yet in ``out``; returns counts and usage.

    ``on_record(done, total, meter)`` is called after each record (progress bars). Raises EngineError
    after ``max_consecutive_errors`` failures in a row; what was written stays written.
    """
    config = config or GenerateConfig()
    out = Path(out)
    items = load_prompts(inp, config)
    seen = done_keys(out)
    todo = [it for it in items if it.key not in seen]
    skipped = len(items) - len(todo)
    if skipped:
        log(f"resuming: {skipped} of {len(items)} records already in {out}")
    meter = UsageMeter()
    prov = provenance(engine, template="generate", params=config.params, stage="generate")
    inner = getattr(engine, "inner", engine)
    hosts = list(getattr(inner, "base_urls", []) or [])
    written = errors = streak = 0
    last_error = ""
    t0 = time.time()
    with JsonlWriter(out) as writer:
        stream = engine.generate_many((it.request for it in todo), concurrency=config.concurrency)
        try:
            for i, comp in stream:
                meter.add(comp)
                if comp.error:
                    errors += 1
                    streak += 1
                    last_error = comp.error
                else:
                    streak = 0
                    it = todo[i]
                    writer.write({**it.record, "output": comp.text, "finish_reason": comp.finish_reason,
                                  "usage": comp.usage(), "cached": comp.cached, "input_line": it.line,
                                  "provenance": prov})
                    written += 1
                if on_record:
                    on_record(skipped + written + errors, len(items), meter)
                if streak >= config.max_consecutive_errors:
                    raise EngineError(
                        f"stopped after {streak} failed requests in a row; last error: {last_error}. "
                        f"{skipped + written} of {len(items)} records are in {out}: run the same command "
                        "again to resume.")
        finally:
            _close(stream)
    if errors:
        log(f"{errors} request(s) failed (last: {last_error}); run again to retry them")
    usage = meter.snapshot()
    if hasattr(inner, "meter"):  # remote engines count retries and money themselves
        usage["retries"] = inner.meter.retries
        usage["cost_usd"] = round(inner.meter.cost_usd, 6)
    return GenerateResult(out, len(items), written, skipped, errors, time.time() - t0, usage, hosts)


def _close(gen: Iterator[Any]) -> None:
    close = getattr(gen, "close", None)
    if close:
        close()
