"""Preference pairs on disk -> token tensors and batches for DPO and reward-model training.

Reads our own ``ownchat feedback`` output and the two TRL layouts (``prompt``/``chosen``/``rejected``
as strings, or as message lists). Each side is rendered with the chat template the run uses and
masked so only the answer's tokens count. A batch holds the chosen sides of its pairs, then the
rejected ones, *left*-padded so every answer ends at the right edge (the reward model reads the
last position). ``targets`` mark the answer tokens the way SFT's batches mark assistant tokens, so
DPO's log-probs come from the same head-only-where-trained code (``token_loss``). Batches are
grouped by length like SFT's, in an order fixed by (seed, epoch).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ownchat.data.jsonl import read_jsonl
from ownchat.engines.base import Message
from ownchat.errors import DataError
from ownchat.train.collate import IGNORE, BatchStats, grouped_batches
from ownchat.train.data import DataFileInfo

Row = tuple[list[int], int]  # (ids, answer_len)
# On CPU, passes of ~512 tokens keep the matrix products efficient while holding a fraction of a
# large micro-batch's activations (measured: benchmarks/dpo_memory.py); GPUs take the batch whole.
CPU_TOKENS_PER_PASS = 512


@dataclass
class PrefPair:
    prompt: list[Message]
    chosen: str
    rejected: str


@dataclass
class PrefResult:
    """What ``train_dpo`` and ``train_rm`` return."""

    out: str
    steps: int
    pairs: int
    final_loss: float | None
    final: dict[str, float]
    resumed_from: int = 0
    seconds: float = 0.0
    plot: str | None = None
    usage: dict[str, float] = field(default_factory=dict)  # stage contract: local training sends nothing
    hosts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def _provenance(prov: Any, keys: set[str], teachers: set[str]) -> None:
    """Licence terms and models of a record: flat (synth) or per role (feedback's student and teacher)."""
    if not isinstance(prov, dict):
        return
    terms = prov.get("terms")
    if isinstance(terms, dict) and terms.get("key"):
        keys.add(str(terms["key"]))
    if isinstance(prov.get("teacher"), str):
        teachers.add(prov["teacher"])
    for v in prov.values():
        if isinstance(v, dict) and "terms" in v:
            _provenance(v, keys, teachers)


def load_pairs_info(path: str | Path) -> tuple[list[PrefPair], DataFileInfo]:
    """Every pair in ``path`` and what the run file records about the file (count, terms, teachers)."""
    path = Path(path)
    pairs: list[PrefPair] = []
    terms: Counter[str] = Counter()
    teachers: set[str] = set()
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
        keys: set[str] = set()
        _provenance(rec.get("provenance"), keys, teachers)
        terms.update(keys)
    if not pairs:
        raise DataError(path, None, "no preference pairs", "run `ownchat feedback` first, or check the file")
    info = DataFileInfo(str(path), "preference pairs", len(pairs), 1.0, train=len(pairs), terms=dict(terms),
                        teachers=sorted(teachers))
    return pairs, info


def load_pairs(path: str | Path) -> list[PrefPair]:
    """Every pair in ``path``; a record without prompt/chosen/rejected is a DataError naming its line."""
    return load_pairs_info(path)[0]


def render(tokenizer: Any, template: str | None, prompt: list[Message], answer: str, seq_len: int,
           min_answer: int = 8) -> Row:
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
    chosen: Row
    rejected: Row


def encode_pairs(tokenizer: Any, template: str | None, pairs: Sequence[PrefPair], seq_len: int) -> list[Encoded]:
    return [Encoded(render(tokenizer, template, p.prompt, p.chosen, seq_len),
                    render(tokenizer, template, p.prompt, p.rejected, seq_len)) for p in pairs]


def collate(rows: Sequence[Row], pad_id: int) -> dict[str, Any]:
    """Left-pad ``rows``: input_ids, attention_mask, position_ids and ``targets`` (SFT's layout:
    ``targets[b, t]`` is the answer token at t+1, or -100)."""
    import torch

    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(rows), width), dtype=torch.long)
    targets = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    for i, (r, n) in enumerate(rows):
        row = torch.tensor(r, dtype=torch.long)
        ids[i, width - len(r):] = row
        attn[i, width - len(r):] = 1
        k = min(n, len(r) - 1)  # position t predicts token t+1: the first token can never be a target
        targets[i, width - k - 1:width - 1] = row[len(r) - k:]
    # left padding shifts positions; rotary embeddings need the real ones
    pos = (attn.cumsum(-1) - 1).clamp(min=0)
    return {"input_ids": ids, "attention_mask": attn, "position_ids": pos, "targets": targets}


