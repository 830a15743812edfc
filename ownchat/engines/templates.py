"""Named chat templates, for models that ship none (base models) or when a run pins one.

A ``chat_template`` setting is either one of these names or a Jinja string; ``template_text`` turns
either into the Jinja text ``tokenizer.apply_chat_template`` takes. Both engines are given that text
(llama.cpp in Jinja mode renders a bare name as literal text), so they render alike.
"""

from __future__ import annotations

# ChatML: what SmolLM2 and Qwen use natively, and our default for base models (a fine-tune teaches it).
CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Gemma's turn format (no system role: a system message is folded into the first user turn).
GEMMA = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] != 'system' %}"
    "{% set role = 'model' if message['role'] == 'assistant' else 'user' %}"
    "{{ '<start_of_turn>' + role + '\n' }}"
    "{% if loop.index0 == 1 and messages[0]['role'] == 'system' %}{{ messages[0]['content'] + '\n\n' }}{% endif %}"
    "{{ message['content'] + '<end_of_turn>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)

# Llama 3 header format.
LLAMA3 = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] + '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

TEMPLATES: dict[str, str] = {"chatml": CHATML, "gemma": GEMMA, "llama3": LLAMA3}

#: strings that end an assistant turn in the template families we know: the one list. Training
#: supervises them (train/render.py); generation stops at those the template writes (``turn_ends``).
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "<|endoftext|>", "</s>", "<|end_of_text|>")

DEFAULT_TEMPLATE = "chatml"


def is_named(template: str | None) -> bool:
    return template is not None and template in TEMPLATES


def template_text(template: str) -> str:
    """A template name -> its Jinja text; anything containing Jinja syntax is returned as is."""
    if template in TEMPLATES:
        return TEMPLATES[template]
    if "{%" in template or "{{" in template:
        return template
    from ownchat.errors import UserError

    raise UserError(f"unknown chat template {template!r}: use one of {', '.join(TEMPLATES)} or a Jinja string")


def turn_ends(jinja: str | None) -> tuple[str, ...]:
    """The turn-end markers a template writes: generation must stop there even when the tokenizer's
    EOS is something else (a base model taught ChatML keeps ``</s>`` or ``<eos>`` as its EOS)."""
    return tuple(m for m in END_OF_TURN if jinja and m in jinja)


def with_bos(tokenizer, ids: list[int]) -> list[int]:
    """``ids`` of a rendered chat, led by the tokenizer's BOS when it adds one and the text lacks it.

    A chat is tokenised with ``add_special_tokens=False`` because a template may write BOS itself
    (Gemma's, Llama 3's); ChatML does not, so gemma-3 taught ChatML would otherwise be trained and run
    by transformers without the ``<bos>`` it always saw in pre-training, while llama.cpp adds it (the
    GGUF says ``add_bos_token``) — a trained model then meets a different first token at serving time.
    This is llama.cpp's rule, applied on every path: BOS if the tokenizer adds one, never twice.
    """
    lead = tokenizer("", add_special_tokens=True)["input_ids"]
    bos = tokenizer.bos_token_id
    if bos is None or not lead or lead[0] != bos or (ids and ids[0] == bos):
        return ids
    return [bos, *ids]
