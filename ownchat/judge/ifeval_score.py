"""IFEval scores from stored answers: accuracies with 95% CIs, a per-instruction table, paired comparisons.

The four accuracies are IFEval's: *prompt-level* (every instruction of a prompt followed) and
*instruction-level* (each instruction on its own), each *strict* (the answer as written) or *loose*
(also with its first/last line or ``*`` markup removed). The headline "average" is the mean of the
prompt- and instruction-level strict accuracies, as model cards and the Open LLM Leaderboard report it.
Answers cut at the token cap are counted: IFEval barely penalises an answer that never stops.

Rescoring reads only ``responses.jsonl``: an improved checker re-scores old runs without a model.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ownchat.data.jsonl import read_jsonl, write_jsonl
from ownchat.errors import UserError
from ownchat.stats import bootstrap_ci, bootstrap_stat, describe_paired, paired_gain, proportion

Row = dict[str, Any]


def score_run(items: Sequence[Any], responses: dict[int, Row], out: Path, *, label: str,
              on_progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Check every answer, write ``scores.jsonl``; return the summary (accuracies, CIs, table)."""
    from ownchat.judge.ifeval_check import check

    rows = []
    for n, it in enumerate(items, start=1):
        r = responses[it.key]
        c = check(r["text"], it.prompt, list(it.instruction_ids), [dict(k) for k in it.kwargs])
        rows.append({"key": it.key, **c.to_dict(), "finish_reason": r.get("finish_reason"),
                     "completion_tokens": r.get("completion_tokens", 0)})
        if on_progress:
            on_progress("checking", n, len(items))
    write_jsonl(out / "scores.jsonl", rows)
    return summarize(rows, label=label)


def _instruction_level(rows: Sequence[Row], mode: str) -> dict[str, Any]:
    values = [float(v) for r in rows for v in r[mode]]
    groups = [r["key"] for r in rows for _ in r[mode]]
    lo, hi = bootstrap_ci(values, groups)  # instructions of one prompt move together
    return {"correct": int(sum(values)), "n": len(values), "accuracy": round(float(np.mean(values)), 4),
            "ci95": [round(lo, 4), round(hi, 4)]}


def _average_stat(rows: Sequence[Row]) -> Callable[[np.ndarray], float]:
    """(prompt strict + instruction strict) / 2 over a resample of prompt indices."""
    p = np.array([float(r["prompt_strict"]) for r in rows])
    k = np.array([float(sum(r["strict"])) for r in rows])
    m = np.array([float(len(r["strict"])) for r in rows])
    return lambda idx: (p[idx].mean() + k[idx].sum() / m[idx].sum()) / 2


def summarize(rows: Sequence[Row], *, label: str) -> dict[str, Any]:
    if not rows:
        raise UserError("no scored IFEval prompts")
    avg = _average_stat(rows)
    lo, hi = bootstrap_stat(avg, len(rows))
    by_type: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for r in rows:
        for iid, s, lz in zip(r["instruction_ids"], r["strict"], r["loose"], strict=True):
            by_type[iid].append((s, lz))
    stopped = sum(r["finish_reason"] != "length" for r in rows)
    return {
        "label": label, "n": len(rows),
        "prompt_strict": proportion(sum(r["prompt_strict"] for r in rows), len(rows)),
        "prompt_loose": proportion(sum(r["prompt_loose"] for r in rows), len(rows)),
        "instruction_strict": _instruction_level(rows, "strict"),
        "instruction_loose": _instruction_level(rows, "loose"),
        "average": {"value": round(float(avg(np.arange(len(rows)))), 4), "ci95": [round(lo, 4), round(hi, 4)]},
        "stopped": proportion(stopped, len(rows)),
        "mean_completion_tokens": round(float(np.mean([r["completion_tokens"] for r in rows])), 1),
        "by_instruction": {iid: {"n": len(v), "strict": round(sum(s for s, _ in v) / len(v), 4),
                                 "loose": round(sum(lz for _, lz in v) / len(v), 4)}
                           for iid, v in sorted(by_type.items())},
    }


