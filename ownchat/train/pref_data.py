"""Preference pairs on disk -> token tensors for DPO and reward-model training.

Reads our own ``ownchat feedback`` output and the two TRL layouts (``prompt``/``chosen``/``rejected``
as strings, or as message lists). Each side is rendered with the chat template the run uses and
masked so only the answer's tokens count. Batches are *left*-padded: answers then sit at the right
edge of every row, so the model only has to produce logits for the last ``answer_len`` positions
(``logits_to_keep``) — the full-vocabulary logits of the prompt are never materialised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ownchat.data.jsonl import read_jsonl
from ownchat.engines.base import Message
from ownchat.errors import DataError


@dataclass
class PrefPair:
    prompt: list[Message]
    chosen: str
    rejected: str


def _answer(value: Any, path: Path, line: int, key: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(m, dict) for m in value):
        turns = [m for m in value if m.get("role") == "assistant"]
        if len(turns) == 1:
            return str(turns[0].get("content", ""))
    raise DataError(path, line, f"'{key}' must be a string or a list with one assistant message",
                    'e.g. "chosen": "..." or "chosen": [{"role": "assistant", "content": "..."}]')


def _prompt(rec: dict[str, Any], path: Path, line: int) -> list[Message]:
    value = rec.get("prompt_messages", rec.get("prompt"))
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m and "content" in m
                                                 for m in value):
        return [{"role": str(m["role"]), "content": str(m["content"])} for m in value]
    raise DataError(path, line, "missing or malformed 'prompt'",
                    "give 'prompt' as a string or a list of {role, content} messages")


def load_pairs(path: str | Path) -> list[PrefPair]:
    """Every pair in ``path``; a record without prompt/chosen/rejected is a DataError naming its line."""
    path = Path(path)
    pairs: list[PrefPair] = []
    for line, rec in enumerate(read_jsonl(path, allow_partial_last_line=True), start=1):
        for key in ("chosen", "rejected"):
            if key not in rec:
                raise DataError(path, line, f"missing '{key}'",
                                "preference records need prompt, chosen and rejected (see docs/feedback.md)")
        chosen = _answer(rec.get("chosen"), path, line, "chosen")
        rejected = _answer(rec.get("rejected"), path, line, "rejected")
        if chosen == rejected:
            raise DataError(path, line, "chosen and rejected are identical", "drop the record: it teaches nothing")
        pairs.append(PrefPair(_prompt(rec, path, line), chosen, rejected))
    if not pairs:
        raise DataError(path, None, "no preference pairs", "run `ownchat feedback` first, or check the file")
    return pairs


def render(tokenizer: Any, template: str | None, prompt: list[Message], answer: str, seq_len: int,
           min_answer: int = 8) -> tuple[list[int], int]:
    """(ids, answer_len): the templated conversation and how many trailing tokens are the answer.

    Rendering and masking are the SFT trainer's (``render_conversation``), so DPO scores exactly the
    tokens SFT taught, end-of-turn marker included. Over-long rows drop the *start* of the prompt
    (the question's end matters most) and, if the answer alone is too long, the answer's end.
    """
    from ownchat.train.render import render_conversation

    ids, mask = render_conversation(tokenizer, [*prompt, {"role": "assistant", "content": answer}], template)
    if 1 not in mask:
        raise ValueError("the chat template produced no answer tokens")
    first = mask.index(1)
    last = len(mask) - 1 - mask[::-1].index(1)
    p_ids, a_ids = ids[:first], ids[first:last + 1]  # what follows the end-of-turn marker is dropped
    # the prompt keeps at least half the window (or all of itself); the answer gets the rest
    a_ids = a_ids[:max(min_answer, seq_len - min(len(p_ids), seq_len // 2))]
    room = max(0, seq_len - len(a_ids))
    p_ids = p_ids[len(p_ids) - room:] if room else []
    return p_ids + a_ids, len(a_ids)


@dataclass
class Encoded:
    chosen: tuple[list[int], int]
    rejected: tuple[list[int], int]


def encode_pairs(tokenizer: Any, template: str | None, pairs: Sequence[PrefPair], seq_len: int) -> list[Encoded]:
    return [Encoded(render(tokenizer, template, p.prompt, p.chosen, seq_len),
                    render(tokenizer, template, p.prompt, p.rejected, seq_len)) for p in pairs]


def collate(rows: Sequence[tuple[list[int], int]], pad_id: int) -> dict[str, Any]:
    """Left-pad ``rows``; returns input_ids, attention_mask, position_ids, answer_mask and ``keep``.

    ``answer_mask`` covers the last ``keep`` label positions (shifted by one: position t predicts
    token t+1), aligned with logits computed with ``logits_to_keep=keep + 1``.
    """
    import torch

    width = max(len(ids) for ids, _ in rows)
    keep = max(n for _, n in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(rows), width), dtype=torch.long)
    answer = torch.zeros((len(rows), keep), dtype=torch.bool)
    for i, (r, n) in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
        attn[i, width - len(r):] = 1
        answer[i, keep - n:] = True
    # left padding shifts positions; rotary embeddings need the real ones
    pos = (attn.cumsum(-1) - 1).clamp(min=0)
    return {"input_ids": ids, "attention_mask": attn, "position_ids": pos, "answer_mask": answer, "keep": keep}


def answer_logps(model: Any, batch: dict[str, Any], average: bool = False) -> Any:
    """Sum (or mean) of log p(answer token) per row, computing logits for the answer span only."""
    import torch

    keep = batch["keep"]
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                position_ids=batch["position_ids"], logits_to_keep=keep + 1, use_cache=False)
    logits = out.logits[:, :-1, :].float()  # positions predicting the last `keep` tokens
    labels = batch["input_ids"][:, -keep:]
    logp = torch.gather(logits.log_softmax(-1), 2, labels.unsqueeze(-1)).squeeze(-1)
    mask = batch["answer_mask"].to(logp.dtype)
    total = (logp * mask).sum(-1)
    return total / mask.sum(-1).clamp(min=1) if average else total
