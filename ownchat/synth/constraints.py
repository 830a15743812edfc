"""Verifiable constraints added to instructions: data a student can learn and a program can check.

Each template is ownchat's own wording of a kind of constraint (length, bullets, parts, highlights,
keywords, forbidden words, case, JSON, closing sentence, quotes, title, postscript, no commas,
language) and maps to an IFEval instruction id with its arguments, so
``ownchat.judge.ifeval_check.check`` (Google's reference checkers) says whether an answer complies.
The wording is deliberately not IFEval's: ``IFEvalGuard`` and the tests make sure no instruction we
write is near-identical to one of IFEval's 541 prompts, so training on this data never trains on the
test.

A unit's constraints are a pure function of (run seed, unit, instruction text): replays ask the same.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ownchat.data.dedup import DedupIndex, tokenize


@dataclass(frozen=True)
class Constraint:
    instruction_id: str  # IFEval's id, e.g. "punctuation:no_comma"
    kwargs: dict[str, Any]
    text: str  # what the user message says
    language: str | None = None  # the answer's language when the constraint names one

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.instruction_id, "kwargs": self.kwargs, "text": self.text}


STOPWORDS = frozenset("""a an the and or but if then else of to in on at by for with from into onto about as is are was
were be been being this that these those it its it's you your yours i me my we our they them their he she his her
what which who whom whose when where why how do does did done can could should would will shall may might must not
no yes so such than too very just also only each every any some all more most less few many much own same other
give write make list explain describe tell find create use using provide following given short brief simple one two
three four five please below above text sentence paragraph words word answer question""".split())

_FORBID = ("very", "really", "basically", "actually", "thing", "things", "stuff", "just", "important", "good")
_ENDINGS = ("Hope this helps!", "That is all for now.", "Thanks for reading.", "Happy to help further.",
            "Let me know if you want more detail.")
_TITLES = ("<<A Quick Guide>>", "<<Morning Notes>>", "<<Three Simple Ideas>>", "<<Why It Matters>>")
_LANGS = {"fr": "French", "de": "German", "es": "Spanish", "it": "Italian", "pt": "Portuguese"}


def _words(rng: random.Random, kind: str) -> Constraint:
    if kind == "under":
        n = rng.choice((40, 50, 60, 80, 100, 120))
        text = rng.choice((f"Keep the reply under {n} words.", f"Use fewer than {n} words in total.",
                           f"Stay below {n} words overall."))
        return Constraint("length_constraints:number_words", {"num_words": n, "relation": "less than"}, text)
    n = rng.choice((50, 60, 80, 100, 120))
    text = rng.choice((f"Write no fewer than {n} words.", f"The reply needs {n} words or more.",
                       f"Go into detail: {n} words at the very minimum."))
    return Constraint("length_constraints:number_words", {"num_words": n, "relation": "at least"}, text)


def _bullets(rng: random.Random, _: str) -> Constraint:
    n = rng.randint(2, 5)
    text = rng.choice((f"Lay the reply out as exactly {n} points, each on its own line beginning with '* '.",
                       f"Give exactly {n} items, one a line, every line opening with an asterisk and a space "
                       "(no other lists or dashes)."))
    return Constraint("detectable_format:number_bullet_lists", {"num_bullets": n}, text)


def _parts(rng: random.Random, _: str) -> Constraint:
    n = rng.randint(2, 4)
    label = rng.choice(("Part", "PART"))
    text = (f"Split the reply into {n} parts and open each one with its own heading line, "
            f"{label} 1, {label} 2 and so on.")
    return Constraint("detectable_format:multiple_sections", {"section_spliter": label, "num_sections": n}, text)


def _highlights(rng: random.Random, _: str) -> Constraint:
    n = rng.randint(1, 3)
    text = (f"Emphasise {n} key phrase{'s' if n > 1 else ''} by putting single asterisks around "
            f"{'each' if n > 1 else 'it'}, like *this*.")
    return Constraint("detectable_format:number_highlighted_sections", {"num_highlights": n}, text)


def _keywords(rng: random.Random, instruction: str) -> Constraint | None:
    # words from the instruction itself: natural for the answer to use, yet a real requirement
    cands = sorted({w for w in tokenize(instruction) if len(w) >= 5 and w.isalpha() and w not in STOPWORDS})
    if not cands:
        return None
    picks = sorted(rng.sample(cands, min(len(cands), rng.choice((1, 2)))))
    shown = " and ".join(f'"{w}"' for w in picks)
    text = rng.choice((f"Be sure to use the word{'s' if len(picks) > 1 else ''} {shown} in the reply.",
                       f"The reply has to mention {shown}."))
    return Constraint("keywords:existence", {"keywords": picks}, text)


def _forbidden(rng: random.Random, instruction: str) -> Constraint | None:
    own = set(tokenize(instruction))
    cands = [w for w in _FORBID if w not in own]
    picks = sorted(rng.sample(cands, 2))
    text = rng.choice((f'Avoid the words "{picks[0]}" and "{picks[1]}" entirely.',
                       f'Never write "{picks[0]}" or "{picks[1]}" anywhere in the reply.'))
    return Constraint("keywords:forbidden_words", {"forbidden_words": picks}, text)


def _lower(rng: random.Random, _: str) -> Constraint:
    text = rng.choice(("Type the whole reply in lowercase letters only: not one capital letter.",
                       "Use no uppercase letters at all, from the first word to the last."))
    return Constraint("change_case:english_lowercase", {}, text)


def _upper(rng: random.Random, _: str) -> Constraint:
    text = rng.choice(("Type the whole reply in uppercase, as if the caps lock key were stuck.",
                       "Every letter of the reply must be uppercase."))
    return Constraint("change_case:english_capital", {}, text)


def _json(rng: random.Random, _: str) -> Constraint:
    text = rng.choice(("Reply with one valid JSON object and nothing else: no words before or after it.",
                       "Return the reply as machine-readable JSON only (a single object)."))
    return Constraint("detectable_format:json_format", {}, text)


def _ending(rng: random.Random, _: str) -> Constraint:
    phrase = rng.choice(_ENDINGS)
    text = f'Close with the sentence "{phrase}" exactly, and add nothing after it.'
    return Constraint("startend:end_checker", {"end_phrase": phrase}, text)


def _quotes(rng: random.Random, _: str) -> Constraint:
    text = rng.choice(("Put the entire reply between a pair of double quotes.",
                       'Start the reply with " and end it with ", quoting all of it.'))
    return Constraint("startend:quotation", {}, text)


def _title(rng: random.Random, _: str) -> Constraint:
    example = rng.choice(_TITLES)
    text = f"Begin with a short title inside double angle brackets, for example {example}."
    return Constraint("detectable_format:title", {}, text)


def _postscript(rng: random.Random, _: str) -> Constraint:
    marker = rng.choice(("P.S.", "P.P.S"))
    text = f"Sign off with one short afterthought on its own line, opening with {marker}"
    return Constraint("detectable_content:postscript", {"postscript_marker": marker}, text)


def _no_comma(rng: random.Random, _: str) -> Constraint:
    text = rng.choice(("Do not type a single comma anywhere in the reply.",
                       "Commas are banned: write every sentence without one."))
    return Constraint("punctuation:no_comma", {}, text)


def _language(rng: random.Random, _: str) -> Constraint:
    code = rng.choice(sorted(_LANGS))
    text = f"Reply only in {_LANGS[code]}; do not use English."
    return Constraint("language:response_language", {"language": code}, text, language=code)


Maker = Callable[[random.Random, str], Constraint | None]

#: template name -> maker. Names are ownchat's; each maker's result carries the IFEval id it maps to.
TEMPLATES: dict[str, Maker] = {
    "words_under": lambda r, i: _words(r, "under"),
    "words_at_least": lambda r, i: _words(r, "at_least"),
    "bullets": _bullets,
    "parts": _parts,
    "highlights": _highlights,
    "keywords": _keywords,
    "forbidden_words": _forbidden,
    "lowercase": _lower,
    "uppercase": _upper,
    "json": _json,
    "end_phrase": _ending,
    "quotes": _quotes,
    "title": _title,
    "postscript": _postscript,
    "no_comma": _no_comma,
    "language": _language,
}

# Pairs that cannot both hold (or make a silly request): never drawn together.
CLASHES = {frozenset(p) for p in [
    ("lowercase", "uppercase"), ("words_under", "words_at_least"), ("language", "lowercase"),
    ("language", "uppercase"), ("language", "keywords"), ("language", "forbidden_words"),
    ("language", "end_phrase"), ("json", "no_comma"), ("quotes", "end_phrase"), ("lowercase", "title"),
    ("uppercase", "title"), ("bullets", "parts"), ("uppercase", "end_phrase"), ("lowercase", "end_phrase"),
    ("uppercase", "keywords"), ("lowercase", "postscript"),
]} | {frozenset(("json", t)) for t in ("bullets", "parts", "highlights", "end_phrase", "quotes", "title",
                                       "postscript", "language", "lowercase", "uppercase")}


def pick(rng: random.Random, instruction: str, max_constraints: int = 2) -> list[Constraint]:
    """One or two compatible constraints for ``instruction``."""
    count = 1 if max_constraints < 2 or rng.random() < 0.6 else 2
    names = sorted(TEMPLATES)
    rng.shuffle(names)
    chosen: list[tuple[str, Constraint]] = []
    for name in names:
        if len(chosen) >= count:
            break
        if any(frozenset((name, other)) in CLASHES for other, _ in chosen):
            continue
        c = TEMPLATES[name](rng, instruction)
        if c is not None:
            chosen.append((name, c))
    return [c for _, c in chosen]


def render(instruction: str, constraints: list[Constraint]) -> str:
    """The user message: the instruction as written, then the constraints on a line of their own."""
    return instruction.rstrip() + "\n\n" + " ".join(c.text for c in constraints)


def instruction_of(message: str, texts: list[str]) -> str:
    """``render``'s inverse: the instruction without the constraint sentences ``texts`` it appended."""
    tail = " ".join(texts)
    return message[: -len(tail)].rstrip() if tail and message.endswith(tail) else message