def load_scores(run_dir: str | Path) -> dict[int, Row]:
    path = Path(run_dir) / "scores.jsonl"
    if not path.exists():
        raise UserError(f"{run_dir} has no scores.jsonl: is it an `ownchat eval ifeval` output directory?")
    return {r["key"]: r for r in read_jsonl(path)}


def compare_runs(before: str | Path | dict[int, Row], after: str | Path | dict[int, Row], *,
                 names: tuple[str, str] = ("before", "after")) -> dict[str, Any]:
    """``after`` − ``before`` on the prompts both runs answered, each measure with its paired 95% CI.

    Also the ratio of the two averages (``after`` as a share of ``before``: with the teacher as
    ``before``, the student's "percent of the teacher"), with a bootstrap CI over the same prompts.
    """
    a = before if isinstance(before, dict) else load_scores(before)
    b = after if isinstance(after, dict) else load_scores(after)
    keys = sorted(set(a) & set(b))
    if not keys:
        raise UserError("the two IFEval runs share no prompts: run both on the same --subset")
    ra, rb = [a[k] for k in keys], [b[k] for k in keys]
    out: dict[str, Any] = {"n": len(keys), "names": list(names), "only_in_one": len(set(a) ^ set(b))}
    for mode in ("strict", "loose"):
        out[f"prompt_{mode}"] = paired_gain([r[f"prompt_{mode}"] for r in ra], [r[f"prompt_{mode}"] for r in rb])
        out[f"instruction_{mode}"] = paired_gain(
            [v for r in ra for v in r[mode]], [v for r in rb for v in r[mode]],
            groups=[k for k, r in zip(keys, ra, strict=True) for _ in r[mode]])
    fa, fb = _average_stat(ra), _average_stat(rb)
    full = np.arange(len(keys))
    diff_lo, diff_hi = bootstrap_stat(lambda i: fb(i) - fa(i), len(keys))
    out["average"] = {"before": round(float(fa(full)), 4), "after": round(float(fb(full)), 4),
                      "gain": round(float(fb(full) - fa(full)), 4), "ci": [round(diff_lo, 4), round(diff_hi, 4)]}
    ratio_lo, ratio_hi = bootstrap_stat(lambda i: fb(i) / max(fa(i), 1e-9), len(keys))
    out["ratio"] = {"value": round(float(fb(full) / max(fa(full), 1e-9)), 4),
                    "ci95": [round(ratio_lo, 4), round(ratio_hi, 4)]}
    out["stopped"] = paired_gain([r["finish_reason"] != "length" for r in ra],
                                 [r["finish_reason"] != "length" for r in rb])
    return out


def describe_comparison(c: dict[str, Any]) -> list[str]:
    """Report lines for ``compare_runs``: the average first, then prompt- and instruction-level strict."""
    before, after = c["names"]
    avg = c["average"]
    lines = [f"IFEval average {avg['before'] * 100:.1f} → {avg['after'] * 100:.1f}: "
             f"{avg['gain'] * 100:+.1f} points, 95% CI [{avg['ci'][0] * 100:+.1f}, {avg['ci'][1] * 100:+.1f}] "
             f"(paired bootstrap over the same {c['n']} prompts)",
             describe_paired(c["prompt_strict"], before, after, items="prompts") + " [prompt-level strict]",
             describe_paired(c["instruction_strict"], before, after, items="instructions")
             + f" [instruction-level strict, in {c['n']} prompts; resampled by prompt]"]
    return lines


def write_ifeval_report(summary: dict[str, Any], out: Path) -> None:
    """``summary.json``, ``report.md`` and ``by_instruction.png`` in ``out``."""
    from ownchat.render import write_report

    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    write_report(out / "report.md", "ifeval_report.md.jinja", s=summary)
    _plot(summary, out / "by_instruction.png")


def _plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary["by_instruction"]
    names = list(rows)
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(names) + 1.2), dpi=110)
    ax.barh(range(len(names)), [rows[n]["strict"] for n in names], color="C0", label="strict")
    ax.scatter([rows[n]["loose"] for n in names], range(len(names)), color="C1", marker="|", s=120, label="loose")
    ax.set_yticks(range(len(names)), [f"{n} ({rows[n]['n']})" for n in names], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of instructions followed")
    ax.set_title(f"IFEval by instruction: {summary['label']} (n={summary['n']} prompts)", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
