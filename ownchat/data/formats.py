"""The conversation formats users already have, all normalised to OpenAI-style messages.

- Alpaca: ``instruction``, ``input`` (optional), ``output``
- Dolly: ``instruction``, ``context``, ``response``, ``category``
- ShareGPT: ``conversations: [{from: human|gpt|system, value}]``
- OpenAI messages: ``messages: [{role, content}]``
- prompt/completion: ``prompt``, ``completion`` (or ``output``/``response``)
- Self-Instruct seed tasks: ``instruction``, ``instances: [{input, output}]`` (the first instance
  stands for the task; ``ownchat data convert`` writes one record per instance)

``to_messages`` detects the format per record; ``from_messages`` writes any of them back.
"""

from __future__ import annotations

from typing import Any

from ownchat.errors import DataError

Messages = list[dict[str, str]]
FORMATS = ("alpaca", "sharegpt", "openai")

_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                   "chatgpt": "assistant", "bard": "assistant", "bing": "assistant", "system": "system"}


def detect_format(record: dict[str, Any]) -> str:
    if "messages" in record:
        return "openai"
    if "conversations" in record or "conversation" in record:
        return "sharegpt"
    if "instruction" in record and "response" in record:
        return "dolly"
    if "instruction" in record and isinstance(record.get("instances"), list) and record["instances"] \
            and "input" not in record and "output" not in record:
        return "self-instruct"
    if "instruction" in record:
        return "alpaca"
    if "prompt" in record:
        return "prompt"
    return "unknown"


def alpaca_prompt(instruction: str, inp: str = "") -> str:
    """How an Alpaca instruction and its optional input become one user turn."""
    inp = (inp or "").strip()
    if inp in ("<noinput>", "noinput", "<no input>"):
        inp = ""
    return f"{instruction.strip()}\n\n{inp}" if inp else instruction.strip()


def to_messages(record: dict[str, Any], *, where: tuple[object, int | None] = ("<record>", None),
                require_answer: bool = True) -> Messages:
    """Normalise one record. Raises DataError naming ``where`` (file, line) when it cannot."""
    fmt = detect_format(record)
    path, line = where
    if fmt == "openai":
        msgs = record["messages"]
        if not isinstance(msgs, list) or not msgs:
            raise DataError(path, line, "'messages' must be a non-empty list", "use [{role, content}, ...]")
        out = []
        for m in msgs:
            if not isinstance(m, dict) or "role" not in m or "content" not in m:
                raise DataError(path, line, "each message needs 'role' and 'content'", "")
            if m["role"] not in ("system", "user", "assistant"):
                raise DataError(path, line, f"unknown role {m['role']!r}", "roles: system, user, assistant")
            out.append({"role": m["role"], "content": str(m["content"])})
    elif fmt == "sharegpt":
        conv = record.get("conversations", record.get("conversation"))
        if not isinstance(conv, list) or not conv:
            raise DataError(path, line, "'conversations' must be a non-empty list", "use [{from, value}, ...]")
        out = []
        for turn in conv:
            who = str(turn.get("from", turn.get("role", ""))).lower()
            if who not in _SHAREGPT_ROLES:
                raise DataError(path, line, f"unknown speaker {who!r}", "ShareGPT speakers: human, gpt, system")
            out.append({"role": _SHAREGPT_ROLES[who], "content": str(turn.get("value", turn.get("content", "")))})
    elif fmt == "dolly":
        out = [{"role": "user", "content": alpaca_prompt(record["instruction"], record.get("context", ""))},
               {"role": "assistant", "content": str(record["response"])}]
    elif fmt == "alpaca":
        out = [{"role": "user", "content": alpaca_prompt(record["instruction"], record.get("input", ""))}]
        if "output" in record:
            out.append({"role": "assistant", "content": str(record["output"])})
    elif fmt == "self-instruct":
        # Read as Alpaca, a seed task lost its input (it lives in ``instances``): "describe the item
        # below" reached the teacher with no item, for 112 of the 134 shipped seeds.
        first = record["instances"][0]
        if not isinstance(first, dict):
            raise DataError(path, line, "each of 'instances' must be an object", "use [{input, output}, ...]")
        out = [{"role": "user", "content": alpaca_prompt(record["instruction"], str(first.get("input") or ""))}]
        if first.get("output"):
            out.append({"role": "assistant", "content": str(first["output"])})
    elif fmt == "prompt":
        out = [{"role": "user", "content": str(record["prompt"])}]
        answer = record.get("completion", record.get("output", record.get("response")))
        if answer is not None:
            out.append({"role": "assistant", "content": str(answer)})
    else:
        raise DataError(path, line, f"unrecognised record with keys {sorted(record)[:6]}",
                        "expected Alpaca (instruction/input/output), Dolly, ShareGPT (conversations) "
                        "or OpenAI (messages) records")
    if require_answer and not any(m["role"] == "assistant" for m in out):
        raise DataError(path, line, "record has no assistant answer", "training needs the response")
    return out


def from_messages(messages: Messages, fmt: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write messages in ``fmt`` ("alpaca" keeps the first user/assistant exchange only)."""
    extra = dict(extra or {})
    if fmt == "openai":
        return {**extra, "messages": messages}
    if fmt == "sharegpt":
        back = {"user": "human", "assistant": "gpt", "system": "system"}
        return {**extra, "conversations": [{"from": back[m["role"]], "value": m["content"]} for m in messages]}
    if fmt == "alpaca":
        user = next((m["content"] for m in messages if m["role"] == "user"), "")
        answer = next((m["content"] for m in messages if m["role"] == "assistant"), "")
        inst, _, inp = user.partition("\n\n")
        return {**extra, "instruction": inst, "input": inp, "output": answer}
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