@functools.cache
def templates_by_id() -> dict[str, frozenset[str]]:
    """IFEval id -> the template names that produce it (records keep the id, not the template)."""
    out: dict[str, set[str]] = {}
    for name, maker in TEMPLATES.items():
        c = maker(random.Random(0), "describe the weather forecast for tomorrow")  # any instruction with keywords
        if c is not None:
            out.setdefault(c.instruction_id, set()).add(name)
    return {k: frozenset(v) for k, v in out.items()}


# ---------------------------------------------------------------- IFEval must never leak into training


def _norm(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


@dataclass
class IFEvalGuard:
    """Tells whether a text is near-identical to one of IFEval's prompts (or to one of their sentences).

    Near-identical means ROUGE-L F above ``threshold`` against a whole prompt or a sentence of one,
    or one containing the other after normalisation (lowercase, letters and digits only) when the
    shorter side has at least ``min_tokens`` tokens.
    """

    prompts: list[str]
    threshold: float = 0.6
    min_tokens: int = 6
    _index: DedupIndex = field(init=False, repr=False)
    _norms: list[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._index = DedupIndex(self.threshold)
        pieces = list(self.prompts)
        for p in self.prompts:
            pieces += [s for s in re.split(r"(?<=[.!?])\s+|\n+", p) if len(tokenize(s)) >= self.min_tokens]
        for piece in pieces:
            self._index.force_add(piece)
        self._norms = [_norm(p) for p in self.prompts]

    @classmethod
    def from_pack(cls, **kw: Any) -> IFEvalGuard:
        from ownchat.judge.ifeval import load_items

        return cls([it.prompt for it in load_items()], **kw)

    def overlaps(self, text: str) -> bool:
        if self._index.is_duplicate(text):
            return True
        norm = _norm(text)
        if len(norm.split()) >= self.min_tokens and any(norm in p for p in self._norms):
            return True
        return any(len(p.split()) >= self.min_tokens and p in norm for p in self._norms)
