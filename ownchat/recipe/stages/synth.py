"""The synth stage: a recipe's ``synth:`` section -> ``ownchat.synth.run_synth`` in the stage folder.

The teacher engine is opened here (so remote endpoints, API keys and the response cache follow the
recipe) and handed to ``run_synth``, which resumes from its output file after a kill.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ownchat.recipe.plan import Estimate, Speeds, Stage, StageContext, StageResult, gen_estimate
from ownchat.recipe.schema import Recipe
from ownchat.recipe.stages.common import bar, open_engine, priced, samples, spec_settings


class SynthStage(Stage):
    kind = "synth"
    version = 2  # v2: seed tasks reach the teacher with their input (it was dropped for 112 of 134)

    def __init__(self, recipe: Recipe) -> None:
        super().__init__("synth")
        self.r, self.sec, self.teacher = recipe, recipe.synth, recipe.teacher

    def settings(self) -> dict[str, Any]:
        return {"teacher": spec_settings(self.teacher), "seed": self.r.seed,
                **self.sec.model_dump(exclude={"filters", "rewrites"})}  # both belong to the data stage

    def input_files(self) -> list[Path]:
        p = self.sec.prompts
        return [builtin_inputs() if p == "builtin" else self.r.resolve_path(p)]

    def estimate(self, speeds: Speeds) -> Estimate:
        return synth_estimate(self, speeds)

    def run(self, ctx: StageContext) -> StageResult:
        return run_synth_stage(self, ctx)


def builtin_inputs() -> Path:
    """``answer`` mode with ``prompts: builtin``: the shipped seed instructions, answered by the teacher."""
    import ownchat.synth

    return Path(ownchat.synth.__file__).parent / "seeds" / "seed_tasks.jsonl"


def synth_estimate(stage, speeds: Speeds) -> Estimate:
    """Teacher requests per mode, from how each mode asks (see ownchat/synth/*.py)."""
    s, t = stage.sec, stage.teacher
    out = int(0.6 * s.max_tokens)
    if s.method == "answer" and s.constraints:
        # a constrained answer fails its checker ~60% of the time and ~80% of those that pass survive
        # the other filters; constrained answers are short (the quickstart, seed tasks with their inputs:
        # 132 instructions, 214 requests, 64 kept; 79 prompt and 73 completion tokens per request)
        fail, k = 0.6, s.constraint_samples
        per_unit = sum(fail ** i for i in range(k))
        kept_per_unit = 0.8 * (1 - fail ** k)
        n, tok_in, tok_out = int(s.n * per_unit / kept_per_unit + 0.5), 80, min(int(0.25 * s.max_tokens), 100)
        what = "constrained answers"
    elif s.method == "answer":
        n, tok_in, tok_out, what = s.n, 120, min(int(0.5 * s.max_tokens), 250), "answers"
    elif s.method == "alpaca":
        # a triple takes ~110 tokens, so max_tokens caps the batch; ~40% of triples pass the filters
        # (measured with the Qwen pack: 8 requests of 20 x 1024 tokens kept 26)
        per_request = max(1.0, 0.4 * min(s.batch_size, s.max_tokens / 110))
        n, tok_in, tok_out, what = max(1, int(-(-s.n // per_request))), 900, s.max_tokens, "batches"
    elif s.method == "chat":  # the teacher plays both sides: 2 requests a turn, history grows
        n, tok_in, tok_out, what = s.n * s.turns * 2, 150 * s.turns, min(out, 300), "chat turns"
    else:  # self-instruct: propose (shared by ~8), classify, instances
        n, tok_in, tok_out, what = int(s.n * 1.4), 700, min(out, 400), "requests"
    return gen_estimate(speeds, t.model, n, tok_in, tok_out, remote=t.remote, price=t.price, what=what,
                        concurrency=t.concurrency)


def run_synth_stage(stage, ctx: StageContext) -> StageResult:
    from ownchat.recipe.ledger import remote_entry
    from ownchat.synth import FilterConfig, SynthConfig, run_synth

    s, r, spec = stage.sec, stage.r, stage.teacher
    out = ctx.dir / "data.jsonl"
    src = None if s.prompts == "builtin" else r.resolve_path(s.prompts)
    seeds = src if s.method in ("self-instruct", "alpaca") else None
    inputs = src if s.method in ("answer", "chat") else None
    if s.method == "answer" and inputs is None:
        inputs = builtin_inputs()
    options = dict(s.options)
    filters = options.pop("filters", None)
    language = s.language or "en"
    cfg = SynthConfig(mode=s.method, out=out, teacher=spec.model, n=s.n, seeds=seeds, inputs=inputs,
                      language=language, topic=s.topic, concurrency=spec.concurrency or 4, max_cost=s.max_cost,
                      seed=r.seed, temperature=s.temperature, gen_tokens=s.max_tokens, batch_size=s.batch_size,
                      turns=s.turns, system=s.system, base_url=_one(spec.base_url), constraints=s.constraints,
                      constraint_samples=s.constraint_samples, mix_sharegpt=s.mix_sharegpt,
                      filters=FilterConfig(**{"language": language, **(filters or {})}), **options)
    engine = open_engine(spec, ctx.log)
    try:
        res = run_synth(cfg, log=ctx.log, engine=engine, on_kept=bar(ctx, f"synth ({s.method})"))
    finally:
        engine.close()
    d = res.to_dict()
    usage = priced(d.get("usage") or {}, spec)
    if d.get("cost_usd"):
        usage["cost_usd"] = d["cost_usd"]
    summary: dict[str, Any] = {"kept": d["kept"], "candidates": d["candidates"], "units": d["units"],
                               "stopped": d["stopped"], "teacher_tokens": d["teacher_tokens"],
                               "filtered": d.get("filtered") or {}}
    if d.get("checks"):
        summary["constraint_checks"] = d["checks"]
    if d.get("mixed"):
        summary["mixed"] = d["mixed"]
    speeds = {}
    u = d.get("usage") or {}
    if not spec.remote and u.get("completion_tokens") and not u.get("cached") and d.get("wall_s", 0) > 20:
        # effective decode speed with all slots busy, prompt time taken out at the default prefill speed
        prefill, _ = Speeds(device="cpu").get("prefill", spec.model)
        busy = max(1.0, d["wall_s"] - u.get("prompt_tokens", 0) / prefill)
        speeds[f"gen:{spec.model}"] = u["completion_tokens"] / busy
    records = {"file": _describe(s, src), "count": int(u.get("requests", 0))}
    return StageResult(summary=summary, artifacts={"data": ctx.rel(out)}, usage={"teacher": usage},
                       privacy=remote_entry(spec, "teacher", usage, records, d.get("hosts")),
                       samples=samples(out), speeds=speeds, raw=d)


def _one(url: str | list[str] | None) -> str | None:
    return url[0] if isinstance(url, list) else url


def _describe(s, src: Path | None) -> str:
    if src is not None:
        return f"{src.name} ({s.method} prompts)"
    return f"ownchat's built-in seed tasks ({s.method})"
