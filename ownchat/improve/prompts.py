"""Few-shot chain-of-thought prompts for grade-school maths, written for this project.

Each exemplar is a short word problem, a step-by-step solution and one closing sentence, "The answer
is N.", which ``extract.py`` looks for first. The exemplars sit inside the one user turn, before the
question, not as earlier assistant turns: the SFT trainer supervises every assistant turn, and LMSI's
training conversations reuse this exact prompt, so only the model's own rationale is learned. The
text before the question is the same for every question, so llama.cpp's ``cache_prompt`` processes
it once per slot.

The four layouts of the LMSI paper's training mixture are built here too: with or without the
exemplars, and with a chain of thought or a direct answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ownchat.engines.base import Message


@dataclass(frozen=True)
class Exemplar:
    question: str
    rationale: str
    answer: str

    def cot(self) -> str:
        return f"{self.rationale} The answer is {self.answer}."

    def direct(self) -> str:
        return f"The answer is {self.answer}."


# Our own problems: different units, a subtraction, a rate, a fraction, money with decimals.
EXEMPLARS: tuple[Exemplar, ...] = (
    Exemplar(
        "A bakery fills 7 trays with 12 rolls each. By noon 31 rolls have been sold. How many rolls are left?",
        "The bakery made 7 * 12 = 84 rolls. After selling 31, it has 84 - 31 = 53 rolls left.",
        "53",
    ),
    Exemplar(
        "Priya cycles at 15 kilometres per hour for 2 hours, then walks 3 kilometres. How far does she "
        "travel in total?",
        "Cycling covers 15 * 2 = 30 kilometres. Adding the walk gives 30 + 3 = 33 kilometres.",
        "33",
    ),
    Exemplar(
        "A box holds 40 crayons. A quarter of them are red and 6 are blue. How many crayons are neither red "
        "nor blue?",
        "A quarter of 40 is 40 / 4 = 10 red crayons. Red and blue together are 10 + 6 = 16, so "
        "40 - 16 = 24 are neither.",
        "24",
    ),
    Exemplar(
        "Tom buys 3 notebooks at $2.50 each and pays with a $10 bill. How much change does he get?",
        "The notebooks cost 3 * 2.50 = $7.50. His change is 10 - 7.50 = $2.50.",
        "2.5",
    ),
)

#: names this prompt layout in provenance and output settings; bump it when the prompt text changes
PROMPT_ID = "ownchat-gsm8k-cot-v2"

SYSTEM = ("Solve the grade-school maths problem. Reason step by step, then finish with one sentence of "
          "the form \"The answer is N.\" where N is a number.")
SYSTEM_DIRECT = "Solve the grade-school maths problem. Reply with one sentence: \"The answer is N.\""
ZERO_SHOT_COT_SUFFIX = "\nLet's think step by step."

#: the four LMSI training layouts: (with exemplars?, chain of thought?)
FORMATS: dict[str, tuple[bool, bool]] = {
    "fewshot_cot": (True, True),
    "fewshot_direct": (True, False),
    "zeroshot_cot": (False, True),
    "zeroshot_direct": (False, False),
}


def build_messages(question: str, *, shots: int = 3, cot: bool = True) -> list[Message]:
    """The prompt for one question: system line, ``shots`` worked exemplars, then the question."""
    if not 0 <= shots <= len(EXEMPLARS):
        raise ValueError(f"shots must be between 0 and {len(EXEMPLARS)}, got {shots}")
    parts = [f"Question: {ex.question}\nAnswer: {ex.cot() if cot else ex.direct()}" for ex in EXEMPLARS[:shots]]
    user = question.strip()
    if cot and shots == 0:
        user += ZERO_SHOT_COT_SUFFIX  # without exemplars, the cue is what asks for the reasoning
    if parts:
        user = "Worked examples:\n\n" + "\n\n".join(parts) + f"\n\nNow this one.\nQuestion: {user}"
    return [{"role": "system", "content": SYSTEM if cot else SYSTEM_DIRECT}, {"role": "user", "content": user}]


def final_sentence(answer: str) -> str:
    return f"The answer is {answer}."


_CUE_RE = re.compile(r"answer\s*(?:is|:|=)", re.IGNORECASE)


def ensure_final_sentence(rationale: str, answer: str) -> str:
    """A training target ends with exactly one canonical answer sentence.

    "... So the answer is $1,250" becomes "... The answer is 1250.": the sentence holding the last
    answer cue is replaced, so the model learns one consistent way to finish.
    """
    text = rationale.strip()
    if text.endswith(final_sentence(answer)):
        return text
    cues = list(_CUE_RE.finditer(text))
    if cues:
        start = cues[-1].start()
        cut = max(text.rfind("\n", 0, start), text.rfind(". ", 0, start) + 1)
        text = text[:cut].rstrip() if cut > 0 else ""
    if text and text[-1] not in ".!?:\n":
        text += "."
    sep = " " if text and not text.endswith("\n") else ""
    return f"{text}{sep}{final_sentence(answer)}".strip()


def training_example(question: str, rationale: str, answer: str, fmt: str, *,
                     shots: int = 3) -> list[Message]:
    """One LMSI training conversation in layout ``fmt`` (see FORMATS)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    with_shots, cot = FORMATS[fmt]
    msgs = build_messages(question, shots=shots if with_shots else 0, cot=cot)
    target = ensure_final_sentence(rationale, answer) if cot else final_sentence(answer)
    msgs.append({"role": "assistant", "content": target})
    return msgs
