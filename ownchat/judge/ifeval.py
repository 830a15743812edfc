"""``ownchat eval ifeval``: instruction following measured by code, not by a judge.

IFEval (Zhou et al., 2023) asks for things a program can check: "no commas", "exactly 3 bullet
points", "wrap the answer in JSON". Its 541 prompts come from the ``ifeval`` data pack; the checks
are the reference checkers (``ownchat.judge.ifeval_check``). Outputs in ``out`` (resumable: answers
are appended as they finish, a re-run only asks for the missing ones, and the response cache replays
anything already generated):

- ``config.json``      the settings; resuming with other settings is refused
- ``responses.jsonl``  one answer per prompt (text, finish reason, tokens)
- ``scores.jsonl``     per prompt: each instruction's strict and loose verdict (re-checked every run)
- ``summary.json``, ``report.md``, ``by_instruction.png``  (``ownchat.judge.ifeval_score``)

``--subset N`` takes the first N prompts of a fixed order (``spread``), so small runs are nested and
comparable: every subset of 100 is the same 100 prompts, and the first 50 of them are the subset of 50.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ownchat.data.jsonl import JsonlWriter, read_jsonl
from ownchat.data.outdir import claim_out_dir
from ownchat.engines.base import ChatRequest, Engine, SamplingParams, UsageMeter
from ownchat.errors import DataError, UserError

Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass(frozen=True)
class Item:
    key: int
    prompt: str
    instruction_ids: tuple[str, ...]
    kwargs: tuple[dict[str, Any], ...]

    @property
    def family(self) -> str:
        """The family of the first instruction ("detectable_format", "keywords", ...)."""
        return self.instruction_ids[0].split(":")[0]


def data_path() -> Path:
    """IFEval's prompts from the offline pack (pulled on first use)."""
    from ownchat.models.store import installed, pull

    inst = installed("ifeval") or pull("ifeval")
    return inst.path


def load_items(path: str | Path | None = None) -> list[Item]:
    path = Path(path) if path else data_path()
    items = []
    for line, rec in enumerate(read_jsonl(path), start=1):
        ids, kwargs = rec.get("instruction_id_list"), rec.get("kwargs")
        if not isinstance(rec.get("prompt"), str) or not isinstance(ids, list) or not ids:
            raise DataError(path, line, "record needs 'prompt' and a non-empty 'instruction_id_list'",
                            'IFEval format: {"key": 1, "prompt": "...", "instruction_id_list": [...], "kwargs": [...]}')
        if not isinstance(kwargs, list) or len(kwargs) != len(ids):
            raise DataError(path, line, "'kwargs' must be a list with one object per instruction", "")
        items.append(Item(int(rec.get("key", line)), rec["prompt"], tuple(ids),
                          tuple({k: v for k, v in kw.items() if v is not None} for kw in kwargs)))
    if not items:
        raise DataError(path, None, "no prompts in the file", "one JSON object per line")
    return items


def spread(items: list[Item], n: int | None = None) -> list[Item]:
    """A fixed order that deals prompts round-robin over the instruction families.

    Prompts are grouped by the family of their first instruction (nine families in IFEval), sorted
    by key inside a group, and dealt one per family in turn (families in alphabetical order). The
    first N of this order cover every family in proportion, and subsets are nested.
    """
    groups: dict[str, list[Item]] = defaultdict(list)
    for it in sorted(items, key=lambda i: i.key):
        groups[it.family].append(it)
    order: list[Item] = []
    queues = [groups[f] for f in sorted(groups)]
    depth = 0
    while len(order) < len(items):
        order += [q[depth] for q in queues if depth < len(q)]
        depth += 1
    if n is not None and n <= 0:
        raise UserError("--subset must be > 0")
    return order[:n] if n else order


@dataclass
class IFEvalConfig:
    model: str
    out: Path
    data: str | None = None  # an IFEval-format JSONL; default the pack's 541 prompts
    subset: int | None = None
    max_tokens: int = 512
    engine: str | None = None
    concurrency: int | None = None
    cache: bool | str = True
    label: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # engine options, e.g. chat_template

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["out"] = str(self.out)
        return d


_MUST_MATCH = ("model", "data", "max_tokens", "engine", "extra")


def _done(path: Path) -> dict[int, dict[str, Any]]:
    return {r["key"]: r for r in read_jsonl(path, allow_partial_last_line=True)} if path.exists() else {}


def evaluate_ifeval(cfg: IFEvalConfig, log: Callable[[str], None] = print, *, engine: Engine | None = None,
                    on_progress: Progress | None = None) -> dict[str, Any]:
    """Answer the chosen prompts (greedy), check every instruction, write the report; return the summary."""
    from ownchat.judge.ifeval_score import score_run, write_ifeval_report

    items = spread(load_items(cfg.data), cfg.subset)
    claim_out_dir(cfg.out, cfg.to_dict(), _MUST_MATCH, "an IFEval run")
    path = cfg.out / "responses.jsonl"
    done = _done(path)
    todo = [it for it in items if it.key not in done]
    meter = UsageMeter()
    t0 = time.perf_counter()
    if todo:
        own = engine is None
        if engine is None:
            from ownchat.engines import load_engine

            engine = load_engine(cfg.model, cfg.engine, cache=cfg.cache, concurrency=cfg.concurrency, log=log,
                                 **cfg.extra)
        try:
            _generate(engine, cfg, items, todo, done, path, meter, on_progress)
        finally:
            if own:
                engine.close()
    seconds = round(time.perf_counter() - t0, 1)
    missing = [it.key for it in items if it.key not in done]
    if missing:
        raise UserError(f"{len(missing)} request(s) failed (e.g. key {missing[0]}); run again to retry them")
    summary = score_run(items, done, cfg.out, label=cfg.label or cfg.model, on_progress=on_progress)
    summary.update(config=cfg.to_dict(), timings_s={"generate": seconds}, usage=meter.snapshot())
    write_ifeval_report(summary, cfg.out)
    return summary


def _generate(engine: Engine, cfg: IFEvalConfig, items: list[Item], todo: list[Item], done: dict[int, Any],
              path: Path, meter: UsageMeter, on_progress: Progress | None) -> None:
    params = SamplingParams(temperature=0.0, max_tokens=cfg.max_tokens)
    count = len(items) - len(todo)
    if on_progress:
        on_progress("answering", count, len(items))
    with JsonlWriter(path) as w:
        reqs = (ChatRequest.chat([{"role": "user", "content": it.prompt}], params) for it in todo)
        for i, comp in engine.generate_many(reqs, concurrency=cfg.concurrency):
            meter.add(comp)
            count += 1
            if comp.ok:  # a failed request is retried next run instead of being scored as a failure
                rec = {"key": todo[i].key, "text": comp.text, "finish_reason": comp.finish_reason,
                       "prompt_tokens": comp.prompt_tokens, "completion_tokens": comp.completion_tokens}
                w.write(rec)
                done[todo[i].key] = rec
            if on_progress:
                on_progress("answering", count, len(items))
