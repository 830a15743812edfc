"""The loop every synth mode shares: a rolling queue of jobs, resume after ``kill -9``, budgets, stats.

A mode splits its work into numbered **units** (one instruction to answer, one Alpaca batch, one
conversation, one Self-Instruct proposal). Each unit is a job (``ownchat.engines.rolling``): the
teacher's slots are kept full by starting later units while earlier ones finish, and finished units
are **committed in unit order**: filters that look at what was kept (ROUGE-L), the written records,
the counts and the budget checks all happen in that order, so a run's output does not depend on
which answer came back first.

Everything a unit asks the teacher is a pure function of (config, unit number, what units up to
``unit - lag - 1`` kept), so replaying a unit after a crash sends byte-identical requests, which the
response cache answers for free. Records are appended (fsynced) as their unit commits, and
``OUT.stats.json`` is rewritten atomically after each commit with the number of units done. On
restart, units <= that number are restored from the output file and the next unit is replayed:
records it already wrote are recognised by id and not written twice.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ownchat.engines.base import ChatRequest, Completion, Engine, SamplingParams
from ownchat.errors import UserError
from ownchat.synth.filters import FilterConfig, Filters

Log = Callable[[str], None]
#: the scheduler's version: files written by the old round-based runner are not resumed by this one
SCHEDULER = "rolling-v1"


@dataclass
class SynthConfig:
    mode: str  # self-instruct | alpaca | answer | chat
    out: Path
    teacher: str = "qwen2.5-coder-1.5b-instruct"
    n: int = 100
    seeds: Path | None = None  # seed tasks (self-instruct format); default: the shipped ones
    inputs: Path | None = None  # answer mode: instructions/conversations; chat mode: topics (optional)
    language: str = "en"
    topic: str | None = None
    concurrency: int = 4
    max_cost: float | None = None  # USD, remote priced teachers
    max_tokens: int | None = None  # teacher tokens (prompt + completion) for the whole dataset
    seed: int = 0
    temperature: float = 0.7
    top_p: float = 0.95
    gen_tokens: int = 1024  # per request
    batch_size: int = 20  # alpaca mode: triples asked for per request
    turns: int = 3  # chat mode: user/assistant exchanges per conversation
    system: str | None = None  # answer mode: optional system prompt for the teacher
    constraints: bool = False  # answer mode: add verifiable constraints, keep only answers that pass
    constraint_samples: int = 4  # answer --constraints: samples per instruction before giving up
    mix_sharegpt: int = 0  # also append this many ShareGPT conversations (ChatGPT's answers; OpenAI terms)
    engine: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    cache: bool | str | Path = True
    filters: FilterConfig = field(default_factory=FilterConfig)
    max_stalled_rounds: int = 25  # stop when this many rounds' worth of units (x concurrency) keep nothing

    def fingerprint(self) -> dict[str, Any]:
        """What must not change between a run and its resumption (n, budgets and the mix may)."""
        return {"mode": self.mode, "teacher": self.teacher, "language": self.language, "topic": self.topic,
                "seed": self.seed, "temperature": self.temperature, "top_p": self.top_p,
                "gen_tokens": self.gen_tokens, "turns": self.turns,
                "batch_size": self.batch_size, "concurrency": self.concurrency,
                "seeds": str(self.seeds) if self.seeds else None,
                "inputs": str(self.inputs) if self.inputs else None,
                "constraints": self.constraints,
                "constraint_samples": self.constraint_samples if self.constraints else None,
                "scheduler": SCHEDULER}


@dataclass
class SynthResult:
    out: Path
    stats_path: Path
    kept: int
    filtered: dict[str, int]
    candidates: int
    units: int
    usage: dict[str, float]
    teacher_tokens: int
    cost_usd: float
    wall_s: float
    stopped: str
    hosts: list[str]
    checks: dict[str, int] = field(default_factory=dict)  # e.g. constraint verdicts per instruction id
    mixed: dict[str, int] = field(default_factory=dict)  # records mixed in from data packs

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["out"], d["stats_path"] = str(self.out), str(self.stats_path)
        return d


@dataclass
class Outcome:
    """What one unit produced: candidate records and the reasons it dropped the others."""

    records: list[dict[str, Any]] = field(default_factory=list)
    rejects: Counter = field(default_factory=Counter)
    candidates: int = 0
    checks: Counter = field(default_factory=Counter)
    extra: dict[str, Any] = field(default_factory=dict)  # mode-specific, read back by Mode.commit


#: a unit's job: yields lists of requests, gets their completions, returns an Outcome
UnitJob = Generator[Sequence[ChatRequest], list[Completion], Outcome]


def stats_path_for(out: Path) -> Path:
    return out.with_name(out.stem + ".stats.json") if out.suffix else out.with_name(out.name + ".stats.json")


def derive_seed(base: int, *parts: object) -> int:
    """A stable 31-bit seed per (run seed, unit, index...): requests replay exactly after a crash."""
    h = hashlib.sha256(json.dumps([base, *parts]).encode()).digest()
    return int.from_bytes(h[:4], "big") & 0x7FFFFFFF


class Teacher:
    """The engine, the run's sampling defaults, and prices for priced remote teachers."""

    def __init__(self, engine: Engine, cfg: SynthConfig) -> None:
        self.engine = engine
        self.cfg = cfg
        inner = getattr(engine, "inner", engine)
        self._prices = getattr(inner, "prices", None)
        self._model_name = getattr(inner, "model_name", inner.model_id)

    def params(self, *key: object, temperature: float | None = None, max_tokens: int | None = None,
               stop: Sequence[str] = ()) -> SamplingParams:
        return SamplingParams(temperature=self.cfg.temperature if temperature is None else temperature,
                              top_p=self.cfg.top_p, max_tokens=max_tokens or self.cfg.gen_tokens,
                              seed=derive_seed(self.cfg.seed, *key), stop=tuple(stop))

    def chat(self, messages: list[dict[str, str]], params: SamplingParams, sample_index: int = 0) -> ChatRequest:
        return ChatRequest.chat(messages, params, sample_index=sample_index)

    def usage(self, comp: Completion) -> Counter:
        u = Counter(requests=1, cached=int(comp.cached), errors=int(comp.error is not None),
                    prompt_tokens=comp.prompt_tokens, completion_tokens=comp.completion_tokens,
                    teacher_tokens=comp.prompt_tokens + comp.completion_tokens)
        if self._prices is not None:
            u["cost_usd"] = self._prices.cost(self._model_name, comp.prompt_tokens, comp.completion_tokens)
        return u


