"""Is this reply a refusal rather than an answer? Shared by synth's filters and the data stage.

A teacher that declines ("I'm sorry, but I cannot summarize the article…") has written no training
data: kept, it teaches the student to decline the same kind of task. The patterns want the refusal's
shape, an apology or disclaimer *followed by* "I can't"; an apology on its own is not one, because
"Write an apology letter" rightly begins "I'm sorry for…".
"""

from __future__ import annotations

import re

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
