"""The model card (README.md) every export carries: what it is, what it came from, under which terms."""

from __future__ import annotations

from pathlib import Path

from ownchat.licensing import lookup


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else ("—" if v is None else str(v))


def model_card(meta: dict, *, fmt: str, files: list[str]) -> str:
    hp = meta.get("hyperparameters", {})
    terms = lookup(meta.get("license"))
    lines = [
        f"# {Path(str(hp.get('out', 'model'))).name}",
        "",
        f"Fine-tuned with ownchat ({meta.get('stage', 'sft')}, {meta.get('method', '?')}) "
        f"from **{meta.get('base')}**. Exported as {fmt}: {', '.join(files)}.",
        "",
        "## Licence",
        f"- Base model licence: **{meta.get('license', 'unknown')}** — {terms.note}",
        f"- Commercial use of the base: {_commercial(terms.commercial)}",
    ]
    data_terms: dict[str, int] = {}
    for d in meta.get("data", []):
        for k, n in (d.get("terms") or {}).items():
            data_terms[k] = data_terms.get(k, 0) + n
    for k, n in sorted(data_terms.items()):
        t = lookup(k)
        lines.append(f"- {n} training records generated under **{t.name}** terms — {t.note} "
                     f"(commercial: {_commercial(t.commercial)})")
    lines += ["", "## Training data", "", "| file | format | records | weight | train | eval | teachers |",
              "|---|---|---|---|---|---|---|"]
    for d in meta.get("data", []):
        lines.append(f"| {d['path']} | {d['format']} | {d['records']} | {d['weight']} | {d['train']} | "
                     f"{d['eval']} | {', '.join(d.get('teachers') or []) or '—'} |")
    lines += ["", "## Hyper-parameters", "", "| name | value |", "|---|---|"]
    keys = ("method", "epochs", "max_steps", "lr", "batch_size", "grad_accum", "seq_len", "lora_r", "lora_alpha",
            "lora_dropout", "target_modules", "seed", "packing", "warmup_ratio", "weight_decay")
    hp = {**hp, "target_modules": ", ".join(meta.get("target_modules") or hp.get("target_modules") or []) or None}
    lines += [f"| {k} | {_fmt(hp.get(k))} |" for k in keys if k in hp]
    lines += ["", "## Results", "",
              f"- steps: {meta.get('steps')}",
              f"- final training loss: {_fmt(meta.get('final_loss'))}",
              f"- held-out eval loss: {_fmt(meta.get('eval_loss'))}",
              f"- chat template: {meta.get('chat_template_name', '?')}", ""]
    return "\n".join(lines)


def _commercial(flag: bool | None) -> str:
    return {True: "allowed", False: "NOT allowed", None: "unknown"}[flag]


def write_card(out_dir: Path, meta: dict, *, fmt: str, files: list[str]) -> Path:
    path = out_dir / "README.md"
    path.write_text(model_card(meta, fmt=fmt, files=files))
    return path
