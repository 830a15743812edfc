"""Per-row control of a batched ``model.generate``: sampling, max tokens and stop strings.

Kept apart from the engine so it can be tested with plain tensors, no model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class RowControl:
    """A logits processor that gives each row of a batch its own sampling and stopping rules.

    ``generate`` runs greedy; for a row with temperature > 0 we draw the token here from the row's own
    ``torch.Generator`` (seeded per request, so a request's answer does not depend on its batch-mates)
    and leave it as the only finite logit, which greedy then picks. A row that reached its own
    ``max_new`` tokens, or whose text now contains one of its stop strings, is forced to EOS so the
    batch finishes as soon as every row is done.
    """

    def __init__(self, tokenizer: Any, prompt_len: int, eos_id: int, temperatures: Sequence[float],
                 top_ps: Sequence[float], max_new: Sequence[int], seeds: Sequence[int],
                 stops: Sequence[Sequence[str]], device: str = "cpu") -> None:
        import torch

        self.tokenizer = tokenizer
        self.prompt_len = prompt_len
        self.eos_id = eos_id
        self.temps = list(temperatures)
        self.top_ps = list(top_ps)
        self.max_new = list(max_new)
        self.stops = [tuple(s) for s in stops]
        self.gens = []
        for seed in seeds:
            g = torch.Generator(device=device)
            g.manual_seed(int(seed) % (2**63))
            self.gens.append(g)
        self.length_hit = [False] * len(self.temps)
        self.stop_hit = [False] * len(self.temps)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        step = input_ids.shape[1] - self.prompt_len  # tokens generated so far (same for every row)
        scores = scores.clone()
        for row in range(scores.shape[0]):
            if self.length_hit[row] or self.stop_hit[row]:
                self._force(scores, row)  # finished rows are padded by generate anyway; keep them inert
                continue
            if step >= self.max_new[row]:
                self.length_hit[row] = True
                self._force(scores, row)
                continue
            if self.stops[row] and step and self._has_stop(input_ids[row], step, row):
                self.stop_hit[row] = True
                self._force(scores, row)
                continue
            if self.temps[row] > 0:
                tok = sample_token(scores[row], self.temps[row], self.top_ps[row], self.gens[row])
                scores[row] = float("-inf")
                scores[row, tok] = 0.0
        return scores

    def _force(self, scores: Any, row: int) -> None:
        scores[row] = float("-inf")
        scores[row, self.eos_id] = 0.0

    def _has_stop(self, ids: Any, step: int, row: int) -> bool:
        # a stop string of L characters spans at most L tokens: decode just that tail
        span = max(len(s) for s in self.stops[row]) + 2
        tail = ids[self.prompt_len:][-min(step, span):].tolist()
        text = self.tokenizer.decode(tail, skip_special_tokens=False)
        return any(s in text for s in self.stops[row])


def sample_token(logits: Any, temperature: float, top_p: float, generator: Any) -> int:
    """Nucleus sampling on one row of logits with the row's own generator."""
    import torch

    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, order = torch.sort(probs, descending=True)
        keep = torch.cumsum(sorted_p, dim=-1) - sorted_p < top_p  # always keeps the top token
        sorted_p = torch.where(keep, sorted_p, torch.zeros_like(sorted_p))
        pick = torch.multinomial(sorted_p / sorted_p.sum(), 1, generator=generator)
        return int(order[pick])
    return int(torch.multinomial(probs, 1, generator=generator))


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` at the earliest stop string; say whether one was found."""
    cuts = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)


class StopHoldback:
    """Streams text while hiding stop strings: holds back any tail that could begin one."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.keep = max((len(s) for s in self.stops), default=1) - 1
        self.buf = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        if self.stopped:
            return ""
        self.buf += piece
        text, hit = cut_at_stop(self.buf, self.stops)
        if hit:
            self.stopped, self.buf = True, ""
            return text
        if not self.stops:
            out, self.buf = self.buf, ""
            return out
        safe = len(self.buf) - self._partial_len()
        out, self.buf = self.buf[:safe], self.buf[safe:]
        return out

    def _partial_len(self) -> int:
        """Length of the longest suffix of the buffer that is a proper prefix of some stop string."""
        for n in range(min(self.keep, len(self.buf)), 0, -1):
            tail = self.buf[-n:]
            if any(s.startswith(tail) for s in self.stops):
                return n
        return 0

    def flush(self) -> str:
        out, self.buf = ("" if self.stopped else self.buf), ""
        return out
