"""Answer mode: distillation. Existing prompts or conversations in; the teacher writes the replies.

Input is any format ``ownchat.data.formats`` reads (Alpaca, Dolly, ShareGPT, OpenAI messages,
prompt/completion). Existing assistant turns are ignored and rewritten: for a conversation of k user
turns the teacher answers turn 1, then turn 2 seeing its own first answer, and so on. Single-turn
inputs come out as Alpaca records, multi-turn ones as OpenAI ``messages`` records. The user's own
instructions are not ROUGE-filtered (use ``ownchat data dedup`` for that); answers are filtered.

Language: with the default ``--language en`` each conversation is answered, and checked, in the
language of its own first question (a Traditional Chinese question wants a Traditional Chinese
answer, not a drop for "wrong language"). Any other ``--language`` asks for that language everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ownchat.data.formats import from_messages, to_messages
from ownchat.data.jsonl import read_records
from ownchat.data.lang import detect
from ownchat.data.provenance import provenance
from ownchat.synth import prompts
from ownchat.synth.runner import Mode


class AnswerMode(Mode):
    name = "answer"
    template = "answer"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        path = Path(self.cfg.inputs)
        self.items: list[tuple[str, list[dict[str, str]], dict[str, Any]]] = []
        for line, rec in enumerate(read_records(path), start=1):
            msgs = to_messages(rec, where=(path, line), require_answer=False)
            users = [m for m in msgs if m["role"] != "assistant"]
            if not any(m["role"] == "user" for m in users):
                continue
            rid = str(rec.get("id", f"answer-{line}"))
            self.items.append((rid, users, rec))
        self.per_round = max(1, self.cfg.concurrency) * 4
        self._candidates = 0

    def _language(self, users: list[dict[str, str]]) -> str:
        if self.cfg.language not in (None, "", "en"):
            return self.cfg.language
        first = next((m["content"] for m in users if m["role"] == "user"), "")
        found = detect(first, min_letters=4)
        return found if found and found != "other" else (self.cfg.language or "en")

    def candidates(self) -> int:
        return self._candidates

    def restore(self, kept: list[dict[str, Any]]) -> None:
        pass  # nothing to rebuild: rounds read fixed slices of the input

    def run_round(self, r: int, need: int) -> list[dict[str, Any]]:
        cfg, teacher, filters = self.cfg, self.teacher, self.filters
        start = (r - 1) * self.per_round
        batch = self.items[start:start + self.per_round]
        if start + self.per_round >= len(self.items):
            self.exhausted = True
        self._candidates += len(batch)
        # state per conversation: remaining user turns, history so far, failure reason
        convs = [{"todo": [m for m in users if m["role"] == "user"],
                  "head": [m for m in users if m["role"] == "system"], "done": [], "why": None,
                  "lang": self._language(users)}
                 for _, users, _ in batch]
        params = teacher.params("answer", temperature=0.0)
        while True:
            live = [c for c in convs if c["todo"] and c["why"] is None]
            if not live:
                break
            reqs = []
            for c in live:
                c["done"].append(c["todo"].pop(0))
                sys_prompt = cfg.system or (c["head"][0]["content"] if c["head"] else None)
                reqs.append(teacher.chat(prompts.answer(c["done"], c["lang"], sys_prompt), params))
            for c, comp in zip(live, teacher.run(reqs), strict=True):
                if comp.error:
                    c["why"] = "teacher_error"
                elif comp.finish_reason == "length":
                    c["why"] = "truncated"
                else:
                    c["why"] = filters.check_output(comp.text, count=False, language=c["lang"])
                c["done"].append({"role": "assistant", "content": comp.text.strip()})
        out = []
        for (rid, _, src), c in zip(batch, convs, strict=True):
            if c["why"]:
                filters.reject(c["why"])
                continue
            prov = provenance(teacher.engine, template=prompts.template_id(self.template), params=params,
                              stage="synth", mode=self.name, round=r, language=c["lang"])
            msgs = c["head"] + c["done"]
            n_user = sum(m["role"] == "user" for m in msgs)
            extra = {"id": f"answer-{r}-{rid}", "source_id": rid}
            if n_user == 1 and not c["head"]:
                rec = from_messages(msgs, "alpaca", extra)
                if "instruction" in src:  # keep the original split of instruction and input
                    rec["instruction"], rec["input"] = src["instruction"], src.get("input", src.get("context", ""))
            else:
                rec = from_messages(msgs, "openai", extra)
            rec["provenance"] = prov
            out.append(rec)
            if len(out) >= need:
                break
        return out
