"""Chat mode: multi-turn conversations in the Vicuna/ShareGPT spirit, the teacher playing both sides.

Each conversation starts from a topic or a seed question: ``--input`` (one topic or question a line,
or JSONL with ``topic``/``question``), else ``--topic``, else the seed tasks' instructions as topics.
The teacher writes the user's opening message (unless a seed question is given), answers it, writes
a follow-up as the user, and so on for ``--turns`` exchanges. Opening messages pass the instruction
filters and ROUGE-L; every message passes the output filters; a conversation that goes wrong later
keeps the exchanges before the failure. Output is ShareGPT (``conversations: [{from, value}]``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ownchat.data.dedup import DedupIndex
from ownchat.data.provenance import provenance
from ownchat.errors import DataError
from ownchat.synth import prompts
from ownchat.synth.parse import parse_user_turn
from ownchat.synth.runner import Mode
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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg = self.cfg
        if cfg.inputs:
            self.topics = load_topics(Path(cfg.inputs))
        elif cfg.topic:
            self.topics = [(cfg.topic, False)]
        else:
            self.topics = [(t["instruction"], False) for t in load_seeds(cfg.seeds, cfg.language)]
        self._candidates = 0

    def candidates(self) -> int:
        return self._candidates

    def restore(self, kept: list[dict[str, Any]]) -> None:
        for rec in kept:
            conv = rec.get("conversations") or []
            if conv:
                self.filters.keep(conv[0]["value"])

    def run_round(self, r: int, need: int) -> list[dict[str, Any]]:
        cfg, teacher, filters = self.cfg, self.teacher, self.filters
        k = max(1, cfg.concurrency)
        picks = [((r - 1) * k + j) % len(self.topics) for j in range(k)]
        convs = [{"j": j, "topic": self.topics[t][0], "question": self.topics[t][1], "msgs": [], "alive": True,
                  "why": None} for j, t in enumerate(picks)]
        self._candidates += len(convs)
        pending = DedupIndex(cfg.filters.rouge_threshold)
        a_params = teacher.params("chat-assistant", temperature=0.0)
        for turn in range(max(1, cfg.turns)):
            live = [c for c in convs if c["alive"]]
            need_user = [c for c in live if not (turn == 0 and c["question"])]
            reqs = [teacher.chat(prompts.chat_user(c["topic"], c["msgs"], cfg.language),
                                 teacher.params("chat-user", r, c["j"], turn, max_tokens=256)) for c in need_user]
            texts = {id(c): comp for c, comp in zip(need_user, teacher.run(reqs), strict=True)}
            for c in live:
                if turn == 0 and c["question"]:
                    msg = c["topic"]
                else:
                    comp = texts[id(c)]
                    msg = parse_user_turn(comp.text) if comp.ok else ""
                why = self._check_user(msg, first=turn == 0, pending=pending)
                if why:
                    c["alive"] = False
                    c["why"] = c["why"] or why
                    continue
                c["msgs"].append({"role": "user", "content": msg})
            live = [c for c in convs if c["alive"]]
            reqs = [teacher.chat(prompts.chat_assistant(c["msgs"], cfg.language), a_params) for c in live]
            for c, comp in zip(live, teacher.run(reqs), strict=True):
                why = ("teacher_error" if comp.error else "truncated" if comp.finish_reason == "length"
                       else filters.check_output(comp.text, count=False))
                if why:
                    c["msgs"].pop()  # drop the unanswered user turn
                    c["alive"] = False
                    c["why"] = c["why"] or why
                    continue
                c["msgs"].append({"role": "assistant", "content": comp.text.strip()})
        out = []
        for c in convs:
            if not c["msgs"]:
                filters.reject(c["why"] or "parse_failure")
                continue
            filters.keep(c["msgs"][0]["content"])
            prov = provenance(teacher.engine, template=prompts.template_id("chat.assistant"), params=a_params,
                              stage="synth", mode=self.name, round=r, language=cfg.language, topic=c["topic"],
                              user_template=prompts.template_id("chat.user"))
            back = {"user": "human", "assistant": "gpt"}
            out.append({"id": f"chat-{r}-{c['j']}",
                        "conversations": [{"from": back[m["role"]], "value": m["content"]} for m in c["msgs"]],
                        "provenance": prov})
            if len(out) >= need:
                break
        return out

    def _check_user(self, msg: str, first: bool, pending: DedupIndex) -> str | None:
        f = self.filters
        if not msg:
            return "parse_failure"
        if first:
            why = f.check_instruction(msg) or f.check_similar(msg, pending)
            if why:  # already counted by the filter; count the conversation once only
                f.counts[why] -= 1
                return why
            pending.force_add(msg)
            return None
        return f.check_output(msg, count=False, assistant=False)