class Mode:
    """One synth mode: ``job(unit)`` asks the teacher, ``commit`` decides in unit order."""

    name = "mode"
    #: unit u may read state committed by units <= u - lag - 1 (None: units are independent)
    lag: int | None = None
    #: most records one unit can yield (None: unknown); lets the runner avoid starting useless units
    max_per_unit: int | None = None

    def __init__(self, cfg: SynthConfig, teacher: Teacher, filters: Filters, log: Log) -> None:
        self.cfg, self.teacher, self.filters, self.log = cfg, teacher, filters, log
        self._index_units: list[int] = []  # the unit of each text kept in the ROUGE-L index, in order
        self._index_base = 0  # texts indexed before any unit (seed tasks)

    def restore(self, kept: list[dict[str, Any]]) -> None:
        """Rebuild state (task pool, ROUGE-L index) from records kept by committed units."""
        for rec in kept:
            if rec.get("instruction"):
                self.keep(rec["instruction"], _unit_of(rec) or 0)

    def keep(self, text: str, unit: int) -> None:
        """Index a kept instruction (for ROUGE-L), remembering which unit kept it."""
        self.filters.keep(text)
        self._index_units.append(unit)

    def index_as_of(self, unit: int) -> int:
        """How many texts the ROUGE-L index held once units <= ``unit - lag - 1`` had committed.

        A unit's early checks look only that far (``Filters.check_similar(upto=...)``): later units
        may or may not have committed when it runs, and its decisions must not depend on timing.
        """
        import bisect

        return self._index_base + bisect.bisect_right(self._index_units, unit - (self.lag or 0) - 1)

    def units(self) -> int | None:
        """How many units the input allows (None: as many as it takes)."""
        return None

    def job(self, unit: int) -> UnitJob:  # pragma: no cover - interface
        raise NotImplementedError

    def commit(self, unit: int, outcome: Outcome, need: int) -> list[dict[str, Any]]:
        """The unit's records to write, at most ``need`` (default: as the job produced them)."""
        return outcome.records[:need]


