"""HFEngine mechanics on a tiny random Llama (SmolLM2's tokenizer, 2 layers of width 32): fast, no pack.

Random weights say nothing about quality, but batching, padding, per-row params, seeds, streaming,
templates and adapters behave exactly as on a real model (tests/integration checks the answers).
"""

from __future__ import annotations

import shutil

import pytest

from ownchat.engines.base import ChatRequest, SamplingParams
from ownchat.engines.hf import HFEngine

torch = pytest.importorskip("torch")
QS = ["What is the capital of France?", "Hi", "Tell me a long story about a dragon and a knight.", "2+2?"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    from transformers import LlamaConfig, LlamaForCausalLM

    from ownchat.paths import hf_dir

    src = hf_dir() / "smollm2-135m-instruct"
    if not (src / "tokenizer.json").exists():
        pytest.skip("needs the SmolLM2 tokenizer (converted pack)")
    out = tmp_path_factory.mktemp("tiny")
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (src / name).exists():
            shutil.copy(src / name, out / name)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=49152, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      bos_token_id=1, eos_token_id=2, pad_token_id=2, tie_word_embeddings=True)
    LlamaForCausalLM(cfg).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def eng(tiny_dir):
    return HFEngine(tiny_dir, batch_size=4, log=lambda m: None)


def ask(q, **p):
    return ChatRequest.chat([{"role": "user", "content": q}], SamplingParams(**{"max_tokens": 12, **p}))


def test_batch_equals_single_for_every_row(eng):
    reqs = [ask(q) for q in QS]
    batched = dict(eng.generate_many(reqs))
    for i, r in enumerate(reqs):
        single = eng.generate(r)
        assert (batched[i].text, batched[i].completion_tokens) == (single.text, single.completion_tokens)
        assert batched[i].prompt_tokens == single.prompt_tokens > 5


def test_rows_keep_their_own_limits_and_seeds(eng):
    reqs = [ask(QS[0], max_tokens=3), ask(QS[1], max_tokens=10), ask(QS[2], temperature=1.0, seed=5),
            ask(QS[2], temperature=1.0, seed=5), ask(QS[2], temperature=1.0, seed=6)]
    out = dict(eng.generate_many(reqs, concurrency=5))
    assert out[0].completion_tokens <= 3 and out[1].completion_tokens <= 10
    if out[0].completion_tokens == 3:
        assert out[0].finish_reason == "length"
    assert out[2].text == out[3].text  # same seed, same draw, whatever else is in the batch
    assert eng.generate(reqs[2]).text == out[2].text
    assert out[4].text != out[2].text


def test_stop_strings_cut_and_stop(eng):
    full = eng.generate(ask(QS[2], max_tokens=20))
    if len(full.text) < 4:
        pytest.skip("random model stopped too early to place a stop string")
    stop = full.text[2:4]
    cut = eng.generate(ask(QS[2], max_tokens=20, stop=(stop,)))
    assert stop not in cut.text and full.text.startswith(cut.text) and cut.finish_reason == "stop"
    assert "".join(eng.stream(ask(QS[2], max_tokens=20, stop=(stop,)))) == cut.text


def test_stream_matches_generate_and_completion_mode(eng):
    req = ask(QS[2], max_tokens=16)
    assert "".join(eng.stream(req)) == eng.generate(req).text
    raw = eng.generate(ChatRequest.completion("The capital of France is", SamplingParams(max_tokens=4)))
    assert raw.prompt_tokens == 5 and raw.completion_tokens <= 4


def test_too_long_prompt_is_an_error_record_not_a_crash(eng):
    long = ask("word " * 600)
    out = dict(eng.generate_many([long, ask(QS[1])]))
    assert out[0].finish_reason == "error" and "context" in out[0].error and out[1].ok


def test_named_template_and_identity(tiny_dir, eng):
    chatml = HFEngine(tiny_dir, chat_template="chatml", log=lambda m: None)
    assert chatml.model_id != eng.model_id and chatml.model_id.endswith("+tpl:chatml")
    ids = chatml.prompt_ids(ask("Hi"))
    text = chatml.tokenizer.decode(ids)
    assert text == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"  # no SmolLM default system
    assert chatml.tokenizer.convert_tokens_to_ids("<|im_end|>") in chatml.eos_ids


def test_lora_adapter_is_applied(tiny_dir, eng, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    peft = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_dir),
                          LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft.save_pretrained(tmp_path / "adapter")
    tuned = HFEngine(tiny_dir, adapter=tmp_path / "adapter", log=lambda m: None)
    assert "+adapter:adapter:" in tuned.model_id
    base_logits = eng.model(torch.tensor([[1, 2, 3]])).logits
    tuned_logits = tuned.model(torch.tensor([[1, 2, 3]])).logits
    assert not torch.allclose(base_logits, tuned_logits)
