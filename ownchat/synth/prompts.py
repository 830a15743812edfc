"""Versioned prompt templates for the teacher.

Every record carries the template name + version in its provenance, so a dataset says exactly which
prompt produced it. Change a template's wording -> bump its version (the response cache keys on the
prompt text anyway, so old answers are never mixed in silently).

The formats asked for here are the ones ``ownchat.synth.parse`` reads; parsers are lenient, prompts
are strict.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

VERSIONS = {
    "self-instruct.instructions": "v1",
    "self-instruct.classify": "v3",
    "self-instruct.instances": "v1",
    "self-instruct.class-instances": "v1",
    "alpaca.batch": "v1",
    "answer": "v1",
    "answer.constrained": "v1",
    "chat.user": "v1",
    "chat.assistant": "v1",
}

LANGUAGE_NAMES = {
    "en": "English", "zh-TW": "Traditional Chinese (繁體中文, as used in Taiwan)", "zh-CN": "Simplified Chinese",
    "zh": "Chinese", "ja": "Japanese", "ko": "Korean", "fr": "French", "de": "German", "es": "Spanish",
}

Messages = list[dict[str, str]]

# Every request carries a plain system prompt: some small quantised chat models (SmolLM2 Q4_1 on
# llama.cpp) fall back to their built-in default system prompt without one and degrade badly.
SYSTEM = {"role": "system", "content": "You are a helpful assistant."}


def template_id(name: str) -> str:
    return f"{name}/{VERSIONS[name]}"


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


def _lang_rule(language: str) -> str:
    if language == "en":
        return "Write everything in English."
    return f"Write every task, input and output in {language_name(language)}, not in English."


def _topic_rule(topic: str | None) -> str:
    return f" All tasks should relate to this topic: {topic}." if topic else ""


def self_instruct_instructions(examples: Sequence[str], n_new: int, language: str, topic: str | None) -> Messages:
    first = len(examples) + 1
    lines = [f"Task {i}: {inst}" for i, inst in enumerate(examples, start=1)]
    user = (
        "You are helping to build a diverse set of tasks for training an AI assistant.\n"
        f"Here are {len(examples)} example tasks:\n\n" + "\n".join(lines) + "\n\n"
        f"Come up with {n_new} new tasks, numbered Task {first} to Task {first + n_new - 1}, one per line. "
        "Make them diverse: different verbs, different kinds of tasks (writing, rewriting, classification, "
        "extraction, reasoning, coding, brainstorming, open questions), different difficulty. Each task is "
        "a single instruction of one or two sentences that a text-only assistant can do: nothing about "
        "images, audio, video, files, drawing or browsing. "
        f"{_lang_rule(language)}{_topic_rule(topic)} Write only the numbered tasks."
    )
    return [SYSTEM, {"role": "user", "content": user}]


def self_instruct_classify(instruction: str) -> Messages:
    # v3: a zero-shot A/B choice. The Qwen pack answered v2's few-shot yes/no question "Yes" for all 18
    # held-out seed tasks, and on 28 tasks of known kind (12 classification) a zero-shot yes/no said Yes
    # to all and a few-shot "list the labels" got 12 right; naming both kinds of answer as options got
    # 23/28 right (11/12 classification, 12/16 free-form).
    user = (
        f"Task: {instruction}\n\nWhat kind of answer does this task expect?\n"
        "A) one label picked from a few fixed options\n"
        "B) free text, code, a list, a translation or a number\n"
        "Answer with A or B."
    )
    return [SYSTEM, {"role": "user", "content": user}]


def self_instruct_instances(instruction: str, shots: Sequence[dict[str, Any]], language: str) -> Messages:
    """Input-first: invent an input, then solve it."""
    blocks = []
    for s in shots:
        inst = s["instances"][0]
        blocks.append(f"Task: {s['instruction']}\nInput: {inst['input'] or '<noinput>'}\nOutput: {inst['output']}")
    user = (
        "Come up with an example for the task below: first an input, then the correct output. If the task "
        "needs no input, write Input: <noinput>. Follow the format of these examples exactly.\n\n"
        + "\n\n".join(blocks)
        + f"\n\nTask: {instruction}\n{_lang_rule(language)}"
    )
    return [SYSTEM, {"role": "user", "content": user}]


def self_instruct_class_instances(instruction: str, shots: Sequence[dict[str, Any]], language: str) -> Messages:
    """Output-first (classification): name the labels, then write one input per label."""
    blocks = []
    for s in shots:
        lines = [f"Task: {s['instruction']}"]
        for inst in s["instances"]:
            lines.append(f"Class label: {inst['output']}\nInput: {inst['input'] or '<noinput>'}")
        blocks.append("\n".join(lines))
    user = (
        "Given a classification task, list its possible class labels and, for each label, write an input "
        "that belongs to that class. Write each pair as 'Class label: ...' followed by 'Input: ...'.\n\n"
        + "\n\n".join(blocks)
        + f"\n\nTask: {instruction}\n{_lang_rule(language)} Keep the labels short."
    )
    return [SYSTEM, {"role": "user", "content": user}]


def alpaca_batch(examples: Sequence[dict[str, str]], n: int, language: str, topic: str | None) -> Messages:
    shots = []
    for i, ex in enumerate(examples, start=1):
        shots.append(f"{i}. Instruction: {ex['instruction']}\n{i}. Input: {ex['input'] or '<noinput>'}\n"
                     f"{i}. Output: {ex['output']}")
    first = len(examples) + 1
    user = (
        f"You are asked to come up with a set of {n} diverse task instructions with their inputs and "
        "outputs, to train an AI assistant. Requirements:\n"
        "1. Do not repeat a verb across instructions, and vary the wording.\n"
        "2. Cover many kinds of tasks: open questions, writing, rewriting, classification, editing, "
        "extraction, reasoning, coding, brainstorming.\n"
        "3. The assistant is text-only: no images, audio, video, files, drawing or browsing.\n"
        "4. Instructions are one or two sentences; imperative or questions.\n"
        "5. Give a realistic input (under 100 words) when the task needs one; otherwise write <noinput>.\n"
        "6. Outputs are correct, complete answers of under 150 words.\n"
        f"7. {_lang_rule(language)}{_topic_rule(topic)}\n\n"
        "Separate tasks with ###, and number every field as in the examples:\n\n"
        + "\n###\n".join(shots)
        + f"\n###\n\nNow write tasks {first} to {first + n - 1} in the same format."
    )
    return [SYSTEM, {"role": "user", "content": user}]


def answer(messages: Messages, language: str | None, system: str | None) -> Messages:
    """Distillation: the conversation as it is, with an optional system prompt and language rule."""
    rules = []
    if system:
        rules.append(system)
    if language and language != "en":
        rules.append(f"Always answer in {language_name(language)}.")
    head = [{"role": "system", "content": " ".join(rules)}] if rules else []
    return head + [m for m in messages if m["role"] != "system" or not rules]


def chat_user(topic: str, history: Messages, language: str) -> Messages:
    """The teacher plays the human: the first question about ``topic``, or a natural follow-up."""
    if not history:
        user = (f"Write the first message a curious person might send to an AI assistant about: {topic}. "
                f"Make it specific and natural. {_lang_rule(language)} Write only the message itself.")
    else:
        convo = "\n\n".join(f"{'User' if m['role'] == 'user' else 'Assistant'}: {m['content']}" for m in history)
        user = (f"Here is a conversation between a user and an AI assistant:\n\n{convo}\n\n"
                "Write the user's next message: a natural follow-up question or request that builds on "
                f"the assistant's last answer. {_lang_rule(language)} Write only the message itself.")
    return [SYSTEM, {"role": "user", "content": user}]


def chat_assistant(history: Messages, language: str) -> Messages:
    rule = "" if language == "en" else f" Always answer in {language_name(language)}."
    system = "You are a helpful, accurate and friendly assistant." + rule
    return [{"role": "system", "content": system}, *history]
