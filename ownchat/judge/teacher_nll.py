"""``ownchat eval teacher-nll``: how far the student is from its teacher, in the teacher's own words.

The mean negative log-likelihood per token of held-out teacher answers under the model: exactly what
SFT minimises, measured on answers it never trained on. Lower is closer to the teacher. The tokens
scored are the ones SFT supervises (``train.render.render_conversation``: the assistant turns and
their end-of-turn marker), so before and after are measured on the same footing as training.

Outputs in ``out``: ``nll.jsonl`` (per example: summed NLL and token count; resumable) and
``summary.json``. Two runs on the same file compare paired (``compare_nll``): the per-example
difference, with a bootstrap CI over examples.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ownchat.data.jsonl import JsonlWriter, read_jsonl, read_records
from ownchat.data.outdir import claim_out_dir
from ownchat.errors import DataError, UserError
from ownchat.stats import bootstrap_stat

Progress = Callable[[str, int, int], None]


def load_conversations(path: str | Path) -> list[tuple[str, list[dict[str, str]]]]:
    """(key, messages) for every record that ends with an assistant answer (any supported format)."""
    from ownchat.data.formats import to_messages

    path = Path(path)
    out = []
    for line, rec in enumerate(read_records(path), start=1):
        msgs = to_messages(rec, where=(path, line), require_answer=True)
        if not msgs or msgs[-1]["role"] != "assistant":
            raise DataError(path, line, "record has no final assistant answer to score",
                            "teacher NLL needs the teacher's answer in each record")
        key = str(rec.get("id", line))
        out.append((key, msgs))
    if not out:
        raise DataError(path, None, "no records in the file", "one conversation per line")
    return out


def _score(engine: Any, messages: list[dict[str, str]], max_len: int) -> tuple[float, int]:
    """Summed NLL (nats) and number of supervised tokens of one conversation."""
    import torch

    from ownchat.train.render import render_conversation

    ids, mask = render_conversation(engine.tokenizer, messages, engine._jinja)
    ids, mask = ids[:max_len], mask[:max_len]
    if sum(mask[1:]) == 0:
        return 0.0, 0
    x = torch.tensor([ids], device=engine.device)
    with torch.inference_mode():
        logits = engine.model(input_ids=x).logits[0, :-1].float()
    logp = torch.log_softmax(logits, dim=-1)
    target = x[0, 1:]
    nll = -logp.gather(1, target[:, None])[:, 0]
    m = torch.tensor(mask[1:], device=engine.device, dtype=torch.bool)
    return float(nll[m].sum()), int(m.sum())


def evaluate_nll(model: str, data: str | Path, out: str | Path, *, engine: Any = None, max_len: int = 1024,
                 log: Callable[[str], None] = print, on_progress: Progress | None = None) -> dict[str, Any]:
    """Score every held-out teacher answer under ``model`` (transformers, exact); write and return the summary."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    convs = load_conversations(data)
    cfg = {"model": model, "data": str(Path(data).resolve()), "max_len": max_len}
    claim_out_dir(out, cfg, tuple(cfg), "a teacher-NLL run")
    path = out / "nll.jsonl"
    done = {r["key"]: r for r in read_jsonl(path, allow_partial_last_line=True)} if path.exists() else {}
    todo = [(k, m) for k, m in convs if k not in done]
    t0 = time.perf_counter()
    if todo:
        own = engine is None
        if engine is None:
            from ownchat.engines.hf import HFEngine

            engine = HFEngine.from_ref(model, batch_size=1, log=log)
        try:
            with JsonlWriter(path) as w:
                for n, (key, msgs) in enumerate(todo, start=1):
                    total, tokens = _score(engine, msgs, max_len)
                    done[key] = {"key": key, "nll": round(total, 5), "tokens": tokens}
                    w.write(done[key])
                    if on_progress:
                        on_progress("scoring", len(convs) - len(todo) + n, len(convs))
        finally:
            if own:
                engine.close()
    rows = [done[k] for k, _ in convs]
    summary = {"model": model, "data": str(data), **summarize(rows), "seconds": round(time.perf_counter() - t0, 1)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _ratio(rows: list[dict[str, Any]]) -> Callable[[np.ndarray], float]:
    nll = np.array([r["nll"] for r in rows], dtype=float)
    tok = np.array([r["tokens"] for r in rows], dtype=float)
    return lambda idx: nll[idx].sum() / max(tok[idx].sum(), 1.0)


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    rows = [r for r in rows if r["tokens"] > 0]
    if not rows:
        raise UserError("no supervised tokens to score (every answer was cut away by --max-len?)")
    f = _ratio(rows)
    lo, hi = bootstrap_stat(f, len(rows))
    return {"examples": len(rows), "tokens": int(sum(r["tokens"] for r in rows)),
            "nll_per_token": round(float(f(np.arange(len(rows)))), 4), "ci95": [round(lo, 4), round(hi, 4)],
            "perplexity": round(float(np.exp(f(np.arange(len(rows))))), 3)}


def compare_nll(before: str | Path, after: str | Path) -> dict[str, Any]:
    """``after`` − ``before`` NLL per token on the examples both scored, with a paired bootstrap CI."""
    def load(d: str | Path) -> dict[str, dict[str, Any]]:
        p = Path(d) / "nll.jsonl"
        if not p.exists():
            raise UserError(f"{d} has no nll.jsonl: is it an `ownchat eval teacher-nll` output directory?")
        return {r["key"]: r for r in read_jsonl(p) if r["tokens"] > 0}

    a, b = load(before), load(after)
    keys = sorted(set(a) & set(b))
    if not keys:
        raise UserError("the two teacher-NLL runs share no examples: score the same --data")
    fa, fb = _ratio([a[k] for k in keys]), _ratio([b[k] for k in keys])
    full = np.arange(len(keys))
    lo, hi = bootstrap_stat(lambda i: fb(i) - fa(i), len(keys))
    return {"n": len(keys), "before": round(float(fa(full)), 4), "after": round(float(fb(full)), 4),
            "gain": round(float(fb(full) - fa(full)), 4), "ci": [round(lo, 4), round(hi, 4)]}


def describe_nll(c: dict[str, Any], before: str = "before", after: str = "after") -> str:
    return (f"teacher NLL per token {c['before']:.3f} ({before}) → {c['after']:.3f} ({after}): "
            f"{c['gain']:+.3f} nats, 95% CI [{c['ci'][0]:+.3f}, {c['ci'][1]:+.3f}] "
            f"(paired bootstrap over the same {c['n']} held-out answers; lower is closer to the teacher)")
