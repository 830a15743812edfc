"""Per-message loss masks: property tests over random conversations and several chat templates."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ownchat.train.collate import IGNORE, collate, tokenize_all
from ownchat.train.render import MaskReport, render_conversation
from ownchat.train.templates import CHATML, GEMMA, LLAMA3


@pytest.fixture(scope="module")
def tokenizers(smollm2_hf: Path):
    """(tokenizer, template, end-of-turn string) for SmolLM2's own template, ChatML, Llama-3, Gemma.

    SmolLM2's tokenizer comes from the pack's HF conversion in this run's OWNCHAT_HOME (the session
    fixture converts it when missing), so these tests run on any fresh clone, never skip.
    """
    from transformers import AutoTokenizer

    base = AutoTokenizer.from_pretrained(smollm2_hf)
    llama = AutoTokenizer.from_pretrained(smollm2_hf)
    llama.add_special_tokens({"additional_special_tokens": ["<|start_header_id|>", "<|end_header_id|>",
                                                            "<|eot_id|>"]})
    gemma = AutoTokenizer.from_pretrained(smollm2_hf)
    gemma.add_special_tokens({"additional_special_tokens": ["<start_of_turn>", "<end_of_turn>"]})
    return {"smollm2": (base, None, "<|im_end|>"), "chatml": (base, CHATML, "<|im_end|>"),
            "llama3": (llama, LLAMA3, "<|eot_id|>"), "gemma": (gemma, GEMMA, "<end_of_turn>")}


# Text that starts with a non-space character (a leading newline would legitimately merge with the
# template's own newline; that case is tested separately below).
_text = st.text(alphabet=st.sampled_from(list("abcXYZ019 ,.!?'\"\n\t-_éü中🙂")), min_size=0, max_size=30)
content = st.builds(lambda first, rest: first + rest, st.sampled_from(list("aQz7(é中")), _text)


@st.composite
def conversations(draw):
    msgs = []
    if draw(st.booleans()):
        msgs.append({"role": "system", "content": draw(content)})
    for _ in range(draw(st.integers(1, 4))):
        msgs.append({"role": "user", "content": draw(content)})
        msgs.append({"role": "assistant", "content": draw(content)})
    return msgs


@pytest.mark.parametrize("name", ["smollm2", "chatml", "llama3", "gemma"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(conv=conversations())
def test_mask_selects_exactly_the_assistant_turns(tokenizers, name, conv):
    tok, tpl, eot = tokenizers[name]
    report = MaskReport()
    ids, mask = render_conversation(tok, conv, tpl, report=report)
    assert len(ids) == len(mask)
    assert report.problems == 0, report.summary()
    supervised = tok.decode([i for i, m in zip(ids, mask, strict=True) if m])
    expected = "".join(m["content"] + eot for m in conv if m["role"] == "assistant")
    assert supervised == expected
    # the end-of-turn token is trained once per assistant turn: the model learns to stop
    eot_id = tok.convert_tokens_to_ids(eot)
    n_assistant = sum(m["role"] == "assistant" for m in conv)
    assert sum(1 for i, m in zip(ids, mask, strict=True) if m and i == eot_id) == n_assistant
    # and the unsupervised part is everything else: the whole rendering is accounted for
    assert tok.decode(ids) == tok.apply_chat_template(conv, chat_template=tpl, tokenize=False)


def test_multi_turn_conversations_are_kept(tokenizers):
    """FastChat's mismatch bug skipped every multi-turn sample; here every turn is trained."""
    tok, tpl, _ = tokenizers["smollm2"]
    conv = [{"role": "user", "content": f"q{i}"} if i % 2 == 0 else {"role": "assistant", "content": f"a{i}"}
            for i in range(8)]
    report = MaskReport()
    examples = tokenize_all(tok, [conv] * 3, tpl, 4096, report)
    assert len(examples) == 3 and report.assistant_turns == 12 and report.problems == 0


def test_end_of_turn_is_a_training_target(tokenizers):
    tok, tpl, _ = tokenizers["chatml"]
    conv = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
    ex = tokenize_all(tok, [conv], tpl, 512)
    batch, stats = collate(ex, [[0]], tok.pad_token_id)
    targets = [t for t in batch["targets"][0].tolist() if t != IGNORE]
    assert tok.decode(targets) == "Hello.<|im_end|>"
    assert targets[-1] == tok.convert_tokens_to_ids("<|im_end|>")
    assert stats.targets == len(targets)


def test_boundary_problems_are_reported_not_hidden(tokenizers):
    """Llama-3 markers that are *not* special tokens merge with neighbouring text: counted, with an example."""
    tok, _, _ = tokenizers["smollm2"]  # no <|eot_id|> special token in this tokenizer
    conv = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "More"}, {"role": "assistant", "content": "Sure."}]
    report = MaskReport()
    render_conversation(tok, conv, LLAMA3, report=report)
    assert report.problems > 0
    assert "example" in report.summary().lower() and report.example


def test_truncation_is_counted_and_answerless_examples_dropped(tokenizers):
    tok, tpl, _ = tokenizers["chatml"]
    long_user = [{"role": "user", "content": "word " * 300}, {"role": "assistant", "content": "ok"}]
    fine = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello " * 40}]
    report = MaskReport()
    ex = tokenize_all(tok, [long_user, fine], tpl, 32, report)
    assert len(ex) == 1 and report.dropped_no_target == 1 and report.truncated == 2
    assert all(len(ids) <= 32 for ids, _ in ex)
