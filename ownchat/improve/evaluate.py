"""GSM8K accuracy with 95% Wilson intervals: greedy chain of thought and self-consistency.

Outputs in ``out`` (all resumable: records are appended as they finish and read back on a re-run,
and the response cache replays anything already generated):

- ``greedy.jsonl``      one record per question (text, extracted answer, gold, correct)
- ``sc_samples.jsonl``  one record per (question, k) sample
- ``summary.json``      accuracies, intervals, accuracy-vs-K, timings, token usage, settings
- ``accuracy_vs_k.png`` majority-vote accuracy over the first k samples, greedy as a reference line
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ownchat.data.jsonl import JsonlWriter, read_jsonl
from ownchat.data.outdir import claim_out_dir
from ownchat.engines.base import ChatRequest, Engine, SamplingParams, UsageMeter
from ownchat.errors import UserError
from ownchat.improve.extract import answers_match, final_answer
from ownchat.improve.gsm8k import Problem, load_problems, select
from ownchat.improve.prompts import PROMPT_ID, build_messages
from ownchat.improve.results import Accuracy, EvalResult
from ownchat.improve.sc import Sample, SCConfig, self_consistency
from ownchat.improve.vote import vote_curve
from ownchat.stats import describe_paired, paired_gain

Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass
class EvalConfig:
    model: str
    out: Path
    data: str | None = None  # GSM8K-format file; default the pack's test set
    offset: int = 0
    subset: int | None = None
    shots: int = 3
    max_tokens: int = 256
    greedy: bool = True
    sc_k: int = 0  # 0: greedy only
    temperature: float = 0.7
    top_p: float = 0.95
    seed: int = 0
    engine: str | None = None
    concurrency: int | None = None
    cache: bool | str = True
    label: str = ""

    def sc(self) -> SCConfig:
        return SCConfig(k=self.sc_k, temperature=self.temperature, top_p=self.top_p,
                        max_tokens=self.max_tokens, seed=self.seed)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["out"] = str(self.out)
        d["prompt"] = PROMPT_ID
        return d


_SETTINGS_THAT_MUST_MATCH = ("model", "data", "prompt", "shots", "max_tokens", "temperature", "top_p", "seed")


def evaluate_gsm8k(cfg: EvalConfig, log: Callable[[str], None] = print, *, engine: Engine | None = None,
                   on_progress: Progress | None = None) -> EvalResult:
    """Score ``cfg.model`` on GSM8K questions; greedy and/or self-consistency with ``cfg.sc_k`` samples."""
    if not cfg.greedy and cfg.sc_k <= 0:
        raise UserError("nothing to evaluate: enable greedy or pass --sc K (K >= 1)")
    problems = select(load_problems(cfg.data), offset=cfg.offset, subset=cfg.subset)
    claim_out_dir(cfg.out, cfg.to_dict(), _SETTINGS_THAT_MUST_MATCH, "an evaluation")
    own_engine = engine is None
    if engine is None and _all_done(cfg, problems):
        engine = Engine()  # everything is on disk: re-scoring needs no model (the stub is never called)
    elif engine is None:
        from ownchat.engines import load_engine

        engine = load_engine(cfg.model, cfg.engine, cache=cfg.cache, concurrency=cfg.concurrency, log=log)
    prompts = [build_messages(p.question, shots=cfg.shots) for p in problems]
    meter = UsageMeter()
    result = EvalResult(cfg.out, cfg.label or cfg.model, len(problems), sc_k=cfg.sc_k)
    try:
        if cfg.greedy:
            t0 = time.perf_counter()
            result.greedy = _run_greedy(engine, cfg, problems, prompts, meter, result, on_progress)
            result.timings["greedy"] = round(time.perf_counter() - t0, 1)
            log(f"greedy CoT: {result.greedy}")
        if cfg.sc_k > 0:
            t0 = time.perf_counter()
            _run_sc(engine, cfg, problems, prompts, meter, result, on_progress)
            result.timings["sc"] = round(time.perf_counter() - t0, 1)
            log(f"self-consistency (K={cfg.sc_k}): {result.sc}  mean vote share {result.mean_share:.2f}")
    finally:
        if own_engine:
            engine.close()
    if "greedy" in result.per_question and "sc" in result.per_question:
        result.sc_vs_greedy = paired_gain(result.per_question["greedy"], result.per_question["sc"])
        log(describe_paired(result.sc_vs_greedy, "greedy CoT", "self-consistency"))
    result.usage = meter.snapshot()
    _write_summary(cfg, result)
    return result


def _all_done(cfg: EvalConfig, problems: list[Problem]) -> bool:
    want = {p.index for p in problems}
    if cfg.greedy:
        path = cfg.out / "greedy.jsonl"
        have = {r["index"] for r in read_jsonl(path, allow_partial_last_line=True)} if path.exists() else set()
        if not want <= have:
            return False
    if cfg.sc_k > 0:
        path = cfg.out / "sc_samples.jsonl"
        pairs = {(r["index"], r["k"]) for r in read_jsonl(path, allow_partial_last_line=True)} if path.exists() else set()
        if any((i, k) not in pairs for i in want for k in range(cfg.sc_k)):
            return False
    return True


def _run_greedy(engine: Engine, cfg: EvalConfig, problems: list[Problem], prompts, meter: UsageMeter,
                result: EvalResult, on_progress: Progress | None) -> Accuracy:
    path = cfg.out / "greedy.jsonl"
    done = {r["index"]: r for r in read_jsonl(path, allow_partial_last_line=True)} if path.exists() else {}
    todo = [j for j, p in enumerate(problems) if p.index not in done]
    params = SamplingParams(temperature=0.0, max_tokens=cfg.max_tokens)
    count = len(problems) - len(todo)
    if on_progress:
        on_progress("greedy", count, len(problems))
    with JsonlWriter(path) as w:
        reqs = (ChatRequest.chat(prompts[j], params) for j in todo)
        for t, comp in engine.generate_many(reqs, concurrency=cfg.concurrency):
            p = problems[todo[t]]
            meter.add(comp)
            answer = final_answer(comp.text, comp.finish_reason) if comp.ok else None
            rec = {"index": p.index, "gold": p.gold, "answer": answer, "correct": answers_match(answer, p.gold),
                   "text": comp.text, "finish_reason": comp.finish_reason,
                   "completion_tokens": comp.completion_tokens, "prompt_tokens": comp.prompt_tokens,
                   "prompt_computed": (comp.extra.get("timings") or {}).get("prompt_n"), "error": comp.error}
            if comp.ok:  # a failed request is retried next run instead of being scored as wrong
                w.write(rec)
                done[p.index] = rec
            count += 1
            if on_progress:
                on_progress("greedy", count, len(problems))
    missing = sum(1 for p in problems if p.index not in done)
    if missing:
        raise UserError(f"{missing} greedy request(s) failed; run again to retry them")
    # re-extract from the stored text: an improved extractor re-scores old runs without regenerating
    answers = [final_answer(done[p.index]["text"], done[p.index].get("finish_reason")) for p in problems]
    result.per_question["greedy"] = [answers_match(a, p.gold) for a, p in zip(answers, problems, strict=True)]
    return Accuracy(sum(result.per_question["greedy"]), len(problems))


def _run_sc(engine: Engine, cfg: EvalConfig, problems: list[Problem], prompts, meter: UsageMeter,
            result: EvalResult, on_progress: Progress | None) -> None:
    path = cfg.out / "sc_samples.jsonl"
    pos = {p.index: j for j, p in enumerate(problems)}
    done: dict[tuple[int, int], Sample] = {}
    if path.exists():
        for r in read_jsonl(path, allow_partial_last_line=True):
            if r["index"] in pos and r["k"] < cfg.sc_k:
                s = Sample.from_dict(r)
                s.answer = final_answer(s.text, s.finish_reason)
                done[(pos[r["index"]], r["k"])] = s
    total = len(problems) * cfg.sc_k
    count = len(done)
    if on_progress:
        on_progress("self-consistency", count, total)
    results: dict[int, Any] = {}
    with JsonlWriter(path) as w:
        def on_sample(j: int, s: Sample, comp) -> None:
            nonlocal count
            meter.add(comp)
            if s.error is None:
                w.write({"index": problems[j].index, **s.to_dict()})
            count += 1
            if on_progress:
                on_progress("self-consistency", count, total)

        for j, res in self_consistency(engine, prompts, cfg.sc(), concurrency=cfg.concurrency, done=done,
                                       on_sample=on_sample):
            results[j] = res
    failed = sum(1 for res in results.values() for s in res.samples if s.error)
    if failed:
        raise UserError(f"{failed} sample request(s) failed; run again to retry them")
    golds = [p.gold for p in problems]
    result.per_question["sc"] = [answers_match(results[j].answer, golds[j]) for j in range(len(problems))]
    result.sc = Accuracy(sum(result.per_question["sc"]), len(problems))
    curves = [vote_curve([s.answer for s in results[j].samples], golds[j], answers_match)
              for j in range(len(problems))]
    result.curve = [Accuracy(sum(c[k] for c in curves), len(problems)) for k in range(cfg.sc_k)]
    result.mean_share = round(sum(results[j].share for j in results) / max(1, len(results)), 4)
    # per-question vote records: what report.py and LMSI read back
    votes = [{"index": problems[j].index, "gold": golds[j], **results[j].vote.to_dict(),
              "correct": answers_match(results[j].answer, golds[j])} for j in range(len(problems))]
    (cfg.out / "sc_votes.jsonl").write_text("".join(json.dumps(v) + "\n" for v in votes))


def _write_summary(cfg: EvalConfig, result: EvalResult) -> None:
    summary = {**result.to_dict(), "config": cfg.to_dict(),
               "questions": {"source": cfg.data or "gsm8k pack (test)", "offset": cfg.offset,
                             "count": result.n}}
    runs = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "offset": cfg.offset, "n": result.n,
            "timings_s": result.timings, "usage": result.usage}
    with JsonlWriter(cfg.out / "runs.jsonl") as w:
        w.write(runs)
    # A directory filled in chunks (or resumed after a crash) paid its generation over several runs:
    # the sums are the honest cost of the whole evaluation.
    summary["all_runs"] = _sum_runs(cfg.out / "runs.jsonl")
    (cfg.out / "summary.json").write_text(json.dumps(summary, indent=2))
    from ownchat.improve.report import eval_rows, write_report

    write_report(eval_rows(result), cfg.out, title=f"GSM8K: {result.label}", curves=[(result.label, result)],
                 extra={"questions": f"{summary['questions']['source']}, offset {cfg.offset}, n={result.n}",
                        "shots": cfg.shots, "max_tokens": cfg.max_tokens,
                        **({"paired": describe_paired(result.sc_vs_greedy, "greedy CoT", "self-consistency")}
                           if result.sc_vs_greedy else {}),
                        "timings_s (this run)": json.dumps(result.timings),
                        "summed over all runs into this directory": json.dumps(summary["all_runs"])})


def _sum_runs(path: Path) -> dict[str, Any]:
    timings: dict[str, float] = {}
    tokens = requests = 0
    rows = list(read_jsonl(path, allow_partial_last_line=True))
    for r in rows:
        for phase, secs in r.get("timings_s", {}).items():
            timings[phase] = round(timings.get(phase, 0.0) + secs, 1)
        tokens += int(r.get("usage", {}).get("completion_tokens", 0))
        requests += int(r.get("usage", {}).get("requests", 0)) - int(r.get("usage", {}).get("cached", 0))
    return {"invocations": len(rows), "timings_s": timings, "generated_requests": requests,
            "completion_tokens": tokens}
