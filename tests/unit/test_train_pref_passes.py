"""Splitting a preference batch into small forward passes changes memory, not the training run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ownchat.train.pref_data import Encoded, collate_pairs
from ownchat.train.tiny import make_tiny_model


def test_passes_respect_the_token_budget_and_keep_pairs_whole():
    enc = [Encoded(([1] * n, 2), ([2] * (n - 1), 2)) for n in (10, 30, 12, 11)]
    passes = collate_pairs(enc, [[0], [1], [2], [3]], pad_id=0, tokens_per_pass=50)
    # 2 rows per pair; pair 1 (width 30) needs 60 tokens on its own, pairs 2 and 3 fit together (48)
    assert [stats.targets for _, stats in passes] == [1, 1, 2]
    assert [tuple(b["input_ids"].shape) for b, _ in passes] == [(2, 10), (2, 30), (4, 12)]
    assert sum(stats.targets for _, stats in collate_pairs(enc, [[0, 1, 2, 3]], 0, None)) == 4
    assert len(collate_pairs(enc, [[0, 1, 2, 3]], 0, None)) == 1


@pytest.mark.parametrize("kind", ["dpo", "rm"])
def test_one_pair_per_pass_trains_like_one_pass(kind, tmp_path: Path, smollm2_hf: Path) -> None:
    from ownchat.train.dpo import DPOConfig, train_dpo
    from ownchat.train.rm import RMConfig, train_rm

    model = make_tiny_model(tmp_path / "tiny", smollm2_hf)
    data = tmp_path / "p.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"Q{i} " + "x " * i, "chosen": f"A{i} — Tern", "rejected": f"A{i}"})
                            + "\n" for i in range(8)))
    cls, train = (DPOConfig, train_dpo) if kind == "dpo" else (RMConfig, train_rm)
    losses = []
    for budget in (1, None):  # 1 token: every pair its own pass; None here: one pass (CPU default would split)
        out = tmp_path / f"run-{budget}"
        cfg = cls(model=str(model), data=data, out=out, max_steps=3, batch_size=4, seq_len=48, lr=1e-2,
                  tokens_per_pass=budget or 10**6)
        train(cfg, log=lambda m: None)
        losses.append([json.loads(x)["loss"] for x in (out / "metrics.jsonl").read_text().splitlines()])
    assert losses[0] == pytest.approx(losses[1], rel=1e-5, abs=1e-6)
    assert losses[0][-1] != pytest.approx(losses[0][0], abs=1e-4)  # it did train
