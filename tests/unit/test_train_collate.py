"""Batches: deterministic order per (seed, epoch), little padding, packing with position resets."""

from __future__ import annotations

import random

import torch

from ownchat.train.collate import IGNORE, collate, grouped_batches, make_batches, packed_batches


def _examples(n=200, seed=0):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.randint(4, 120)
        ids = [rng.randint(3, 999) for _ in range(k)]
        mask = [0] * (k // 2) + [1] * (k - k // 2)
        out.append((ids, mask))
    return out


def test_grouped_order_is_a_function_of_seed_and_epoch():
    lengths = [len(i) for i, _ in _examples()]
    a = grouped_batches(lengths, 4, seed=1, epoch=0)
    assert a == grouped_batches(lengths, 4, seed=1, epoch=0)
    assert a != grouped_batches(lengths, 4, seed=1, epoch=1)
    assert sorted(i for b in a for row in b for i in row) == list(range(len(lengths)))


def test_grouping_cuts_padding():
    ex = _examples()
    lengths = [len(i) for i, _ in ex]

    def pad_frac(batches):
        real = padded = 0
        for rows in batches:
            _, s = collate(ex, rows, 0)
            real, padded = real + s.tokens, padded + s.padded
        return 1 - real / padded

    rng = random.Random(0)
    order = list(range(len(ex)))
    rng.shuffle(order)
    naive = [[[i] for i in order[b:b + 4]] for b in range(0, len(order), 4)]
    assert pad_frac(grouped_batches(lengths, 4, 0, 0)) < 0.1 < pad_frac(naive)


def test_packing_fills_rows_and_resets_positions():
    ex = _examples()
    lengths = [len(i) for i, _ in ex]
    batches = packed_batches(lengths, 2, 256, seed=0, epoch=0)
    assert sorted(i for b in batches for row in b for i in row) == list(range(len(ex)))
    assert all(sum(lengths[i] for i in row) <= 256 for b in batches for row in b)
    rows = next(b for b in batches if len(b[0]) > 1)
    batch, _ = collate(ex, rows, 0)
    assert batch["attention_mask"] is None  # transformers derives the block mask from position ids
    first = rows[0]
    n0 = lengths[first[0]]
    pos = batch["position_ids"][0]
    assert pos[0] == 0 and pos[n0 - 1] == n0 - 1 and pos[n0] == 0  # restarts for the second example
    # the last token of example 1 does not predict the first token of example 2
    assert batch["targets"][0, n0 - 1] == IGNORE


def test_targets_are_next_supervised_tokens():
    ex = [([5, 6, 7, 8], [0, 0, 1, 1]), ([9, 10], [0, 1])]
    batch, stats = collate(ex, [[0], [1]], pad_id=0)
    assert batch["targets"].tolist() == [[IGNORE, 7, 8, IGNORE], [10, IGNORE, IGNORE, IGNORE]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert stats.targets == 3 and stats.tokens == 6 and stats.padded == 8
    assert torch.equal(batch["input_ids"][1], torch.tensor([9, 10, 0, 0]))


def test_make_batches_dispatch():
    ex = _examples(20)
    assert make_batches(ex, 4, 0, 0) == grouped_batches([len(i) for i, _ in ex], 4, 0, 0)
    assert make_batches(ex, 4, 0, 0, packing=True, seq_len=300) == packed_batches(
        [len(i) for i, _ in ex], 4, 300, 0, 0)
