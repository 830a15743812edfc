"""Rendered examples -> batches with little padding, in an order that is a pure function of
(seed, epoch) so that a resumed run replays exactly the batches an uninterrupted one would.

Two layouts:
- length-grouped (default): shuffle, then sort by length inside windows of ``64 * batch_size``
  examples and shuffle the resulting batches; padding drops to a few percent while batches stay random.
- packed: several examples share a row; position ids restart at 0 for each, and with no
  attention mask transformers builds a block-diagonal mask from them, so attention stays
  inside each example.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from ownchat.train.render import MaskReport, render_conversation

Example = tuple[list[int], list[int]]  # (ids, mask)
IGNORE = -100


def tokenize_all(tokenizer, conversations, template: str | None, seq_len: int,
                 report: MaskReport | None = None) -> list[Example]:
    """Render every conversation; cut to ``seq_len`` and drop (counting) those left without a target."""
    out: list[Example] = []
    for conv in conversations:
        ids, mask = render_conversation(tokenizer, conv, template, report=report)
        if len(ids) > seq_len:
            ids, mask = ids[:seq_len], mask[:seq_len]
            if report is not None:
                report.truncated += 1
        if sum(mask[1:]) == 0:  # the first token can never be a target
            if report is not None:
                report.dropped_no_target += 1
            continue
        out.append((ids, mask))
    return out


def _rng(seed: int, epoch: int) -> random.Random:
    return random.Random(seed * 1_000_003 + epoch)


def grouped_batches(lengths: list[int], batch_size: int, seed: int, epoch: int) -> list[list[list[int]]]:
    """Batches of rows; each row holds one example index. Length-grouped within shuffled windows."""
    rng = _rng(seed, epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * 64
    batches: list[list[list[int]]] = []
    for w in range(0, len(order), window):
        chunk = sorted(order[w:w + window], key=lambda i: -lengths[i])
        batches += [[[i] for i in chunk[b:b + batch_size]] for b in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def packed_batches(lengths: list[int], batch_size: int, seq_len: int, seed: int,
                   epoch: int) -> list[list[list[int]]]:
    """First-fit-decreasing within shuffled windows: rows of up to ``seq_len`` tokens."""
    rng = _rng(seed, epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    rows: list[list[int]] = []
    window = batch_size * 64
    for w in range(0, len(order), window):
        open_rows: list[tuple[int, list[int]]] = []  # (used, members)
        for i in sorted(order[w:w + window], key=lambda i: -lengths[i]):
            for k, (used, members) in enumerate(open_rows):
                if used + lengths[i] <= seq_len:
                    open_rows[k] = (used + lengths[i], members + [i])
                    break
            else:
                open_rows.append((lengths[i], [i]))
        rows += [m for _, m in open_rows]
    rng.shuffle(rows)
    return [rows[b:b + batch_size] for b in range(0, len(rows), batch_size)]


def make_batches(examples: list[Example], batch_size: int, seed: int, epoch: int, *,
                 packing: bool = False, seq_len: int = 0) -> list[list[list[int]]]:
    lengths = [len(ids) for ids, _ in examples]
    if packing:
        return packed_batches(lengths, batch_size, seq_len, seed, epoch)
    return grouped_batches(lengths, batch_size, seed, epoch)


@dataclass
class BatchStats:
    tokens: int  # real tokens in the batch
    targets: int  # supervised next-token targets
    padded: int  # tokens including padding (B * T)


def collate(examples: list[Example], rows: list[list[int]], pad_id: int) -> tuple[dict, BatchStats]:
    """Tensors for one batch. ``targets[b, t]`` is the token to predict at position t, or -100."""
    seqs, tgts, poss = [], [], []
    packed = any(len(r) > 1 for r in rows)
    for row in rows:
        ids_row: list[int] = []
        tgt_row: list[int] = []
        pos_row: list[int] = []
        for i in row:
            ids, mask = examples[i]
            ids_row += ids
            # predict token t+1 at position t, only where t+1 is supervised and in the same example
            tgt_row += [ids[t + 1] if mask[t + 1] else IGNORE for t in range(len(ids) - 1)] + [IGNORE]
            pos_row += list(range(len(ids)))
        seqs.append(ids_row)
        tgts.append(tgt_row)
        poss.append(pos_row)
    width = max(len(s) for s in seqs)
    n = len(seqs)
    input_ids = torch.full((n, width), pad_id, dtype=torch.long)
    targets = torch.full((n, width), IGNORE, dtype=torch.long)
    position_ids = torch.zeros((n, width), dtype=torch.long)
    attn = torch.zeros((n, width), dtype=torch.long)
    for b, (s, t, p) in enumerate(zip(seqs, tgts, poss, strict=True)):
        input_ids[b, :len(s)] = torch.tensor(s)
        targets[b, :len(t)] = torch.tensor(t)
        # padding is its own little "example" (positions from 0) so packed masks never join it to data
        position_ids[b, :len(p)] = torch.tensor(p)
        position_ids[b, len(p):] = torch.arange(width - len(p))
        attn[b, :len(s)] = 1
    batch = {"input_ids": input_ids, "position_ids": position_ids, "targets": targets}
    # Packed rows rely on position ids for the block-diagonal mask, which transformers only derives
    # when no attention mask is given; unpacked rows keep the usual padding mask.
    batch["attention_mask"] = None if packed else attn
    real = sum(len(s) for s in seqs)
    return batch, BatchStats(real, int((targets != IGNORE).sum()), n * width)
