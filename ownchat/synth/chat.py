"""Chat mode: multi-turn conversations in the Vicuna/ShareGPT spirit, the teacher playing both sides.

Each conversation starts from a topic or a seed question: ``--input`` (one topic or question a line,
or JSONL with ``topic``/``question``), else ``--topic``, else the seed tasks' instructions as topics.
The teacher writes the user's opening message (unless a seed question is given), answers it, writes
a follow-up as the user, and so on for ``--turns`` exchanges. Opening messages pass the instruction
filters and ROUGE-L; every message passes the output filters; a conversation that goes wrong later
keeps the exchanges before the failure. Output is ShareGPT (``conversations: [{from, value}]``).
Each conversation is one unit: its turns run one after another while other conversations fill the
teacher's other slots.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ownchat.data.provenance import provenance
from ownchat.errors import DataError
from ownchat.synth import prompts
from ownchat.synth.parse import parse_user_turn
from ownchat.synth.runner import Mode, Outcome, UnitJob
from ownchat.synth.seedtasks import load_seeds


def load_topics(path: Path) -> list[tuple[str, bool]]:
    """(text, is_question) per line: plain text lines are topics; JSONL may say question or topic."""
    out = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("{"):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(path, line_no, f"invalid JSON ({exc.msg})", "one topic or JSON object a line") from None
            q = rec.get("question") or rec.get("instruction") or rec.get("prompt")
            if q:
                out.append((str(q), True))
            elif rec.get("topic"):
                out.append((str(rec["topic"]), False))
            else:
                raise DataError(path, line_no, "no 'topic' or 'question'", 'e.g. {"topic": "home espresso"}')
        else:
            out.append((line, False))
    if not out:
        raise DataError(path, None, "no topics", "one topic or seed question a line")
    return out


class ChatMode(Mode):
    name = "chat"
    max_per_unit = 1

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg = self.cfg
        if cfg.inputs:
            self.topics = load_topics(Path(cfg.inputs))
        elif cfg.topic:
            self.topics = [(cfg.topic, False)]
        else:
            self.topics = [(t["instruction"], False) for t in load_seeds(cfg.seeds, cfg.language)]
        # a conversation's first message is ROUGE-checked early against conversations committed
        # ``lag`` units before it (so a near-copy is not answered for nothing), and again at commit
        self.lag = 4 * max(1, cfg.concurrency)

    def restore(self, kept: list[dict[str, Any]]) -> None:
        for rec in kept:
            conv = rec.get("conversations") or []
            if conv:
                self.keep(conv[0]["value"], rec["provenance"]["unit"])

    def job(self, unit: int) -> UnitJob:
        cfg, teacher, filters = self.cfg, self.teacher, self.filters
        topic, is_question = self.topics[(unit - 1) % len(self.topics)]
        upto = self.index_as_of(unit)
        a_params = teacher.params("chat-assistant", temperature=0.0)
        msgs: list[dict[str, str]] = []
        why = None
        for turn in range(max(1, cfg.turns)):
            if turn == 0 and is_question:
                msg = topic
            else:
                u_params = teacher.params("chat-user", unit, turn, max_tokens=256)
                (comp,) = yield [teacher.chat(prompts.chat_user(topic, msgs, cfg.language), u_params)]
                msg = parse_user_turn(comp.text) if comp.ok else ""
            why = self._check_user(msg, first=turn == 0, upto=upto)
            if why:
                break
            msgs.append({"role": "user", "content": msg})
            (comp,) = yield [teacher.chat(prompts.chat_assistant(msgs, cfg.language), a_params)]
            why = ("teacher_error" if comp.error else "truncated" if comp.finish_reason == "length"
                   else filters.check_output(comp.text, count=False))
            if why:
                msgs.pop()  # drop the unanswered user turn; the exchanges before it stay
                break
            msgs.append({"role": "assistant", "content": comp.text.strip()})
        out = Outcome(candidates=1)
        if not msgs:
            out.rejects[why or "parse_failure"] += 1
            return out
        prov = provenance(teacher.engine, template=prompts.template_id("chat.assistant"), params=a_params,
                          stage="synth", mode=self.name, unit=unit, language=cfg.language, topic=topic,
                          user_template=prompts.template_id("chat.user"))
        back = {"user": "human", "assistant": "gpt"}
        out.records.append({"id": f"chat-{unit}",
                            "conversations": [{"from": back[m["role"]], "value": m["content"]} for m in msgs],
                            "provenance": prov})
        return out

    def commit(self, unit: int, outcome: Outcome, need: int) -> list[dict[str, Any]]:
        kept = []
        for rec in outcome.records[:need]:
            first = rec["conversations"][0]["value"]
            if self.filters.check_similar(first):  # a near-copy committed since the early check
                continue
            self.keep(first, unit)
            kept.append(rec)
        return kept

    def _check_user(self, msg: str, first: bool, upto: int) -> str | None:
        f = self.filters
        if not msg:
            return "parse_failure"
        if first:
            return f.check_instruction(msg, count=False) or f.check_similar(msg, upto=upto, count=False)
        return f.check_output(msg, count=False, assistant=False)
