"""The loop every synth mode shares: rounds, resume after ``kill -9``, budget stops, stats.

A mode produces records in *rounds*. Everything a round asks the teacher is a pure function of
(config, round number, request index, the records kept in earlier rounds), so replaying a round
after a crash sends byte-identical requests, which the response cache answers for free. Records are
appended (fsynced) when a round completes; ``OUT.stats.json`` is rewritten atomically after each
round and says how many rounds are done. On restart, rounds <= that number are restored from the
output file, and the interrupted round is replayed: records it already wrote are recognised by id
and not written twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ownchat.engines.base import ChatRequest, Completion, Engine, SamplingParams
from ownchat.errors import UserError
from ownchat.synth.filters import FilterConfig, Filters

Log = Callable[[str], None]


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
    engine: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    cache: bool | str | Path = True
    filters: FilterConfig = field(default_factory=FilterConfig)
    max_stalled_rounds: int = 25  # stop when this many rounds in a row keep nothing

    def fingerprint(self) -> dict[str, Any]:
        """What must not change between a run and its resumption (n and budgets may)."""
        return {"mode": self.mode, "teacher": self.teacher, "language": self.language, "topic": self.topic,
                "seed": self.seed, "temperature": self.temperature, "top_p": self.top_p,
                "gen_tokens": self.gen_tokens, "turns": self.turns,
                "batch_size": self.batch_size, "concurrency": self.concurrency,
                "seeds": str(self.seeds) if self.seeds else None,
                "inputs": str(self.inputs) if self.inputs else None}


@dataclass
class SynthResult:
    out: Path
    stats_path: Path
    kept: int
    filtered: dict[str, int]
    candidates: int
    rounds: int
    usage: dict[str, float]
    teacher_tokens: int
    cost_usd: float
    wall_s: float
    stopped: str
    hosts: list[str]

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["out"], d["stats_path"] = str(self.out), str(self.stats_path)
        return d


def stats_path_for(out: Path) -> Path:
    return out.with_name(out.stem + ".stats.json") if out.suffix else out.with_name(out.name + ".stats.json")


def derive_seed(base: int, *parts: object) -> int:
    """A stable 31-bit seed per (run seed, round, index...): requests replay exactly after a crash."""
    h = hashlib.sha256(json.dumps([base, *parts]).encode()).digest()
    return int.from_bytes(h[:4], "big") & 0x7FFFFFFF


class Teacher:
    """The engine plus per-run accounting of every completion a round used (cached ones included)."""

    def __init__(self, engine: Engine, cfg: SynthConfig) -> None:
        self.engine = engine
        self.cfg = cfg
        inner = getattr(engine, "inner", engine)
        self._prices = getattr(inner, "prices", None)
        self._model_name = getattr(inner, "model_name", inner.model_id)
        self.tokens = 0
        self.cost = 0.0
        self.requests = 0
        self.cached = 0
        self.errors = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def params(self, *key: object, temperature: float | None = None, max_tokens: int | None = None,
               stop: Sequence[str] = ()) -> SamplingParams:
        return SamplingParams(temperature=self.cfg.temperature if temperature is None else temperature,
                              top_p=self.cfg.top_p, max_tokens=max_tokens or self.cfg.gen_tokens,
                              seed=derive_seed(self.cfg.seed, *key), stop=tuple(stop))

    def run(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        """All completions, in request order; failures come back as error completions."""
        out: list[Completion | None] = [None] * len(requests)
        for i, comp in self.engine.generate_many(requests, concurrency=self.cfg.concurrency):
            out[i] = comp
            self.requests += 1
            self.cached += comp.cached
            self.errors += comp.error is not None
            self.tokens += comp.prompt_tokens + comp.completion_tokens
            self.prompt_tokens += comp.prompt_tokens
            self.completion_tokens += comp.completion_tokens
            if self._prices is not None:
                self.cost += self._prices.cost(self._model_name, comp.prompt_tokens, comp.completion_tokens)
        return [c for c in out if c is not None]

    def chat(self, messages: list[dict[str, str]], params: SamplingParams) -> ChatRequest:
        return ChatRequest.chat(messages, params)


class Mode:
    """One synth mode. Subclasses implement ``restore`` and ``run_round``."""

    name = "mode"

    def __init__(self, cfg: SynthConfig, teacher: Teacher, filters: Filters, log: Log) -> None:
        self.cfg, self.teacher, self.filters, self.log = cfg, teacher, filters, log
        self.exhausted = False  # True when the input runs out (answer mode)

    def restore(self, kept: list[dict[str, Any]]) -> None:
        """Rebuild state (task pool, ROUGE-L index) from records kept in completed rounds."""
        for rec in kept:
            if rec.get("instruction"):
                self.filters.keep(rec["instruction"])

    def run_round(self, r: int, need: int) -> list[dict[str, Any]]:  # pragma: no cover - interface
        raise NotImplementedError

    def candidates(self) -> int:
        return 0


def _atomic_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def run_rounds(cfg: SynthConfig, mode: Mode, teacher: Teacher, filters: Filters, log: Log,
               on_kept: Callable[[int, int], None] | None = None) -> SynthResult:
    """Drive ``mode`` until ``cfg.n`` records, a budget, exhaustion, or too many empty rounds."""
    from ownchat.data.jsonl import JsonlWriter, read_jsonl

    out = Path(cfg.out)
    stats_path = stats_path_for(out)
    state: dict[str, Any] = {"rounds_done": 0, "kept": 0, "filtered": {}, "candidates": 0, "teacher_tokens": 0,
                             "cost_usd": 0.0, "requests": 0, "cached": 0, "errors": 0, "wall_s": 0.0,
                             "prompt_tokens": 0, "completion_tokens": 0}
    existing: list[dict[str, Any]] = list(read_jsonl(out, allow_partial_last_line=True)) if out.exists() else []
    if stats_path.exists() and existing:
        saved = json.loads(stats_path.read_text(encoding="utf-8"))
        if saved.get("config") != cfg.fingerprint():
            raise UserError(f"{out} was written by a different synth run ({saved.get('config')}); "
                            "use another --out, or delete it and its .stats.json to start over")
        state.update({k: saved[k] for k in state if k in saved})
    elif existing and any(_round_of(r) is None for r in existing):
        raise UserError(f"{out} already holds records that ownchat synth did not write; choose another --out")
    done = state["rounds_done"]
    prior = [r for r in existing if (_round_of(r) or 0) <= done]
    replay_ids = {r["id"] for r in existing if (_round_of(r) or 0) > done}
    filters.counts = Counter(state["filtered"])
    mode.restore(prior)
    kept = len(prior)
    base = {k: state[k] for k in ("teacher_tokens", "cost_usd", "requests", "cached", "errors", "candidates",
                                  "prompt_tokens", "completion_tokens")}
    base_wall = state["wall_s"]
    t0 = time.monotonic()
    stopped, stalled, r = "n_reached", 0, done + 1
    if on_kept:
        on_kept(kept, cfg.n)
    with JsonlWriter(out) as writer:
        while kept < cfg.n:
            tokens = base["teacher_tokens"] + teacher.tokens
            cost = base["cost_usd"] + teacher.cost
            if cfg.max_tokens is not None and tokens >= cfg.max_tokens:
                stopped = "max_tokens"
                break
            if cfg.max_cost is not None and cost >= cfg.max_cost:
                stopped = "max_cost"
                break
            if mode.exhausted:
                stopped = "input_exhausted"
                break
            if stalled >= cfg.max_stalled_rounds:
                stopped = "stalled"
                log(f"stopping: {stalled} rounds in a row kept nothing (see the filter counts)")
                break
            records = mode.run_round(r, cfg.n - kept)[: cfg.n - kept]
            for rec in records:
                if rec["id"] not in replay_ids:
                    writer.write(rec)
            kept += len(records)
            stalled = 0 if records else stalled + 1
            state.update(rounds_done=r, kept=kept, filtered=dict(filters.counts),
                         candidates=base["candidates"] + mode.candidates(),
                         teacher_tokens=base["teacher_tokens"] + teacher.tokens,
                         cost_usd=round(base["cost_usd"] + teacher.cost, 6),
                         requests=base["requests"] + teacher.requests, cached=base["cached"] + teacher.cached,
                         errors=base["errors"] + teacher.errors,
                         prompt_tokens=base["prompt_tokens"] + teacher.prompt_tokens,
                         completion_tokens=base["completion_tokens"] + teacher.completion_tokens,
                         wall_s=round(base_wall + time.monotonic() - t0, 3))
            _atomic_json(stats_path, {"config": cfg.fingerprint(), **state, "stopped": None,
                                      "filter_config": cfg.filters.to_dict()})
            if on_kept:
                on_kept(kept, cfg.n)
            r += 1
    state["wall_s"] = round(base_wall + time.monotonic() - t0, 3)
    state["stopped"] = stopped
    _atomic_json(stats_path, {"config": cfg.fingerprint(), **state, "filter_config": cfg.filters.to_dict()})
    inner = getattr(teacher.engine, "inner", teacher.engine)
    return SynthResult(out=out, stats_path=stats_path, kept=kept, filtered=dict(filters.counts),
                       candidates=state["candidates"], rounds=state["rounds_done"],
                       usage={k: state[k] for k in ("requests", "cached", "errors", "prompt_tokens",
                                                    "completion_tokens")},
                       teacher_tokens=state["teacher_tokens"], cost_usd=state["cost_usd"], wall_s=state["wall_s"],
                       stopped=stopped, hosts=list(getattr(inner, "base_urls", []) or []))


def _round_of(rec: dict[str, Any]) -> int | None:
    prov = rec.get("provenance")
    return prov.get("round") if isinstance(prov, dict) else None
