"""Teacher throughput through ``ownchat synth`` against the bare engine, same slots, same requests.

    python benchmarks/synth.py [--n 48] [--slots 4] [--gen-tokens 160] [--reps 2] [--teacher smollm2-135m-instruct]

The teacher (default: the SmolLM2 pack on llama.cpp, so the run takes minutes) answers ``n`` of
ownchat's built-in seed instructions three ways, with no response cache:

- ``engine``: ``Engine.generate_many`` on exactly the requests answer mode sends (the baseline:
  ``slots`` requests in flight, nothing else);
- ``synth``: ``ownchat synth answer`` end to end (rolling queue, filters, provenance, fsynced
  output, stats after every record);
- ``rounds``: what the runner did before the rolling queue, ``generate_many`` over chunks of
  4 x slots requests with a barrier after each chunk.

Methods alternate ``reps`` times (the machine's load drifts; each gets the same share of it) and
the table reports completion tokens per second of wall time over all repetitions, with the ratio to
the bare engine. Target for ``synth``: >= 95%. On a shared machine tokens/s follows the neighbours'
load, so the table also reports **slot occupancy**: the time-averaged number of requests inside the
engine divided by the slots, which measures the scheduling alone.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

from ownchat.engines import ChatRequest, Engine, load_engine
from ownchat.synth import SynthConfig, run_synth
from ownchat.synth.answer import AnswerMode
from ownchat.synth.filters import FilterConfig, Filters
from ownchat.synth.runner import Teacher
from ownchat.synth.seedtasks import load_seeds


def instructions(n: int) -> list[dict[str, str]]:
    """ownchat's English seed tasks as Alpaca records (instruction + input), the first ``n``."""
    return [{"id": f"q{i}", "instruction": t["instruction"], "input": t["instances"][0]["input"]}
            for i, t in enumerate(load_seeds(None, "en")[:n])]


def requests(eng: Engine, cfg: SynthConfig) -> list[ChatRequest]:
    """Byte for byte what answer mode asks: each unit's first (only) request, taken from its own job."""
    mode = AnswerMode(cfg, Teacher(eng, cfg), Filters(cfg.filters), log=lambda m: None)
    return [next(mode.job(unit))[0] for unit in range(1, mode.units() + 1)]


class Occupancy(Engine):
    """Delegates to the engine and integrates how many requests are inside it over time."""

    def __init__(self, inner: Engine) -> None:
        self._e, self.name, self.model_id = inner, inner.name, inner.model_id
        self.max_concurrency, self.license = inner.max_concurrency, inner.license
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.active, self.area, self._t = 0, 0.0, time.perf_counter()

    def _tick(self, delta: int) -> None:
        with self._lock:
            now = time.perf_counter()
            self.area += self.active * (now - self._t)
            self._t, self.active = now, self.active + delta

    def generate(self, request: ChatRequest):
        self._tick(+1)
        try:
            return self._e.generate(request)
        finally:
            self._tick(-1)

    def mean(self, slots: int, seconds: float) -> float:
        self._tick(0)
        return self.area / (slots * seconds)


def bare(eng: Engine, reqs: list[ChatRequest], slots: int, chunk: int | None = None) -> tuple[int, float]:
    tokens, t0 = 0, time.perf_counter()
    size = chunk or len(reqs)
    for start in range(0, len(reqs), size):
        for _, comp in eng.generate_many(reqs[start:start + size], concurrency=slots):
            if comp.error:
                raise RuntimeError(comp.error)
            tokens += comp.completion_tokens
    return tokens, time.perf_counter() - t0


def through_synth(eng: Engine, cfg: SynthConfig, work: Path, rep: int) -> tuple[int, float]:
    cfg.out = work / f"synth-{rep}.jsonl"
    t0 = time.perf_counter()
    res = run_synth(cfg, log=lambda m: None, engine=eng)
    secs = time.perf_counter() - t0
    if res.usage["errors"]:
        raise RuntimeError(f"{res.usage['errors']} teacher errors")
    return int(res.usage["completion_tokens"]), secs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teacher", default="smollm2-135m-instruct")
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--slots", type=int, default=4)
    ap.add_argument("--gen-tokens", type=int, default=160)
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()

    qs = instructions(args.n)
    work = Path(tempfile.mkdtemp(prefix="ownchat-bench-synth-"))
    src = work / "questions.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in qs))
    t0 = time.perf_counter()
    eng = Occupancy(load_engine(args.teacher, "llamacpp", concurrency=args.slots, log=lambda m: None))
    print(f"{args.teacher}: loaded in {time.perf_counter() - t0:.1f}s; {len(qs)} instructions, "
          f"{args.slots} slots, {args.gen_tokens} tokens max, {args.reps} repetitions")
    # filters that keep everything: the benchmark measures the queue, not what a filter drops
    cfg = SynthConfig(mode="answer", out=work / "synth.jsonl", teacher=args.teacher, n=len(qs), inputs=src,
                      concurrency=args.slots, gen_tokens=args.gen_tokens, cache=False,
                      filters=FilterConfig(language=None))
    reqs = requests(eng, cfg)
    bare(eng, reqs[: args.slots], args.slots)  # warm-up
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for rep in range(args.reps):
        for method in ("engine", "synth", "rounds"):
            eng.reset()
            if method == "engine":
                tok, secs = bare(eng, reqs, args.slots)
            elif method == "synth":
                tok, secs = through_synth(eng, cfg, work, rep)
            else:
                tok, secs = bare(eng, reqs, args.slots, chunk=4 * args.slots)
            occ = eng.mean(args.slots, secs)
            totals[method][0] += tok
            totals[method][1] += secs
            totals[method][2] += occ * secs
            print(f"  rep {rep + 1} {method:6s}: {tok} tokens in {secs:.1f}s = {tok / secs:.1f} tok/s, "
                  f"slots {occ:.1%} busy")
    eng._e.close()
    base = totals["engine"][0] / totals["engine"][1]
    labels = {"engine": "bare engine (generate_many)", "synth": "ownchat synth answer (rolling queue)",
              "rounds": f"rounds of {4 * args.slots} with a barrier (old runner)"}
    print()
    base_occ = totals["engine"][2] / totals["engine"][1]
    print("| method | completion tokens | seconds | tok/s | vs bare engine | slot occupancy | vs bare engine |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for method in ("engine", "synth", "rounds"):
        tok, secs, occ_s = totals[method]
        occ = occ_s / secs
        print(f"| {labels[method]} | {int(tok)} | {secs:.1f} | {tok / secs:.1f} | {tok / secs / base:.1%} "
              f"| {occ:.1%} | {occ / base_occ:.1%} |")


if __name__ == "__main__":
    main()
