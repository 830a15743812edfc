"""What a dataset looks like: counts, lengths, language mix and the leading verb/noun diversity.

The verb/noun picture follows Self-Instruct's diversity figure: the instruction's leading verb
(inner ring) and the first noun-like word after it (outer ring). Without a parser we take the first
word as the verb and skip determiners and pronouns to find the object, which is right for the
imperative instructions that synthetic data is made of. Chinese instructions use their first two
characters as the "verb".
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from ownchat.data.dedup import tokenize
from ownchat.data.formats import detect_format, to_messages
from ownchat.data.jsonl import read_records
from ownchat.data.lang import detect

_SKIP = {"a", "an", "the", "me", "us", "him", "her", "them", "it", "my", "your", "our", "their", "this", "that",
         "these", "those", "some", "any", "one", "two", "three", "four", "five", "few", "several", "short", "brief",
         "simple", "new", "good", "list", "of", "to", "for", "me,", "please", "creative", "detailed", "and", "all"}
_CJK_HEAD = 2


def verb_noun(instruction: str) -> tuple[str | None, str | None]:
    text = instruction.strip()
    if not text:
        return None, None
    toks = tokenize(text)
    if not toks:
        return None, None
    if len(toks[0]) == 1 and not toks[0].isascii():  # CJK: one character per token
        return "".join(toks[:_CJK_HEAD]), None
    verb = toks[0]
    noun = next((t for t in toks[1:6] if t not in _SKIP and not t.isdigit()), None)
    return verb, noun


def _hist(values: list[int]) -> dict[str, float]:
    if not values:
        return {"min": 0, "median": 0, "mean": 0, "p90": 0, "max": 0}
    v = sorted(values)
    return {"min": v[0], "median": v[len(v) // 2], "mean": round(sum(v) / len(v), 1),
            "p90": v[min(len(v) - 1, int(0.9 * len(v)))], "max": v[-1]}


def dataset_stats(path: str | Path, top: int = 20) -> dict[str, Any]:
    path = Path(path)
    records = read_records(path)
    formats: Counter[str] = Counter()
    langs: Counter[str] = Counter()
    verbs: Counter[str] = Counter()
    pairs: Counter[tuple[str, str]] = Counter()
    inst_len, out_len, turns = [], [], []
    for line, rec in enumerate(records, start=1):
        formats[detect_format(rec)] += 1
        msgs = to_messages(rec, where=(path, line), require_answer=False)
        user = next((m["content"] for m in msgs if m["role"] == "user"), "")
        answer = " ".join(m["content"] for m in msgs if m["role"] == "assistant")
        inst = str(rec.get("instruction", user))
        inst_len.append(len(tokenize(inst)))
        out_len.append(len(tokenize(answer)))
        turns.append(sum(m["role"] == "user" for m in msgs))
        langs[detect(user + "\n" + answer) or "unknown"] += 1
        v, n = verb_noun(inst)
        if v:
            verbs[v] += 1
            if n:
                pairs[(v, n)] += 1
    return {
        "file": str(path), "records": len(records), "formats": dict(formats),
        "instruction_tokens": _hist(inst_len), "output_tokens": _hist(out_len), "user_turns": _hist(turns),
        "languages": dict(langs.most_common()),
        "distinct_leading_verbs": len(verbs),
        "leading_verbs": verbs.most_common(top),
        "verb_noun_pairs": [(f"{v} {n}", c) for (v, n), c in pairs.most_common(top)],
        "_lengths": {"instruction": inst_len, "output": out_len}, "_pairs": pairs,
    }


def public(stats: dict[str, Any]) -> dict[str, Any]:
    """The JSON-friendly part (no raw lengths)."""
    return {k: v for k, v in stats.items() if not k.startswith("_")}


def plot_stats(stats: dict[str, Any], png: str | Path, top_verbs: int = 20, nouns_per_verb: int = 4) -> Path:
    """Four panels: length histograms, language mix, and the verb (inner) / noun (outer) donut."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    # Chinese verbs need a CJK font; use one if the system has it, else the labels show boxes.
    cjk = [f.name for f in font_manager.fontManager.ttflist if any(k in f.name for k in ("CJK", "Noto Sans TC",
                                                                                          "WenQuanYi", "Heiti"))]
    if cjk:
        plt.rcParams["font.sans-serif"] = [cjk[0], *plt.rcParams["font.sans-serif"]]
    warnings.filterwarnings("ignore", message="Glyph .* missing from font")

    fig, axes = plt.subplots(2, 2, figsize=(13, 11))
    (a_in, a_out), (a_lang, a_pie) = axes
    a_in.hist(stats["_lengths"]["instruction"] or [0], bins=30, color="#4C72B0")
    a_in.set_title("instruction length (tokens)")
    a_out.hist(stats["_lengths"]["output"] or [0], bins=30, color="#55A868")
    a_out.set_title("response length (tokens)")
    langs = stats["languages"]
    a_lang.bar(list(langs), list(langs.values()), color="#8172B2")
    a_lang.set_title("language mix (records)")
    verbs = [v for v, _ in stats["leading_verbs"][:top_verbs]]
    pairs: Counter = stats["_pairs"]
    cmap = plt.get_cmap("tab20")
    inner, outer, outer_labels, outer_colors = [], [], [], []
    verb_counts = dict(stats["leading_verbs"])
    for i, v in enumerate(verbs):
        nouns = sorted(((n, c) for (vv, n), c in pairs.items() if vv == v), key=lambda x: -x[1])[:nouns_per_verb]
        rest = verb_counts[v] - sum(c for _, c in nouns)
        if rest > 0:
            nouns.append(("", rest))  # the verb's other objects, unlabelled
        inner.append(verb_counts[v])
        outer += [c for _, c in nouns]
        outer_labels += [n for n, _ in nouns]
        outer_colors += [cmap(i % 20)] * len(nouns)
    if inner:
        a_pie.pie(inner, radius=0.65, labels=verbs, labeldistance=0.55, colors=[cmap(i % 20) for i in range(len(verbs))],
                  wedgeprops={"width": 0.35, "edgecolor": "w"}, textprops={"fontsize": 7})
        a_pie.pie(outer, radius=1.0, labels=outer_labels, labeldistance=1.05, colors=outer_colors,
                  wedgeprops={"width": 0.35, "edgecolor": "w", "alpha": 0.6}, textprops={"fontsize": 6})
    a_pie.set_title(f"leading verbs (inner) and their objects (outer): top {len(verbs)} of "
                    f"{stats['distinct_leading_verbs']} verbs")
    fig.suptitle(f"{Path(stats['file']).name}: {stats['records']} records")
    fig.tight_layout()
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png
