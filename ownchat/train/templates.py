"""Named chat templates for models that ship without one, and how a run picks its template.

A base model (no ``chat_template`` in its tokenizer) gets a named default, ChatML unless told
otherwise. The name *and* the Jinja text are recorded in ``ownchat_run.json`` so that serving,
export (tokenizer + Ollama ``TEMPLATE``) and llama.cpp all render prompts exactly as training did.
"""

from __future__ import annotations

from ownchat.engines.templates import CHATML, END_OF_TURN, GEMMA, LLAMA3, TEMPLATES, template_text

__all__ = ["CHATML", "GEMMA", "LLAMA3", "NAMED", "choose_template", "template_text", "end_of_turn_strings"]

# One table for training and serving: a run trained with "chatml" is served with exactly that text.
NAMED: dict[str, str] = TEMPLATES


def choose_template(tokenizer, requested: str | None = None) -> tuple[str, str]:
    """(name, jinja) for a run: the requested one, else the model's own, else ChatML.

    The name is ``"model"`` when the tokenizer's own template is used, so that the run file says
    where the template came from while still carrying its full text.
    """
    if requested:
        return (requested if requested in NAMED else "custom"), template_text(requested)
    own = getattr(tokenizer, "chat_template", None)
    if isinstance(own, dict):  # a few tokenizers ship several named templates
        own = own.get("default") or next(iter(own.values()))
    if own:
        return "model", own
    return "chatml", CHATML


def end_of_turn_strings(tokenizer) -> tuple[str, ...]:
    extra = (tokenizer.eos_token,) if getattr(tokenizer, "eos_token", None) else ()
    return tuple(dict.fromkeys(END_OF_TURN + extra))
