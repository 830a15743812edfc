"""Quality filters for synthetic examples. Each rejection has a named reason, counted and reported.

The rules follow Self-Instruct's heuristics (length bounds, keyword blacklist for tasks a text model
cannot do, no leading punctuation, ROUGE-L < 0.7 against everything kept) plus checks for garbled or
empty output and for the wrong language.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from ownchat.data.dedup import DedupIndex, tokenize
from ownchat.data.lang import matches
from ownchat.data.quality import is_garbled, is_refusal

DEFAULT_BLACKLIST = (
    "image", "images", "picture", "pictures", "photo", "photos", "file", "files", "audio", "video", "videos",
    "graph", "graphs", "draw", "drawing", "plot", "map", "maps", "diagram", "flowchart", "music", "go to",
    "圖片", "圖像", "照片", "影片", "音訊", "音樂", "檔案", "畫出", "繪製", "圖表", "图片", "视频", "文件",
)

# Every reason a candidate can be dropped, in report order.
REASONS = ("parse_failure", "too_short", "too_long", "blacklist", "punctuation_start", "empty_output",
           "garbled", "refusal", "output_too_long", "truncated", "wrong_language", "rouge_similar", "teacher_error",
           "ifeval_overlap")  # plus constraint_failed:<IFEval instruction id> with --constraints


@dataclass
class FilterConfig:
    min_words: int = 3  # instruction length, in dedup tokens (a CJK character counts as one)
    max_words: int = 150
    max_output_chars: int = 8000
    blacklist: Sequence[str] = DEFAULT_BLACKLIST
    language: str | None = "auto"  # "auto": the run's --language; None: no language check
    rouge_threshold: float = 0.7

    def to_dict(self) -> dict:
        return {"min_words": self.min_words, "max_words": self.max_words,
                "max_output_chars": self.max_output_chars, "blacklist": list(self.blacklist),
                "language": self.language, "rouge_threshold": self.rouge_threshold}


def _blacklist_re(words: Sequence[str]) -> re.Pattern[str] | None:
    if not words:
        return None
    alts = []
    for w in words:
        # Word boundaries make sense for Latin words only ("file" must not hit "profile").
        alts.append(rf"\b{re.escape(w)}\b" if w.isascii() else re.escape(w))
    return re.compile("|".join(alts), re.IGNORECASE)


_CODE_LINE = re.compile(r"[(){}\[\];=<>]|^\s*(select|from|where|def|return|import|function|const|let|var|"
                        r"class|for|if|print|echo|#include)\b", re.IGNORECASE)


def looks_like_code(text: str) -> bool:
    """Mostly code lines (SQL, Python, shell...): such answers have no natural language to check."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return bool(lines) and sum(1 for ln in lines if _CODE_LINE.search(ln)) >= 0.6 * len(lines)


@dataclass
class Filters:
    """Stateful filter set: keeps the ROUGE-L index of everything accepted and the reason counts."""

    config: FilterConfig = field(default_factory=FilterConfig)
    counts: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.index = DedupIndex(self.config.rouge_threshold)
        self._black = _blacklist_re(self.config.blacklist)
        lang = self.config.language
        self._lang = None if lang in (None, "", "auto") else lang  # "auto" is resolved by run_synth

    def reject(self, reason: str) -> str:
        self.counts[reason] += 1
        return reason

    def check_instruction(self, instruction: str, *, count: bool = True) -> str | None:
        """Reason to drop a new instruction on its own merits (similarity is ``check_similar``), or None.

        ``count=False`` only reports the reason (a unit's job counts it when the unit commits).
        """
        reason = self._instruction_reason(instruction)
        return self.reject(reason) if reason and count else reason

    def _instruction_reason(self, instruction: str) -> str | None:
        cfg = self.config
        inst = instruction.strip()
        n = len(tokenize(inst))
        if n < cfg.min_words:
            return "too_short"
        if n > cfg.max_words:
            return "too_long"
        if self._black and self._black.search(inst):
            return "blacklist"
        if not inst[0].isalnum():
            return "punctuation_start"
        if is_garbled(inst):
            return "garbled"
        if self._lang and not matches(inst, self._lang):
            return "wrong_language"
        return None

    def check_similar(self, instruction: str, pending: DedupIndex | None = None, *, upto: int | None = None,
                      count: bool = True) -> str | None:
        """'rouge_similar' when ROUGE-L F > threshold against a kept (or ``pending``) instruction.

        Only kept records enter the main index (``keep``), so a resumed run that rebuilds the index
        from the output file makes the same decisions as one that never stopped. ``upto`` looks only
        at the first ``upto`` kept texts (``size`` as it was when the asking unit's view was fixed).
        """
        if self.index.is_duplicate(instruction, upto) or (pending is not None and pending.is_duplicate(instruction)):
            return self.reject("rouge_similar") if count else "rouge_similar"
        return None

    @property
    def size(self) -> int:
        """Texts in the ROUGE-L index (seeds and kept instructions, in the order they were kept)."""
        return len(self.index)

    def keep(self, instruction: str) -> None:
        self.index.force_add(instruction)

    def check_output(self, output: str, inp: str = "", *, count: bool = True,
                     language: str | None = None, assistant: bool = True, check_language: bool = True) -> str | None:
        """Reason to drop an answer (and its instruction), or None. ``count=False`` only reports it.

        ``language`` overrides the run's language for this one answer (answer mode: the question's own).
        ``assistant=False`` checks a simulated user's turn, which may well say "sorry, I can't".
        ``check_language=False`` skips the language rule (a language the instruction asked for is
        checked by IFEval's checker instead).
        """
        lang = (language or self._lang) if self._lang and check_language else None
        reason = self._output_reason(output, inp, lang, assistant)
        return self.reject(reason) if reason and count else reason

    def _output_reason(self, output: str, inp: str, lang: str | None, assistant: bool) -> str | None:
        cfg = self.config
        out = output.strip()
        if not out:
            return "empty_output"
        if len(out) > cfg.max_output_chars:
            return "output_too_long"
        if is_garbled(out):
            return "garbled"
        if assistant and is_refusal(out):  # the teacher declined: no answer to learn from
            return "refusal"
        if inp and out == inp.strip():  # Self-Instruct: an output that only repeats the input
            return "empty_output"
        if lang and not looks_like_code(out) and not matches(out, lang, min_letters=12):
            return "wrong_language"
        return None
