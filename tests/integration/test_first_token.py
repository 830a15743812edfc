"""Every path puts the same first token before a chat: BOS when the tokenizer adds one, never twice.

gemma-3's tokenizer adds ``<bos>``, ChatML does not write it, and llama.cpp adds it (the GGUF's
``add_bos_token``). Before this was fixed, training and transformers ran gemma taught ChatML without
``<bos>`` and llama.cpp served it with one. The fast tests give SmolLM2's real tokenizer a BOS-adding
post-processor (the pack's own adds nothing); the gemma pack itself is checked in ``make test-slow``.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from ownchat.engines.base import ChatRequest, SamplingParams
from ownchat.engines.hf import HFEngine
from ownchat.engines.templates import CHATML, GEMMA, TEMPLATES, with_bos
from ownchat.train.render import render_conversation

CHAT = [{"role": "user", "content": "Say hi in lowercase."}, {"role": "assistant", "content": "hi there."}]


def _tokenizer(path: Path, adds_bos: bool):
    from tokenizers.processors import TemplateProcessing
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if adds_bos:  # like gemma's: "<|endoftext|>" (id 0) plays <bos>
        tok.bos_token = "<|endoftext|>"
        tok._tokenizer.post_processor = TemplateProcessing(single="<|endoftext|> $A",
                                                           special_tokens=[("<|endoftext|>", 0)])
    return tok


def _prompt_ids(tok, template: str) -> list[int]:
    engine = SimpleNamespace(tokenizer=tok, _jinja=template)  # prompt_ids reads only these two
    return HFEngine.prompt_ids(engine, ChatRequest.chat(CHAT[:1], SamplingParams()))


def test_a_bos_adding_tokenizer_gets_bos_once_in_training_and_in_generation(smollm2_hf):
    tok = _tokenizer(smollm2_hf, adds_bos=True)
    ids, mask = render_conversation(tok, CHAT, CHATML)
    plain = tok(tok.apply_chat_template(CHAT, chat_template=CHATML, tokenize=False), add_special_tokens=False)
    assert ids == [0, *plain["input_ids"]] and mask[0] == 0  # BOS is context, never a target
    assert tok.decode([i for i, m in zip(ids, mask, strict=True) if m]) == "hi there.<|im_end|>"
    prompt = _prompt_ids(tok, CHATML)
    assert prompt[0] == 0 and prompt[1] != 0 and ids[:len(prompt)] == prompt  # generation sees training's prefix
    assert with_bos(tok, ids) is ids  # already led by BOS: not doubled


def test_a_template_that_writes_bos_itself_is_not_given_a_second(smollm2_hf):
    tok = _tokenizer(smollm2_hf, adds_bos=True)
    ids, _ = render_conversation(tok, CHAT, GEMMA)  # "{{ bos_token }}" first
    assert ids[0] == 0 and ids[1] != 0


def test_a_tokenizer_without_bos_is_left_alone(smollm2_hf):
    tok = _tokenizer(smollm2_hf, adds_bos=False)
    ids, _ = render_conversation(tok, CHAT, CHATML)
    assert ids == tok(tok.apply_chat_template(CHAT, chat_template=CHATML, tokenize=False),
                      add_special_tokens=False)["input_ids"]
    prompt = _prompt_ids(tok, CHATML)
    assert ids[:len(prompt)] == prompt


@pytest.mark.slow
@pytest.mark.model
@pytest.mark.parametrize("name", ["chatml", "gemma"])
def test_gemma_base_sees_the_same_prompt_tokens_in_training_and_on_llamacpp(name):
    from transformers import AutoTokenizer

    from ownchat.engines import load_engine
    from ownchat.models.resolve import ensure_hf

    tok = AutoTokenizer.from_pretrained(ensure_hf("gemma-3-270m", log=lambda m: None))
    ids, mask = render_conversation(tok, CHAT, TEMPLATES[name])
    assert ids[0] == tok.bos_token_id and ids[1] != tok.bos_token_id
    eng = load_engine("gemma-3-270m", "llamacpp", chat_template=name, concurrency=1, log=lambda m: None)
    try:
        comp = eng.generate(ChatRequest.chat(CHAT[:1], SamplingParams(max_tokens=1)))
    finally:
        eng.close()
    assert comp.prompt_tokens == mask.index(1) == len(_prompt_ids(tok, TEMPLATES[name]))


@pytest.mark.model
@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_llamacpp_renders_each_named_template_as_transformers_does(name, smollm2_hf, smollm2_gguf):
    """llama.cpp runs templates in Jinja mode, where a *name* is rendered as literal text: given
    "gemma" it fed the model a 3-token prompt. The engine passes the template's Jinja text instead."""
    from transformers import AutoTokenizer

    from ownchat.engines import load_engine

    tok = AutoTokenizer.from_pretrained(smollm2_hf)
    eng = load_engine(str(smollm2_gguf), "llamacpp", chat_template=name, concurrency=1, log=lambda m: None)
    try:
        comp = eng.generate(ChatRequest.chat(CHAT[:1], SamplingParams(max_tokens=1)))
    finally:
        eng.close()
    assert comp.prompt_tokens == len(_prompt_ids(tok, TEMPLATES[name]))