def collate_pairs(enc: Sequence[Encoded], rows: list[list[int]], pad_id: int,
                  tokens_per_pass: int | None) -> list[tuple[dict[str, Any], BatchStats]]:
    """One micro-batch of pairs (``rows`` from ``grouped_batches``) as forward passes of at most
    ``tokens_per_pass`` padded tokens each (at least one pair; None: one pass), chosen sides first,
    then rejected. The loss is a sum over independent pairs, so the passes give the gradient of the
    whole micro-batch with a fraction of its activations."""
    groups: list[list[int]] = []
    width = 0
    for i in (i for row in rows for i in row):
        w = max(len(enc[i].chosen[0]), len(enc[i].rejected[0]))
        if groups and (tokens_per_pass is None or 2 * (len(groups[-1]) + 1) * max(width, w) <= tokens_per_pass):
            groups[-1].append(i)
            width = max(width, w)
        else:
            groups.append([i])
            width = w
    out = []
    for part in groups:
        batch = collate([enc[i].chosen for i in part] + [enc[i].rejected for i in part], pad_id)
        out.append((batch, BatchStats(int(batch["attention_mask"].sum()), len(part), batch["input_ids"].numel())))
    return out


def pair_batches(enc: Sequence[Encoded], batch_size: int, seed: int, epoch: int) -> list[list[list[int]]]:
    """SFT's length-grouped order, on the longer side of each pair."""
    lengths = [max(len(e.chosen[0]), len(e.rejected[0])) for e in enc]
    return grouped_batches(lengths, batch_size, seed, epoch)


def answer_logps(model: Any, batch: dict[str, Any], average: bool = False) -> Any:
    """Sum (or mean) of log p(answer token) per row of ``batch``, the LM head run on the answers only."""
    from ownchat.train.token_loss import TokenLogps, row_sums

    logp, rows = TokenLogps(model).token_logps(batch["input_ids"], batch["targets"], batch["position_ids"],
                                               batch["attention_mask"])
    n = batch["input_ids"].shape[0]
    total = row_sums(logp, rows, n)
    if not average:
        return total
    return total / row_sums(logp.new_ones(logp.shape), rows, n).clamp(min=1)


class PairObjective:
    """What DPO and the reward model share as ``trainer.fit`` objectives: pairs in, pair metrics out."""

    stage = "pairs"
    count_key = "pairs"
    curves = "pref_curves.png"

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self.pairs = 0

    def start(self, cfg: Any, log) -> Any:
        from ownchat.train.model import resolve_start

        return resolve_start(cfg.model, cfg.adapter, cfg.chat_template, log=log)

    def data(self, cfg: Any, tokenizer: Any, template: str, pad_id: int, log) -> Any:
        import torch

        from ownchat.train.loop import Schedule
        from ownchat.train.trainer import TrainingData

        pairs, info = load_pairs_info(cfg.data)
        enc = encode_pairs(tokenizer, template, pairs, cfg.seq_len)
        self.pairs = len(pairs)
        budget = cfg.tokens_per_pass or (None if torch.cuda.is_available() else CPU_TOKENS_PER_PASS)
        schedule = Schedule(lambda e: pair_batches(enc, cfg.batch_size, cfg.seed, e),
                            lambda rows: collate_pairs(enc, rows, pad_id, budget))
        return TrainingData(schedule, len(pairs), [info.to_dict()])

    def derive(self, row: dict[str, Any]) -> None:
        row["margin"] = round(row["reward_chosen"] - row["reward_rejected"], 6)

    def title(self) -> str:
        return self.stage

    def plot(self, out: Path, rows: list[dict[str, Any]]) -> Path | None:
        from ownchat.train.plots import plot_pref_curves

        return plot_pref_curves(rows, Path(out) / self.curves, title=self.title())

    def final(self, f: Any) -> tuple[dict[str, float], dict[str, Any]]:
        """The result's fields shared by DPO and the reward model, and its ``final`` metrics."""
        final = {k: f.last[k] for k in ("loss", "reward_chosen", "reward_rejected", "accuracy", "margin", "lr")
                 if k in f.last}
        fields = dict(out=str(f.out), steps=f.steps, pairs=self.pairs, final_loss=f.last.get("loss"), final=final,
                      resumed_from=f.resumed_from or 0, seconds=f.seconds, plot=str(f.plot) if f.plot else None)
        return final, fields

    def run_extra(self) -> dict[str, Any]:
        return {}
