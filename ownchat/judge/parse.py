"""Reading verdicts out of free-form judge text.

Small judges rarely follow the format to the letter: they bold the verdict, put spaces inside the
brackets, write ``[[Tie]]``, ``Rating: 7/10`` or mention the format itself while explaining. The rule
is: the *last* well-formed verdict wins (the explanation comes first and may quote the format), strict
forms are tried before loose ones, and anything ambiguous returns None, which the caller retries and,
failing that, counts as a visible failure. Never guess.
"""

from __future__ import annotations

import re

PAIR_LABELS = {"a": "A", "b": "B", "c": "tie", "tie": "tie", "tied": "tie", "draw": "tie", "equal": "tie"}

# [[A]], [[ b ]], **[[C]]**, [[Tie]]; also single brackets [A] as a looser form.
_PAIR_STRICT = re.compile(r"\[\[\s*(A|B|C|tie|tied|draw|equal)\s*\]\]", re.I)
_PAIR_SINGLE = re.compile(r"(?<!\[)\[\s*(A|B|C|tie)\s*\](?!\])", re.I)
# "Final verdict: A", "Verdict - Assistant B", "Better response: B" (A/B/C as a whole word)
_PAIR_LABELLED = re.compile(
    r"(?:final\s+verdict|verdict|better\s+(?:response|reply|answer)|winner)\s*(?:is)?\s*[:\-=]?\s*\**\s*"
    r"(?:assistant\s+|response\s+|reply\s+)?\(?\s*(?:a\s+)?((?-i:A|B|C)|tie|draw)\b", re.I)
# "Assistant A is better", "B is better", "both are equally good" (prose; the loosest form)
_PAIR_PROSE = re.compile(r"\b(?:assistant\s+|reply\s+|response\s+)?((?-i:A|B))\s+is\s+(?:clearly\s+|slightly\s+)?"
                         r"(?:better|superior|the\s+better)", re.I)
_TIE_PROSE = re.compile(r"\b(?:it'?s\s+a\s+tie|they\s+are\s+(?:equally|about\s+equally)|both\s+(?:are\s+)?equally)",
                        re.I)

_NUM = r"(\d+(?:\.\d+)?)"
_RATING_STRICT = re.compile(r"\[\[\s*" + _NUM + r"\s*(?:/\s*10\s*)?\]\]")
_RATING_LABELLED = re.compile(r"(?:rating|score|grade)\s*(?:is|of)?\s*[:=]?\s*\**\s*\[?\s*" + _NUM
                              + r"\s*\]?\s*(?:/\s*10|out\s+of\s+10)?", re.I)
_RATING_FRACTION = re.compile(_NUM + r"\s*(?:/\s*10|out\s+of\s+10)\b", re.I)
_RATING_BARE = re.compile(r"^\W*" + _NUM + r"\W*$")  # a reply that is only the number (a follow-up's answer)

_FORMAT_ECHO = re.compile(r"\[\[A\]\]\s*if|\[\[B\]\]\s*if|\[\[C\]\]\s*if|\[\[N\]\]", re.I)


def _strip_markup(text: str) -> str:
    # bold/italic/code marks around verdicts ("**[[A]]**", "`[[B]]`") hide nothing we need
    return text.replace("**", "").replace("__", "").replace("`", "")


def _last(pattern: re.Pattern[str], text: str) -> str | None:
    found = pattern.findall(text)
    return found[-1] if found else None


def parse_pair(text: str | None) -> str | None:
    """``"A"``, ``"B"``, ``"tie"`` or None when no unambiguous verdict is present."""
    if not text:
        return None
    t = _FORMAT_ECHO.sub(" ", _strip_markup(text))  # a judge quoting the instructions is not a verdict
    for pattern in (_PAIR_STRICT, _PAIR_SINGLE, _PAIR_LABELLED):
        hit = _last(pattern, t)
        if hit:
            return PAIR_LABELS[hit.lower()]
    prose = {PAIR_LABELS[m.lower()] for m in _PAIR_PROSE.findall(t)}
    if _TIE_PROSE.search(t):
        prose.add("tie")
    return prose.pop() if len(prose) == 1 else None  # "A is better ... no, B is better" stays unparsed


def parse_rating(text: str | None, lo: float = 1, hi: float = 10) -> float | None:
    """The score from ``Rating: [[N]]`` (or looser forms), or None if absent or out of ``[lo, hi]``."""
    if not text:
        return None
    t = _FORMAT_ECHO.sub(" ", _strip_markup(text))
    for pattern in (_RATING_STRICT, _RATING_LABELLED, _RATING_FRACTION):
        hit = _last(pattern, t)
        if hit is not None:
            value = float(hit)
            return value if lo <= value <= hi else None
    bare = _RATING_BARE.match(t.strip())
    if bare:
        value = float(bare.group(1))
        return value if lo <= value <= hi else None
    return None
