"""Versioned judge prompts, written for ownchat.

Each prompt has a name and a version, and its text is hashed: every verdict records all three, so a
report can tell verdicts from different prompt wordings apart (changing a word changes the hash even
if someone forgets to bump the version). The prompts ask for a *brief* explanation before the verdict:
a reason first makes small judges more accurate, and a short one keeps judging cheap.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ownchat.engines.base import Message

PROMPT_SET = "ownchat-judge"
# v2: v1's long rubric let a 1.5B judge rationalise a position-based pick ("both are correct, but B is
# more concise"). v2 is short and makes the judge first write one line per reply (does it agree with the
# reference / answer the request?) and only then the verdict.
# v3: with a tie option the 1.5B judge answered [[C]] to every pair (0/10/0 on correct vs degraded answers).
# Pairwise is now forced choice; a tie is what the two orders disagreeing produces (the swap rule), which
# also keeps a position-following judge from manufacturing wins. Wording matters a lot at 1.5B: on the
# correct-vs-degraded test, v2 gave 0/10/0 (all ties), a looser forced-choice wording 0/7/3, this one 9/1/0.
PROMPT_VERSION = 3  # v3 also adds the one-letter pair prompts (read from token probabilities)

_REFERENCE = ("A correct reference answer is given: a reply whose result differs from the reference is wrong, "
              "however well it is written. ")
_FOLLOWUP = ("The conversation has several user turns: judge only the reply to the LAST user message, using "
             "the earlier turns as context. ")
_BAD = ("A reply that is wrong, unfinished, about another topic, in another language than the user's, or that "
        "ignores the user's instructions is worse. Length and position are not quality. ")


@dataclass(frozen=True)
class JudgePrompt:
    name: str
    kind: str  # "single" | "single-digit" | "pair" | "pair-letter"
    system: str
    instruction: str  # appended after the material to judge

    @property
    def version(self) -> int:
        return PROMPT_VERSION

    @property
    def sha(self) -> str:
        return hashlib.sha256((self.system + "\x00" + self.instruction).encode()).hexdigest()[:12]

    def record(self) -> dict[str, object]:
        """What each verdict stores about the prompt that produced it."""
        return {"set": PROMPT_SET, "name": self.name, "version": self.version, "sha": self.sha}


def _single(name: str, reference: bool, multi: bool) -> JudgePrompt:
    system = ("You are a strict grader of an AI assistant's reply to a user. "
              + (_REFERENCE if reference else "") + (_FOLLOWUP if multi else "") + _BAD)
    check = "agrees with the reference answer" if reference else "correctly does what the user asked"
    instruction = (f"First write one short line saying whether the reply {check}. Then, on the last line, "
                   "give a score from 1 (useless or wrong) to 10 (excellent) in exactly this format: "
                   "Rating: [[N]]")
    return JudgePrompt(name, "single", system, instruction)


def _single_digit(name: str, reference: bool, multi: bool) -> JudgePrompt:
    """The same grading answered with one digit 1–9: the expected digit is the score."""
    base = _single(name, reference, multi)
    instruction = ("Rate the reply from 1 (useless or wrong) to 9 (excellent). Answer with the digit only. "
                   "Write nothing else.")
    return JudgePrompt(name, "single-digit", base.system, instruction)


def _pair(name: str, reference: bool, multi: bool) -> JudgePrompt:
    system = ("You are a strict judge comparing two replies, A and B, to the same user. "
              + (_REFERENCE if reference else "") + (_FOLLOWUP if multi else "") + _BAD)
    if reference:
        instruction = ("Compare each reply with the reference answer. Write one line 'A: correct' or 'A: wrong' "
                       "(with a few words why), then one line for B the same way. Then on the last line write "
                       "[[A]] if reply A is closer to the reference answer, or [[B]] if reply B is. You must "
                       "pick one.")
    else:
        instruction = ("Write one line 'A: ...' saying whether reply A correctly does what the user asked, then "
                       "one line 'B: ...' for reply B. Then on the last line write [[A]] if reply A does what "
                       "the user asked better, or [[B]] if reply B does. You must pick one.")
    return JudgePrompt(name, "pair", system, instruction)


def _pair_letter(name: str, reference: bool, multi: bool) -> JudgePrompt:
    """The same comparison answered with one letter: its first-token probabilities are the verdict."""
    base = _pair(name, reference, multi)
    better = "is closer to the reference answer" if reference else "does what the user asked better"
    instruction = (f"Which reply {better}? Answer with one letter only: A for reply A or B for reply B. "
                   "Write nothing else.")
    return JudgePrompt(name, "pair-letter", base.system, instruction)


PROMPTS: dict[str, JudgePrompt] = {
    p.name: p
    for p in [
        _single("single", False, False), _single("single-ref", True, False),
        _single("single-multi", False, True), _single("single-multi-ref", True, True),
        _single_digit("single-digit", False, False), _single_digit("single-digit-ref", True, False),
        _single_digit("single-digit-multi", False, True), _single_digit("single-digit-multi-ref", True, True),
        _pair("pair", False, False), _pair("pair-ref", True, False),
        _pair("pair-multi", False, True), _pair("pair-multi-ref", True, True),
        _pair_letter("pair-letter", False, False), _pair_letter("pair-letter-ref", True, False),
        _pair_letter("pair-letter-multi", False, True), _pair_letter("pair-letter-multi-ref", True, True),
    ]
}


def pick(kind: str, turn: int, reference: str | None) -> JudgePrompt:
    name = kind + ("-multi" if turn > 0 else "") + ("-ref" if reference else "")
    return PROMPTS[name]


def _conversation(turns: list[str], answers: list[str], upto: int, who: str) -> str:
    """Turns 0..upto as a transcript; only the last assistant reply is what gets judged."""
    parts = []
    for t in range(upto + 1):
        parts.append(f"### User:\n{turns[t]}")
        parts.append(f"### {who}:\n{answers[t] if t < len(answers) else ''}")
    return "\n\n".join(parts)


def _ref_block(reference: str | None) -> str:
    # after the question, right before the replies: small judges use what they read last
    return f"[Reference answer]\n{reference}\n[End of reference answer]\n\n" if reference else ""


def single_messages(turns: list[str], answers: list[str], turn: int, reference: str | None, *,
                    digit: bool = False) -> tuple[list[Message], JudgePrompt]:
    """Messages for grading ``answers[turn]`` (0-based); earlier turns are shown as context.

    ``digit=True`` asks for one digit 1–9 (read from token probabilities) instead of ``Rating: [[N]]``.
    """
    prompt = pick("single-digit" if digit else "single", turn, reference)
    if turn == 0:
        body = (f"[User message]\n{turns[0]}\n\n" + _ref_block(reference)
                + f"[Assistant reply]\n{answers[0]}\n[End of assistant reply]")
    else:
        body = (_ref_block(reference) + "[Conversation]\n" + _conversation(turns, answers, turn, "Assistant")
                + "\n[End of conversation]")
    return [{"role": "system", "content": prompt.system},
            {"role": "user", "content": body + "\n\n" + prompt.instruction}], prompt


def pair_messages(turns: list[str], answers_first: list[str], answers_second: list[str], turn: int,
                  reference: str | None, *, letter: bool = False) -> tuple[list[Message], JudgePrompt]:
    """Messages comparing two models at ``turn``; ``answers_first`` is shown as reply A.

    ``letter=True`` asks for a one-letter verdict (read from token probabilities) instead of a
    short explanation followed by ``[[A]]``/``[[B]]``.
    """
    prompt = pick("pair-letter" if letter else "pair", turn, reference)
    if turn == 0:
        body = (f"[User message]\n{turns[0]}\n\n" + _ref_block(reference)
                + f"[Reply A]\n{answers_first[0]}\n[End of reply A]\n\n"
                f"[Reply B]\n{answers_second[0]}\n[End of reply B]")
    else:
        body = (_ref_block(reference)
                + "[Conversation with assistant A]\n" + _conversation(turns, answers_first, turn, "Assistant A")
                + "\n[End of conversation with A]\n\n[Conversation with assistant B]\n"
                + _conversation(turns, answers_second, turn, "Assistant B") + "\n[End of conversation with B]")
    return [{"role": "system", "content": prompt.system},
            {"role": "user", "content": body + "\n\n" + prompt.instruction}], prompt
