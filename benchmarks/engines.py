"""Aggregate generation throughput of the local engines with 1, 4 and 8 requests in flight.

    python benchmarks/engines.py [--max-tokens 64] [--waves 1] [--only smollm2-llamacpp,...]

Each configuration runs ``waves`` rounds of ``c`` concurrent requests (greedy, ``max_tokens`` each,
prompts that ask for long answers) after one warm-up request, and reports generated tokens per
second of wall time. ``x vs 1`` compares with the same engine's 1-request run in this process;
``hf / llama.cpp`` compares transformers with llama.cpp on the same model at the same concurrency.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

from ownchat.engines import ChatRequest, Engine, SamplingParams, load_engine

PROMPTS = [
    "Count from 1 to 100, separated by commas.",
    "Write a long story about a lighthouse keeper.",
    "List as many animals as you can, one per line.",
    "Explain in detail how a bicycle works.",
    "Write a long poem about the sea.",
    "Describe the history of Rome in many paragraphs.",
    "List the first 60 even numbers.",
    "Write a detailed recipe for bread, step by step.",
]

CONFIGS: dict[str, tuple[str, str]] = {  # label -> (model reference, engine)
    "smollm2-llamacpp": ("smollm2-135m-instruct", "llamacpp"),
    "qwen1.5b-llamacpp": ("qwen2.5-coder-1.5b-instruct", "llamacpp"),
    "smollm2-hf": ("smollm2-135m-instruct", "hf"),
}


@dataclass
class Row:
    label: str
    concurrency: int
    tokens: int
    seconds: float

    @property
    def tok_s(self) -> float:
        return self.tokens / self.seconds


def measure(eng: Engine, concurrency: int, max_tokens: int, waves: int) -> tuple[int, float]:
    params = SamplingParams(temperature=0.0, max_tokens=max_tokens)
    tokens, t0 = 0, time.perf_counter()
    for w in range(waves):
        reqs = [ChatRequest.chat([{"role": "user", "content": PROMPTS[(w + k) % len(PROMPTS)]}], params)
                for k in range(concurrency)]
        for _, comp in eng.generate_many(reqs, concurrency=concurrency):
            if comp.error:
                raise RuntimeError(comp.error)
            tokens += comp.completion_tokens
    return tokens, time.perf_counter() - t0


def run(labels: list[str], levels: list[int], max_tokens: int, waves: int,
        log: Callable[[str], None] = print) -> list[Row]:
    rows = []
    for label in labels:
        model, engine = CONFIGS[label]
        t0 = time.perf_counter()
        opts = {"n_ctx_per_slot": 1024} if engine == "llamacpp" else {}  # short prompts: small KV cache
        eng = load_engine(model, engine, concurrency=max(levels), log=lambda m: None, **opts)
        eng.generate(ChatRequest.chat([{"role": "user", "content": "Hi"}], SamplingParams(max_tokens=4)))  # warm-up
        log(f"{label}: loaded in {time.perf_counter() - t0:.1f}s")
        for c in levels:
            tokens, secs = measure(eng, c, max_tokens, waves)
            rows.append(Row(label, c, tokens, secs))
            log(f"  {c} in flight: {tokens} tokens in {secs:.1f}s = {tokens / secs:.1f} tok/s")
        eng.close()
    return rows


def table(rows: list[Row]) -> str:
    base = {r.label: r.tok_s for r in rows if r.concurrency == 1}
    llama = {r.concurrency: r.tok_s for r in rows if r.label == "smollm2-llamacpp"}
    lines = ["| engine | in flight | tokens | seconds | tok/s | x vs 1 | hf / llama.cpp |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        vs1 = f"{r.tok_s / base[r.label]:.2f}" if r.label in base else "-"
        cross = f"{r.tok_s / llama[r.concurrency]:.2f}" if r.label.endswith("-hf") and r.concurrency in llama else ""
        lines.append(f"| {r.label} | {r.concurrency} | {r.tokens} | {r.seconds:.1f} | {r.tok_s:.1f} | {vs1} | {cross} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--waves", type=int, default=1)
    ap.add_argument("--levels", default="1,4,8")
    ap.add_argument("--only", default=",".join(CONFIGS), help=f"comma list of {', '.join(CONFIGS)}")
    args = ap.parse_args()
    labels = [x for x in args.only.split(",") if x]
    unknown = set(labels) - set(CONFIGS)
    if unknown:
        ap.error(f"unknown configuration(s) {sorted(unknown)}; choose from {', '.join(CONFIGS)}")
    rows = run(labels, [int(x) for x in args.levels.split(",")], args.max_tokens, args.waves)
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