def _atomic_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


_USAGE = ("teacher_tokens", "cost_usd", "requests", "cached", "errors", "prompt_tokens", "completion_tokens")


def run_units(cfg: SynthConfig, mode: Mode, teacher: Teacher, filters: Filters, log: Log,
              on_kept: Callable[[int, int], None] | None = None) -> SynthResult:
    """Drive ``mode`` until ``cfg.n`` records, a budget, the end of the input, or a long stall."""
    from ownchat.data.jsonl import JsonlWriter, read_jsonl
    from ownchat.engines.rolling import run_jobs

    out = Path(cfg.out)
    stats_path = stats_path_for(out)
    state: dict[str, Any] = {"units_done": 0, "kept": 0, "filtered": {}, "checks": {}, "candidates": 0,
                             "wall_s": 0.0, **dict.fromkeys(_USAGE, 0)}
    existing: list[dict[str, Any]] = list(read_jsonl(out, allow_partial_last_line=True)) if out.exists() else []
    synth_records = [r for r in existing if not _mixed(r)]
    if stats_path.exists() and existing:
        saved = json.loads(stats_path.read_text(encoding="utf-8"))
        if saved.get("config") != cfg.fingerprint():
            raise UserError(f"{out} was written by a different synth run ({saved.get('config')}); "
                            "use another --out, or delete it and its .stats.json to start over")
        state.update({k: saved[k] for k in state if k in saved})
    elif existing and any(_unit_of(r) is None for r in synth_records):
        raise UserError(f"{out} already holds records that ownchat synth did not write; choose another --out")
    done = state["units_done"]
    prior = [r for r in synth_records if (_unit_of(r) or 0) <= done]
    replay_ids = {r["id"] for r in synth_records if (_unit_of(r) or 0) > done}
    filters.counts = Counter(state["filtered"])
    checks = Counter(state["checks"])
    mode.restore(prior)
    kept, candidates = len(prior), state["candidates"]
    committed = Counter({k: state[k] for k in _USAGE})
    spent = Counter(committed)  # includes units answered but not committed yet
    per_unit: dict[int, Counter] = {}
    base_wall, t0 = state["wall_s"], time.monotonic()
    first, total = done + 1, mode.units()
    started = [0]

    def jobs():
        for unit in (range(first, total + 1) if total is not None else itertools.count(first)):
            started[0] += 1
            yield mode.job(unit)

    def over_budget(u: Counter) -> str | None:
        if cfg.max_tokens is not None and u["teacher_tokens"] >= cfg.max_tokens:
            return "max_tokens"
        if cfg.max_cost is not None and u["cost_usd"] >= cfg.max_cost:
            return "max_cost"
        return None

    def may_start() -> bool:
        if kept >= cfg.n or over_budget(spent):
            return False
        in_progress = started[0] - (units_done - done)
        return mode.max_per_unit is None or in_progress * mode.max_per_unit < cfg.n - kept

    def on_completion(i: int, _key: str, comp: Completion) -> None:
        u = teacher.usage(comp)
        spent.update(u)
        per_unit.setdefault(i, Counter()).update(u)

    units_done, stalled = done, 0
    stopped = "n_reached" if kept >= cfg.n else None
    stall_limit = cfg.max_stalled_rounds * max(1, cfg.concurrency)
    if on_kept:
        on_kept(kept, cfg.n)
    with JsonlWriter(out) as writer:
        if stopped is None:
            runs = run_jobs(teacher.engine, jobs(), slots=cfg.concurrency, ahead=8 * max(1, cfg.concurrency),
                            lag=mode.lag, may_start=may_start, on_completion=on_completion)
            try:
                for i, outcome in runs:
                    unit = first + i
                    committed.update(per_unit.pop(i, Counter()))
                    filters.counts.update(+outcome.rejects)
                    checks.update(+outcome.checks)
                    candidates += outcome.candidates
                    records = mode.commit(unit, outcome, cfg.n - kept)
                    for rec in records:
                        if rec["id"] not in replay_ids:
                            writer.write(rec)
                    kept += len(records)
                    units_done = unit
                    stalled = 0 if records else stalled + 1
                    state.update(units_done=unit, kept=kept, filtered=dict(filters.counts), checks=dict(checks),
                                 candidates=candidates, wall_s=round(base_wall + time.monotonic() - t0, 3),
                                 **{k: committed[k] for k in _USAGE})
                    state["cost_usd"] = round(state["cost_usd"], 6)
                    _atomic_json(stats_path, {"config": cfg.fingerprint(), **state, "stopped": None,
                                              "filter_config": cfg.filters.to_dict()})
                    if on_kept:
                        on_kept(kept, cfg.n)
                    stopped = ("n_reached" if kept >= cfg.n else over_budget(committed)
                               or ("stalled" if stalled >= stall_limit else None))
                    if stopped:
                        break
            finally:
                runs.close()
        if stopped == "stalled":
            log(f"stopping: {stalled} units in a row kept nothing (see the filter counts)")
        if stopped is None:  # the jobs ran out
            stopped = over_budget(spent) or ("input_exhausted" if total is not None else "stalled")
        mixed = _mix(cfg, writer, existing, log)
    state["wall_s"] = round(base_wall + time.monotonic() - t0, 3)
    state["stopped"] = stopped
    state["mixed"] = mixed
    # answered for units past the stop (in flight or waiting to commit): paid, not used, in the cache
    state["discarded"] = {k: round(v, 6) for k, v in (spent - committed).items() if v}
    _atomic_json(stats_path, {"config": cfg.fingerprint(), **state, "filter_config": cfg.filters.to_dict()})
    inner = getattr(teacher.engine, "inner", teacher.engine)
    return SynthResult(out=out, stats_path=stats_path, kept=kept, filtered=dict(filters.counts),
                       candidates=candidates, units=units_done,
                       usage={k: state[k] for k in ("requests", "cached", "errors", "prompt_tokens",
                                                    "completion_tokens")},
                       teacher_tokens=state["teacher_tokens"], cost_usd=state["cost_usd"], wall_s=state["wall_s"],
                       stopped=stopped, hosts=list(getattr(inner, "base_urls", []) or []), checks=dict(checks),
                       mixed=mixed)


def _mix(cfg: SynthConfig, writer, existing: list[dict[str, Any]], log: Log) -> dict[str, int]:
    """Append the data packs the user asked to mix in (once: ids already in the file are skipped)."""
    if cfg.mix_sharegpt <= 0:
        return {}
    from ownchat.synth.sharegpt import sharegpt_records

    have = {r.get("id") for r in existing}
    recs = sharegpt_records(cfg.mix_sharegpt, cfg.seed, Filters(cfg.filters), log=log)
    for rec in recs:
        if rec["id"] not in have:
            writer.write(rec)
    return {"sharegpt": len(recs)}


def _mixed(rec: dict[str, Any]) -> bool:
    prov = rec.get("provenance")
    return isinstance(prov, dict) and prov.get("stage") == "mix"


def _unit_of(rec: dict[str, Any]) -> int | None:
    prov = rec.get("provenance")
    return prov.get("unit") if isinstance(prov, dict) else None
