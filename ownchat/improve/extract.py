"""Pull the final numeric answer out of a model's free-text reasoning, and compare answers.

Models state answers in many ways: "The answer is $1,250.", "#### 18", "\\boxed{3/4}", "**Answer:** 42
apples", "-7 degrees". Extraction tries the explicit cues first (boxed, ####, "answer is"), after
cutting off any hallucinated follow-up question, and falls back to the last number in the text.
Answers are normalised to a canonical string ("1250", "0.75", "-7") so that votes and gold labels
compare with plain equality.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from fractions import Fraction

# A number: optional sign, digits with optional thousands separators, optional decimals; or a bare
# decimal like ".5"; optionally a fraction "a/b". Unicode minus signs are folded before matching.
_NUM = r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+(?:\.\d+)?)?|-?\.\d+"
_NUM_RE = re.compile(_NUM)

# Cues, strongest first. Each captures the text right after the cue, where the number is searched.
_BOXED_RE = re.compile(r"\\boxed\s*\{((?:[^{}]|\{[^{}]*\})*)\}")
_HASH_RE = re.compile(r"####")
_ANSWER_RE = re.compile(r"answer\s*(?:is|=|:)\s*:?", re.IGNORECASE)

# Where a model starts inventing the next exercise: everything after is not its answer.
_FOLLOW_UP_RE = re.compile(r"\n\s*(?:Q:|Question\s*:|Problem\s*:|Q\d+[:.]|#+\s*Question)", re.IGNORECASE)

# GSM8K calculator annotations: "<<16-3-4=9>>9" — the annotation would otherwise add stray numbers.
_CALC_RE = re.compile(r"<<[^<>]*>>")

_MINUS = str.maketrans({"\u2212": "-", "\u2013": "-", "\u2014": "-"})


def normalize_number(text: str | None) -> str | None:
    """Canonical string for the first number in ``text``; None when there is none.

    "$1,250.00" -> "1250", "3/4" -> "0.75", "-7 °C" -> "-7", "50%" -> "50", "1.50" -> "1.5".
    """
    if text is None:
        return None
    text = text.translate(_MINUS).replace("$", "").replace("€", "").replace("£", "")
    m = _NUM_RE.search(text)
    if not m:
        return None
    return _canonical(m.group(0))


def _canonical(raw: str) -> str | None:
    raw = raw.replace(",", "").replace(" ", "")
    try:
        if "/" in raw:
            num, den = raw.split("/", 1)
            if float(den) == 0:
                return None
            value = Fraction(num) / Fraction(den)
        else:
            value = Fraction(raw)
    except (ValueError, ZeroDivisionError):
        return None
    if value.denominator == 1:
        return str(value.numerator)
    # Round to 6 places: 2/3 and 0.666667 are the same answer for a word problem.
    s = f"{float(value):.6f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _last_number(text: str) -> str | None:
    nums = _NUM_RE.findall(text)
    return _canonical(nums[-1]) if nums else None


def extract_answer(text: str | None) -> str | None:
    """The model's final answer as a canonical number string, or None when it gave none."""
    if not text:
        return None
    text = _CALC_RE.sub("", text.translate(_MINUS))
    cut = _FOLLOW_UP_RE.search(text)
    if cut and cut.start() > 0:
        text = text[: cut.start()]
    text = text.replace("$", "").replace("€", "").replace("£", "")
    # Markdown emphasis around numbers ("**42**") hides nothing once stripped.
    text = text.replace("**", "")
    for hit in reversed(list(_BOXED_RE.finditer(text))):  # the last stated answer is the final one
        if (value := normalize_number(hit.group(1))) is not None:
            return value
    for regex in (_HASH_RE, _ANSWER_RE):
        for hit in reversed(list(regex.finditer(text))):
            # the number must follow the cue on the same line, before any sentence break
            after = re.split(r"\n|\.\s|\.$", text[hit.end():], maxsplit=1)[0]
            # "The answer is 9 * 2 = 18": the result follows the last "=", not the first number
            after = after.rsplit("=", 1)[-1] if "=" in after else after
            if (value := normalize_number(after)) is not None:
                return value
    return _last_number(text)


def has_answer_cue(text: str | None) -> bool:
    """Whether the text states its answer explicitly (boxed, ``####``, "the answer is")."""
    if not text:
        return False
    return bool(_BOXED_RE.search(text) or _HASH_RE.search(text) or _ANSWER_RE.search(text))


def final_answer(text: str | None, finish_reason: str | None = "stop",
                 extract: Callable[[str], str | None] = extract_answer) -> str | None:
    """The answer of a finished reply; a reply cut at the token cap counts only if it already stated one.

    Without this, a chain of thought cut mid-calculation "answers" with whatever number it was
    writing (5 of 23 capped greedy replies on the Qwen pack scored correct that way).
    """
    if finish_reason == "length" and not has_answer_cue(text):
        return None
    return extract(text) if text else None


def gold_answer(solution: str) -> str | None:
    """The label of a GSM8K solution: the number after its ``####`` line."""
    if "####" not in solution:
        return None
    return normalize_number(solution.rsplit("####", 1)[1])


def answers_match(pred: str | None, gold: str | None) -> bool:
    """Equal canonical strings, or numerically equal within rounding (1e-6 relative)."""
    if pred is None or gold is None:
        return False
    if pred == gold:
        return True
    try:
        a, b = float(pred), float(gold)
    except ValueError:
        return False
    return abs(a - b) <= 1e-6 * max(1.0, abs(b))
