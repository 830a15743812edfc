"""Large Language Models Can Self-Improve (LMSI), on our own models and without labels.

1. For each unlabeled question, sample K chain-of-thought rationales (``self_consistency``).
2. Keep a question when its majority answer's vote share is at least tau; keep the rationales that
   reach that answer (complete ones only: a rationale cut off by max_tokens is no example to copy).
3. Turn them into training conversations in the paper's four layouts: with / without few-shot
   exemplars, chain of thought / direct answer (``prompts.training_example``).
4. LoRA-tune the model on them with the project's SFT trainer.
5. Evaluate before and after on an evaluation subset that is checked to be disjoint from the pool.

Every step writes to ``out`` and resumes: samples are appended per record (and replayed by the
response cache), a finished training run is reused, evaluations resume from their own files.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ownchat.data.jsonl import JsonlWriter, read_jsonl, write_jsonl
from ownchat.data.provenance import provenance
from ownchat.engines.base import Engine, UsageMeter
from ownchat.errors import UserError
from ownchat.improve.evaluate import EvalConfig, EvalResult, Progress, evaluate_gsm8k
from ownchat.improve.extract import final_answer
from ownchat.improve.gsm8k import EVAL_SIZE, Problem, check_disjoint, load_problems, test_set_path
from ownchat.improve.prompts import FORMATS, PROMPT_ID, build_messages, training_example
from ownchat.improve.sc import Sample, SCConfig, SCResult, self_consistency
from ownchat.stats import describe_paired, paired_gain


@dataclass
class LMSIConfig:
    model: str
    out: Path
    questions: str | None = None  # unlabeled JSONL; default: the test set beyond the eval subset
    pool_size: int | None = None  # use at most this many unlabeled questions
    eval_offset: int = 0
    eval_size: int = EVAL_SIZE
    k: int = 8
    tau: float = 0.6
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 256
    shots: int = 3
    formats: tuple[str, ...] = tuple(FORMATS)
    max_rationales: int = 4  # distinct agreeing rationales kept per question (keeps easy ones from dominating)
    keep_truncated: bool = False  # also keep rationales cut off by max_tokens (smoke tests with tiny budgets)
    seed: int = 0
    # training (ownchat.train.sft)
    max_steps: int = 100
    lr: float = 2e-4
    batch_size: int = 4
    seq_len: int = 512
    lora_r: int = 8
    # evaluation before/after
    eval_sc_k: int = 0
    eval_max_tokens: int | None = None
    engine: str | None = "hf"  # before and after run on the same engine: a fair comparison
    concurrency: int | None = None
    cache: bool | str = True

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["out"] = str(self.out)
        d["formats"] = list(self.formats)
        return d


@dataclass
class LMSIResult:
    out_dir: Path
    pool: int
    kept_questions: int
    train_examples: int
    run_dir: Path | None
    final_loss: float | None
    before: EvalResult | None = None
    after: EvalResult | None = None
    split: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "pool": self.pool, "kept_questions": self.kept_questions,
                "train_examples": self.train_examples, "run_dir": str(self.run_dir) if self.run_dir else None,
                "final_loss": self.final_loss, "split": self.split, "usage": self.usage, "hosts": [],
                "before": self.before.to_dict() if self.before else None,
                "after": self.after.to_dict() if self.after else None}


def load_pool(cfg: LMSIConfig) -> tuple[list[Problem], list[Problem], dict[str, Any]]:
    """(eval problems, unlabeled pool, split record); refuses any overlap between the two."""
    test = load_problems(test_set_path())
    end = min(len(test), cfg.eval_offset + cfg.eval_size)
    evals = test[cfg.eval_offset:end]
    if cfg.questions:
        pool = load_problems(cfg.questions, labeled=False)
        source = str(cfg.questions)
    else:  # the test set past the canonical evaluation block (and past ours), labels dropped
        start = max(EVAL_SIZE, end)
        pool = [Problem(p.index, p.question, None) for p in test[start:]]
        source = f"gsm8k pack test set [{start}, {len(test)})"
    if cfg.pool_size is not None:
        pool = pool[: cfg.pool_size]
    split = check_disjoint(evals, pool, eval_source="gsm8k pack test set", pool_source=source,
                           eval_range=(cfg.eval_offset, end))
    return evals, pool, split.to_dict()


def select_rationales(result: SCResult, tau: float, max_rationales: int, *,
                      keep_truncated: bool = False) -> list[Sample]:
    """The distinct, complete rationales agreeing with a confident majority; [] below tau."""
    if result.answer is None or result.share < tau:
        return []
    seen: set[str] = set()
    kept: list[Sample] = []
    for s in result.agreeing():
        text = s.text.strip()
        if (s.finish_reason != "stop" and not keep_truncated) or not text or text in seen:
            continue
        seen.add(text)
        kept.append(s)
        if len(kept) >= max_rationales:
            break
    return kept


def build_training_records(question: str, answer: str, rationales: list[Sample], formats: tuple[str, ...],
                           shots: int, meta: dict[str, Any]) -> list[dict[str, Any]]:
    """Chain-of-thought layouts: one conversation per rationale; direct layouts: one per question."""
    records = []
    for fmt in formats:
        cot = FORMATS[fmt][1]
        for s in rationales if cot else rationales[:1]:
            msgs = training_example(question, s.text, answer, fmt, shots=shots)
            records.append({"messages": msgs, "lmsi": {**meta, "format": fmt, "k": s.k}})
    return records


def run_lmsi(cfg: LMSIConfig, log: Callable[[str], Any] = print, *,
             on_progress: Progress | None = None) -> LMSIResult:
    if not 0.0 <= cfg.tau <= 1.0:
        raise UserError(f"--tau must be between 0 and 1, got {cfg.tau}")
    if cfg.k < 1:
        raise UserError("--k must be at least 1")
    bad = [f for f in cfg.formats if f not in FORMATS]
    if bad:
        raise UserError(f"unknown training format(s) {bad}; choose from {', '.join(FORMATS)}")
    cfg.out.mkdir(parents=True, exist_ok=True)
    evals, pool, split = load_pool(cfg)
    (cfg.out / "split.json").write_text(json.dumps(split, indent=2))
    (cfg.out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    log(f"LMSI: {len(pool)} unlabeled questions, evaluation on test questions "
        f"{split['eval_range'][0]}..{split['eval_range'][1] - 1} (disjoint)")

    from ownchat.engines import load_engine

    meter = UsageMeter()
    engine = load_engine(cfg.model, cfg.engine, cache=cfg.cache, concurrency=cfg.concurrency, log=log)
    try:
        results = _sample_pool(engine, cfg, pool, meter, on_progress)
        records = _write_training_data(engine, cfg, pool, results)
        before = _evaluate(cfg, "before", cfg.model, engine, on_progress, log)
    finally:
        engine.close()
    kept = len({r["lmsi"]["index"] for r in records})
    log(f"kept {kept}/{len(pool)} questions (share >= {cfg.tau}), {len(records)} training conversations")
    if not records:
        raise UserError(f"no unlabeled question reached a vote share of {cfg.tau} with K={cfg.k}; "
                        "lower --tau, raise --k, or use a stronger model")
    run_dir, loss = _train(cfg, log)
    after = _evaluate(cfg, "after", str(run_dir), None, on_progress, log)
    result = LMSIResult(cfg.out, len(pool), kept, len(records), run_dir, loss, before, after, split,
                        meter.snapshot())
    (cfg.out / "lmsi.json").write_text(json.dumps(result.to_dict(), indent=2))
    from ownchat.improve.report import lmsi_rows, write_report

    write_report(lmsi_rows(before, after), cfg.out, title=f"LMSI on {cfg.model}", split=split,
                 curves=[("before", before), ("after LMSI", after)], extra=_paired_lines(before, after))
    return result


def _paired_lines(before: EvalResult, after: EvalResult) -> dict[str, str]:
    """Before vs after LMSI on the same evaluation questions, per decoding method."""
    lines = {}
    for method, name in (("greedy", "greedy CoT"), ("sc", "self-consistency")):
        if method in before.per_question and method in after.per_question:
            p = paired_gain(before.per_question[method], after.per_question[method])
            lines[f"paired ({name})"] = describe_paired(p, "before", "after LMSI")
    return lines


def _sample_pool(engine: Engine, cfg: LMSIConfig, pool: list[Problem], meter: UsageMeter,
                 on_progress: Progress | None) -> dict[int, SCResult]:
    path = cfg.out / "samples.jsonl"
    pos = {p.index: j for j, p in enumerate(pool)}
    done: dict[tuple[int, int], Sample] = {}
    if path.exists():
        for r in read_jsonl(path, allow_partial_last_line=True):
            if r["index"] in pos and r["k"] < cfg.k:
                s = Sample.from_dict(r)
                s.answer = final_answer(s.text, s.finish_reason)
                done[(pos[r["index"]], r["k"])] = s
    sc = SCConfig(k=cfg.k, temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_tokens,
                  seed=cfg.seed)
    prompts = [build_messages(p.question, shots=cfg.shots) for p in pool]
    total, count = len(pool) * cfg.k, len(done)
    results: dict[int, SCResult] = {}
    with JsonlWriter(path) as w:
        def on_sample(j: int, s: Sample, comp) -> None:
            nonlocal count
            meter.add(comp)
            if s.error is None:
                w.write({"index": pool[j].index, **s.to_dict()})
            count += 1
            if on_progress:
                on_progress("sampling rationales", count, total)

        if on_progress:
            on_progress("sampling rationales", count, total)
        for j, res in self_consistency(engine, prompts, sc, concurrency=cfg.concurrency, done=done,
                                       on_sample=on_sample):
            results[j] = res
    errors = sum(1 for r in results.values() for s in r.samples if s.error)
    if errors:
        raise UserError(f"{errors} sample request(s) failed; run again to retry them")
    votes = [{"index": pool[j].index, **results[j].vote.to_dict()} for j in sorted(results)]
    write_jsonl(cfg.out / "pool_votes.jsonl", votes)
    return results


def _write_training_data(engine: Engine, cfg: LMSIConfig, pool: list[Problem],
                         results: dict[int, SCResult]) -> list[dict[str, Any]]:
    sc_params = SCConfig(k=cfg.k, temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_tokens,
                         seed=cfg.seed).params()
    prov = provenance(engine, template=PROMPT_ID, params=sc_params, stage="improve.lmsi",
                      method=f"self-consistency K={cfg.k}, tau={cfg.tau}", labels_used=False)
    records: list[dict[str, Any]] = []
    for j in sorted(results):
        res = results[j]
        kept = select_rationales(res, cfg.tau, cfg.max_rationales, keep_truncated=cfg.keep_truncated)
        if not kept:
            continue
        meta = {"index": pool[j].index, "answer": res.answer, "share": round(res.share, 4)}
        for rec in build_training_records(pool[j].question, res.answer or "", kept, cfg.formats, cfg.shots, meta):
            rec["provenance"] = prov
            records.append(rec)
    write_jsonl(cfg.out / "train.jsonl", records)  # rebuilt whole each run: deterministic from samples
    return records


def _train(cfg: LMSIConfig, log: Callable[[str], Any]) -> tuple[Path, float | None]:
    run_dir = cfg.out / "run"
    run_file = run_dir / "ownchat_run.json"
    if run_file.exists():  # finished before: reuse it (delete the folder to retrain)
        log(f"reusing the trained run in {run_dir}")
        return run_dir, json.loads(run_file.read_text()).get("final_loss")
    from ownchat.train.sft import SFTConfig, train_sft

    scfg = SFTConfig(model=cfg.model, data=[cfg.out / "train.jsonl"], out=run_dir, method="lora",
                     max_steps=cfg.max_steps, lr=cfg.lr, batch_size=cfg.batch_size, seq_len=cfg.seq_len,
                     lora_r=cfg.lora_r, seed=cfg.seed)
    res = train_sft(scfg, log=log)
    return Path(res.out_dir), res.final_loss


def _evaluate(cfg: LMSIConfig, name: str, model: str, engine: Engine | None, on_progress: Progress | None,
              log: Callable[[str], Any]) -> EvalResult:
    ecfg = EvalConfig(model=model, out=cfg.out / f"eval-{name}", data=str(test_set_path()),
                      offset=cfg.eval_offset, subset=cfg.eval_size,
                      shots=cfg.shots, max_tokens=cfg.eval_max_tokens or cfg.max_tokens, sc_k=cfg.eval_sc_k,
                      temperature=cfg.temperature, top_p=cfg.top_p, seed=cfg.seed, engine=cfg.engine,
                      concurrency=cfg.concurrency, cache=cfg.cache, label=name)
    log(f"evaluating {name} LMSI on {cfg.eval_size} questions")
    return evaluate_gsm8k(ecfg, log=log, engine=engine, on_progress=on_progress)
