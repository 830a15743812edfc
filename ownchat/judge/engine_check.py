"""``ownchat models check``: what each engine and quantisation of one pack costs, measured.

The same IFEval prompts are answered greedily by the pack's own GGUF on llama.cpp, by the q8_0 that
ownchat writes when that file fails its smoke test, and by transformers on the dequantised fp32
weights (the reference). The report gives, per engine, the greedy agreement with the reference (the
share of answers whose first 40 characters match: a close greedy choice flipped by quantised
arithmetic shows up here first) and the IFEval difference from the reference with its paired CI.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ownchat.data.jsonl import read_jsonl
from ownchat.judge.ifeval import IFEvalConfig, evaluate_ifeval
from ownchat.judge.ifeval_score import compare_runs

PREFIX = 40  # characters compared for greedy agreement


def _variants(name: str, log: Callable[[str], None]) -> dict[str, tuple[str, str]]:
    """label -> (model reference, engine) for every way ownchat can run this pack."""
    from ownchat.engines.smoke import check_pack
    from ownchat.models.resolve import resolve

    ref = resolve(name, log=log)
    rec = check_pack(name, log=log)
    out = {"transformers (fp32)": (name, "hf"), f"llama.cpp {ref.path.name}": (str(ref.path), "llamacpp")}
    for rep in rec.get("repairs", []):
        if Path(rep["file"]).exists():
            out[f"llama.cpp {Path(rep['file']).name}"] = (rep["file"], "llamacpp")
    return out


def _texts(run_dir: Path) -> dict[int, str]:
    return {r["key"]: r["text"] for r in read_jsonl(run_dir / "responses.jsonl")}


def check_engines(name: str, *, n: int = 60, max_tokens: int = 256, out: Path = Path("runs/models-check"),
                  log: Callable[[str], None] = print,
                  on_progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Run the IFEval subset on every variant; agreement and paired IFEval difference vs transformers."""
    from ownchat.engines.smoke import load_record

    variants = _variants(name, log)
    runs: dict[str, dict[str, Any]] = {}
    for label, (model, engine) in variants.items():
        d = out / name / label.replace(" ", "_").replace("(", "").replace(")", "")
        log(f"IFEval ({n} prompts) on {label}")
        runs[label] = {"dir": d, "summary": evaluate_ifeval(
            IFEvalConfig(model=model, out=d, subset=n, max_tokens=max_tokens, engine=engine, label=label),
            log=log, on_progress=on_progress)}
    ref_label = "transformers (fp32)"
    ref_texts = _texts(runs[ref_label]["dir"])
    rows = []
    for label, run in runs.items():
        texts = _texts(run["dir"])
        keys = sorted(set(texts) & set(ref_texts))
        agree = sum(texts[k].strip()[:PREFIX] == ref_texts[k].strip()[:PREFIX] for k in keys)
        row = {"variant": label, "ifeval_average": run["summary"]["average"],
               "agreement_with_fp32": round(agree / max(1, len(keys)), 4), "n": len(keys)}
        if label != ref_label:
            row["vs_fp32"] = compare_runs(runs[ref_label]["dir"], run["dir"], names=(ref_label, label))["average"]
        rows.append(row)
    return {"pack": name, "n": n, "max_tokens": max_tokens, "smoke": load_record(name), "rows": rows}
