"""Is this reply usable as training data? Shared by synth's filters, the data stage and feedback.

``is_garbled``: a degenerate generation (a loop, a run of one character, broken bytes).
``is_refusal``: the model declined the task.

A teacher that declines ("I'm sorry, but I cannot summarize the article…") has written no training
data: kept, it teaches the student to decline the same kind of task. The patterns want the refusal's
shape, an apology or disclaimer *followed by* "I can't"; an apology on its own is not one, because
"Write an apology letter" rightly begins "I'm sorry for…".
"""

from __future__ import annotations

import re
from collections import Counter

from ownchat.data.dedup import tokenize

_CANT = r"(can ?not|can't|can’t|am unable|am not able|do not have|don't have|don’t have|won't be able)"
_EN = re.compile(
    r"\bas an ai( language)? model\b"
    rf"|\b(i'm|i’m|i am) (sorry|afraid),? but (as an ai\b|i {_CANT})"
    rf"|\bi apologi[sz]e,? but (as an ai\b|i {_CANT})"
    r"|^\s*(i'm|i’m|i am) (unable|not able) to\b"
    r"|^\s*i (can ?not|can't|can’t) (help|assist|comply|fulfil)",
    re.IGNORECASE | re.MULTILINE,
)
# Chinese: an apology then "I cannot" (無法/无法/不能), or the usual "as an AI" disclaimer.
_ZH = re.compile(r"(抱歉|對不起|对不起)[，,、\s]*(但是?)?[，,\s]*我(無法|无法|不能)|作為一個?(AI|人工智慧)|作为一个?(AI|人工智能)")


def is_refusal(text: str) -> bool:
    """True when the reply opens by declining the task (only its first 300 characters are read)."""
    head = text.strip()[:300]
    return bool(_EN.search(head) or _ZH.search(head))


def is_garbled(text: str) -> bool:
    """Degenerate generations: long character or token runs, repeated lines, replacement characters."""
    t = text.strip()
    if not t:
        return False
    if "\ufffd" in t or re.search(r"(.)\1{24,}", t):
        return True
    toks = tokenize(t)
    if len(toks) >= 30:
        top = Counter(toks).most_common(1)[0][1]
        if top / len(toks) > 0.5:
            return True
        # the same 4-gram over and over: a model stuck in a loop
        grams = Counter(tuple(toks[i:i + 4]) for i in range(len(toks) - 3))
        if grams.most_common(1)[0][1] >= max(6, len(toks) // 12):
            return True
    lines = [ln.strip() for ln in t.splitlines() if ln.strip()]
    if len(lines) >= 6 and Counter(lines).most_common(1)[0][1] > len(lines) / 2:
        return True
    printable = sum(1 for ch in t if ch.isprintable() or ch in "\n\t")
    return printable / len(t) < 0.95
