"""Lenient parsers of teacher output. Malformed output yields fewer items, never an exception.

Real teachers drift from the requested format: numbers go missing, markdown bold creeps in, prose
is added before and after, and the last item is cut off when the token limit hits. Every parser
here returns what it could read; callers count the rest as parse failures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NOINPUT = {"<noinput>", "noinput", "<no input>", "no input", "none", "n/a", "<none>", "無", "无"}

# "Task 9:", "9.", "9)", "**Task 9:**", "- ", "* ", "任務 9：" at the start of a line
_ITEM_RE = re.compile(
    r"^\s*(?:[-*•]\s+|(?:\*\*)?(?:task|instruction|任務|指令)?\s*#?\d+\s*(?:[.):：]|\s[-–—])?(?:\*\*)?\s*[:：.)]?"
    r"\s*(?:\*\*)?\s*)",
    re.IGNORECASE,
)
_NUMBERED_RE = re.compile(r"^\s*(?:\*\*)?(?:(?:task|instruction|任務|指令)\s*#?\d+\s*(?:[.):：]|[-–—]\s)|#?\d+\s*[.):：])",
                          re.IGNORECASE)
_BULLET_RE = re.compile(r"^\s*[-*•]\s+\S")


def _clean(text: str) -> str:
    text = text.strip().strip("*").strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'“”「":
        text = text[1:-1].strip()
    return text


def parse_numbered_list(text: str, truncated: bool = False) -> list[str]:
    """Items of a numbered (or bulleted) list; prose around the list is ignored.

    A line that starts an item opens it; following non-blank, non-item lines continue it; a blank
    line closes it. ``truncated`` (finish_reason == "length") drops the last item, which was cut off.
    """
    items: list[list[str]] = []
    open_item = False
    for line in text.splitlines():
        if _NUMBERED_RE.match(line) or _BULLET_RE.match(line):
            body = _ITEM_RE.sub("", line, count=1)
            items.append([body])
            open_item = True
        elif not line.strip():
            open_item = False
        elif open_item:
            items[-1].append(line.strip())
    if truncated and items:
        items.pop()
    out = [_clean(" ".join(parts)) for parts in items]
    return [o for o in out if o]


@dataclass
class Triple:
    instruction: str
    input: str
    output: str


_FIELD_RE = re.compile(
    r"^\s*(?:#+\s*)?(?:\*\*)?(?:\d+\s*[.)]\s*)?(?:#+\s*)?(?:\*\*)?\s*(instruction|input|output|指令|輸入|输入|輸出|输出)\s*"
    r"(?:\*\*)?\s*[:：]\s*(?:\*\*)?",
    re.IGNORECASE | re.MULTILINE,
)
_FIELD_NAMES = {"instruction": "instruction", "指令": "instruction", "input": "input", "輸入": "input",
                "输入": "input", "output": "output", "輸出": "output", "输出": "output"}


def _fields(block: str) -> dict[str, str]:
    """Split a block on 'Instruction:' / 'Input:' / 'Output:' labels (numbered, bold or not)."""
    found: dict[str, str] = {}
    marks = list(_FIELD_RE.finditer(block))
    for i, m in enumerate(marks):
        name = _FIELD_NAMES[m.group(1).lower()]
        end = marks[i + 1].start() if i + 1 < len(marks) else len(block)
        if name not in found:  # a second 'Output:' inside an answer stays part of the first
            found[name] = block[m.end():end].strip()
        else:
            found[list(found)[-1]] += "\n" + block[m.start():end].strip()
    return found


def _norm_input(value: str) -> str:
    v = value.strip().strip("`").strip()
    return "" if v.lower() in NOINPUT else value.strip()


def parse_alpaca_batch(text: str, truncated: bool = False) -> tuple[list[Triple], int]:
    """Triples from an Alpaca-style batch; returns (triples, blocks that could not be parsed).

    Blocks are split on ``###`` lines, or on a new 'N. Instruction:' when the separators are missing.
    A block without instruction or output is a failure; with ``truncated`` the last block is dropped
    (Taori et al. discard the final item when generation stops on the length limit).
    """
    parts = re.split(r"^\s*#{3,}\s*$", text, flags=re.MULTILINE)
    blocks: list[str] = []
    for part in parts:
        starts = [m.start() for m in _FIELD_RE.finditer(part) if _FIELD_NAMES[m.group(1).lower()] == "instruction"]
        if len(starts) <= 1:
            blocks.append(part)
        else:
            blocks.extend(part[a:b] for a, b in zip(starts, [*starts[1:], len(part)], strict=True))
    blocks = [b for b in blocks if b.strip()]
    if truncated and blocks:
        blocks.pop()
    triples, failed = [], 0
    for b in blocks:
        f = _fields(b)
        if "instruction" not in f and "output" not in f:
            continue  # prose between blocks, not an attempt at a task
        # an output of "<noinput>" is no answer: keep it empty so the filters count it
        inst, out = _clean(f.get("instruction", "")), _norm_input(f.get("output", ""))
        if not inst or not out:
            failed += 1
            continue
        triples.append(Triple(inst, _norm_input(f.get("input", "")), out))
    return triples, failed


def parse_instance(text: str) -> tuple[str, str] | None:
    """One 'Input: ... Output: ...' example (input-first Self-Instruct); None when unreadable."""
    f = _fields(text)
    if "output" not in f or not f["output"].strip():
        return None
    out = _norm_input(f["output"])
    # Models often keep going with a second 'Task:' block after the answer: cut it.
    out = re.split(r"\n\s*(?:Task|任務)\s*[:：]", out, maxsplit=1)[0].strip()
    return _norm_input(f.get("input", "")), out


_LABEL_RE = re.compile(r"^\s*(?:\*\*)?\s*(?:class\s*label|label|類別|标签|標籤)\s*(?:\*\*)?\s*[:：]\s*(?:\*\*)?(.*)$",
                       re.IGNORECASE | re.MULTILINE)


def parse_class_instances(text: str) -> list[tuple[str, str]]:
    """(label, input) pairs from output-first generation; pairs lacking an input are skipped."""
    pairs = []
    marks = list(_LABEL_RE.finditer(text))
    for i, m in enumerate(marks):
        label = _clean(m.group(1))
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        f = _fields(text[m.end():end])
        inp = f.get("input", "").strip()
        inp = re.split(r"\n\s*(?:Task|任務)\s*[:：]", inp, maxsplit=1)[0].strip()
        if label and inp and inp.lower() not in NOINPUT:
            pairs.append((label, inp))
        elif label and "input" in f:  # the task needs no input: the label alone is the answer
            pairs.append((label, ""))
    return pairs


def parse_choice(text: str, options: str = "AB") -> str | None:
    """The option letter a reply picks ("B", "**A**", "Answer: (A) one label..."), or None."""
    t = re.sub(r"^[\s*]*(?:the\s+)?(?:answer|option|choice)\s*(?:is)?\s*[:：]?[\s*]*", "", text.strip(), flags=re.I)
    m = re.match(r"^[\s*#>(\[]*([A-Za-z])(?![A-Za-z])", t)
    if m and m.group(1).upper() in options.upper():
        return m.group(1).upper()
    return None


_ROLE_PREFIX = re.compile(r"^\s*(?:\*\*)?(?:user|human|you|使用者|用戶|用户)\s*(?:\*\*)?\s*[:：]\s*", re.IGNORECASE)


def parse_user_turn(text: str) -> str:
    """The simulated user's message: role labels, quotes and a trailing assistant turn removed."""
    t = _ROLE_PREFIX.sub("", text.strip(), count=1)
    t = re.split(r"\n\s*(?:\*\*)?(?:assistant|ai|助理|助手)\s*(?:\*\*)?\s*[:：]", t, maxsplit=1, flags=re.IGNORECASE)[0]
    return _clean(t)
