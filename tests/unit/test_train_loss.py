"""TokenLoss (logits only at supervised positions) equals the usual full-logits loss, and packing
keeps attention inside each example (a packed row gives the same loss as the examples alone)."""

from __future__ import annotations

import pytest
import torch

from ownchat.train.collate import collate
from ownchat.train.token_loss import TokenLoss


@pytest.fixture(scope="module")
def tiny():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=101, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128)
    return LlamaForCausalLM(cfg).eval()


EXAMPLES = [([5, 6, 7, 8, 9, 10], [0, 0, 1, 1, 1, 1]), ([11, 12, 13, 14], [0, 0, 1, 1]),
            ([20, 21, 22, 23, 24, 25, 26, 27], [0, 0, 0, 0, 1, 1, 1, 1])]


def test_token_loss_matches_full_logits(tiny):
    batch, stats = collate(EXAMPLES, [[0], [1], [2]], pad_id=0)
    with torch.no_grad():
        total, n = TokenLoss(tiny)(**batch)
        # reference: the standard shifted loss with labels = ids where supervised
        logits = tiny(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    ref = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["targets"].reshape(-1),
                                            ignore_index=-100, reduction="sum")
    assert int(n) == stats.targets == 10
    assert float(total) == pytest.approx(float(ref), rel=1e-5)


def test_packed_row_equals_separate_examples(tiny):
    loss = TokenLoss(tiny)
    with torch.no_grad():
        packed, _ = collate(EXAMPLES, [[0, 1, 2]], pad_id=0)
        assert packed["attention_mask"] is None
        together, n1 = loss(**packed)
        apart = sum(float(loss(**collate(EXAMPLES, [[i]], pad_id=0)[0])[0]) for i in range(3))
        # a packed row padded next to a longer one: padding must not leak into the examples either
        padded, n2 = loss(**collate(EXAMPLES, [[0, 1], [2]], pad_id=0)[0])
    assert int(n1) == int(n2) == 10
    assert float(together) == pytest.approx(apart, rel=1e-5)
    assert float(padded) == pytest.approx(apart, rel=1e-5)


@pytest.mark.parametrize("head_trainable", [False, True])
def test_chunked_head_matches_plain_log_softmax_and_its_gradients(monkeypatch, head_trainable):
    """SelectedLogp (logits recomputed in backward, chunk by chunk) == log_softmax + gather, values and grads."""
    import ownchat.train.token_loss as tl

    monkeypatch.setattr(tl, "CHUNK_ELEMENTS", 101 * 3)  # 3 rows per chunk: several chunks and a ragged last one
    torch.manual_seed(1)
    h = torch.randn(10, 16, dtype=torch.float64, requires_grad=True)
    head = torch.nn.Linear(16, 101, bias=False).double().requires_grad_(head_trainable)
    target = torch.randint(0, 101, (10,))
    upstream = torch.randn(10, dtype=torch.float64)

    got = tl.selected_logps(h, head, target, None)
    (got * upstream).sum().backward()
    got_h, got_w = h.grad.clone(), head.weight.grad.clone() if head_trainable else None
    h.grad = None
    head.weight.grad = None
    want = head(h).log_softmax(-1).gather(1, target[:, None]).squeeze(1)
    (want * upstream).sum().backward()
    assert torch.allclose(got.detach(), want.detach(), atol=1e-10)
    assert torch.allclose(got_h, h.grad, atol=1e-10)
    if head_trainable:
        assert torch.allclose(got_w, head.weight.grad, atol=1e-10)
