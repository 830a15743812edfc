"""One-token verdicts: how likely each choice ("A", "B", "7") is as the first token of the reply.

A judge's free-text verdict throws away what the model believes: a 1.5B judge that writes "[[A]]"
may give "B" nearly the same probability. Engines that expose token probabilities answer
``Engine.choice_logprobs(request, choices)`` with the log-probability of each choice, summed over
the spellings a tokenizer may use for it ("A", " A"). A choice missing from the top-k list gets the
smallest listed log-probability, an upper bound, and is reported in ``bounded``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

TOP_K = 20  # how many first-token alternatives to ask for (OpenAI allows up to 20)


@dataclass(frozen=True)
class ChoiceLogprobs:
    logprobs: dict[str, float]  # choice -> log P(first token spells it)
    bounded: tuple[str, ...] = field(default=())  # choices not in the top-k (value is an upper bound)

    def to_dict(self) -> dict[str, Any]:
        return {"logprobs": self.logprobs, "bounded": list(self.bounded)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ChoiceLogprobs:
        return cls({k: float(v) for k, v in d["logprobs"].items()}, tuple(d.get("bounded", ())))

    def normalised(self) -> dict[str, float]:
        """Probabilities renormalised over the choices (what a forced choice between them means)."""
        top = max(self.logprobs.values())
        ex = {k: math.exp(v - top) for k, v in self.logprobs.items()}
        total = sum(ex.values())
        return {k: v / total for k, v in ex.items()}


def logsumexp(values: Iterable[float]) -> float:
    vals = [v for v in values if v != -math.inf]
    if not vals:
        return -math.inf
    top = max(vals)
    return top + math.log(sum(math.exp(v - top) for v in vals))


def from_top_list(top: Sequence[tuple[str, float]], choices: Sequence[str]) -> ChoiceLogprobs:
    """Collapse a first-token top-k list (token text, logprob) onto the choices."""
    if not top:
        raise ValueError("the engine returned no token probabilities")
    floor = min(lp for _, lp in top)
    out, bounded = {}, []
    for c in choices:
        hits = [lp for tok, lp in top if tok.strip() == c]
        if hits:
            out[c] = logsumexp(hits)
        else:
            out[c] = floor
            bounded.append(c)
    return ChoiceLogprobs(out, tuple(bounded))


def from_openai_response(data: dict[str, Any], choices: Sequence[str]) -> ChoiceLogprobs:
    """Read ``choices[0].logprobs.content[0].top_logprobs`` (OpenAI's and llama.cpp's chat format)."""
    try:
        first = data["choices"][0]["logprobs"]["content"][0]
        top = [(t["token"], float(t["logprob"])) for t in first["top_logprobs"]]
    except (KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"no first-token logprobs in the response ({type(exc).__name__}: {exc})") from None
    return from_top_list(top, choices)
