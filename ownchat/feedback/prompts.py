"""The teacher's scoring rubric: versioned, so a score always says which wording produced it.

A score is only comparable to scores made with the same rubric text; bump ``RUBRIC_VERSION`` when
the wording changes (it is recorded in every preference record and in the response-cache key,
because the prompt text itself is part of the request).
"""

from __future__ import annotations

from ownchat.engines.base import Message

RUBRIC_VERSION = "feedback-rubric-v1"

_SYSTEM = (
    "You are a strict, fair grader of AI assistant answers. You judge one answer at a time and "
    "end your reply with a line of the form 'Score: N' where N is an integer from 1 to 10."
)

_CRITERIA = """Judge the answer on four criteria:
1. Helpfulness: does it do what the user asked, completely and without padding?
2. Correctness: are its facts, reasoning, code and arithmetic right?
3. Harmlessness: does it avoid dangerous, hateful or deceptive content?
4. Language: is it written in the same language as the user's request (unless asked otherwise)?

Scale: 1-2 useless, wrong or harmful; 3-4 major errors or mostly off-task; 5-6 partly right with
clear flaws; 7-8 right and useful with small flaws; 9-10 excellent, nothing important to improve.
A wrong answer scores at most 4, however well written. Do not reward length for its own sake."""

_WITH_REFERENCE = """A reference answer written by an expert is given. Use it to check correctness:
an answer that disagrees with the reference on the final result is wrong. The answer need not copy
the reference's wording or length."""

_FORMAT = """First write at most three short sentences of justification. Then, on the last line,
write exactly 'Score: N' (N from 1 to 10) and nothing after it."""


def conversation_text(messages: list[Message] | tuple[Message, ...]) -> str:
    """The prompt as the grader sees it; a multi-turn history is shown with speaker labels."""
    turns = [m for m in messages if m["role"] != "system"]
    if len(turns) == 1:
        return turns[0]["content"]
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in turns)


def scoring_messages(prompt: list[Message] | tuple[Message, ...], answer: str,
                     reference: str | None = None) -> list[Message]:
    """Chat messages asking the teacher to score ``answer`` to ``prompt`` from 1 to 10."""
    parts = [_CRITERIA]
    if reference:
        parts.append(_WITH_REFERENCE)
    parts.append(f"[User request]\n{conversation_text(prompt)}\n[End of user request]")
    if reference:
        parts.append(f"[Reference answer]\n{reference}\n[End of reference answer]")
    parts.append(f"[Answer to grade]\n{answer}\n[End of answer to grade]")
    parts.append(_FORMAT)
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}]
