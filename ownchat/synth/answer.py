"""Answer mode: distillation. Existing prompts or conversations in; the teacher writes the replies.

Input is any format ``ownchat.data.formats`` reads (Alpaca, Dolly, ShareGPT, OpenAI messages,
prompt/completion). Existing assistant turns are ignored and rewritten: for a conversation of k user
turns the teacher answers turn 1, then turn 2 seeing its own first answer, and so on. Single-turn
inputs come out as Alpaca records, multi-turn ones as OpenAI ``messages`` records. The user's own
instructions are not ROUGE-filtered (use ``ownchat data dedup`` for that); answers are filtered.
Each input record is one unit: a slow answer never holds up the others.

Language: with the default ``--language en`` each conversation is answered, and checked, in the
language of its own first question (a Traditional Chinese question wants a Traditional Chinese
answer, not a drop for "wrong language"). Any other ``--language`` asks for that language everywhere.

``--constraints``: each single-turn instruction gets one or two verifiable constraints
(``ownchat.synth.constraints``); the teacher answers (greedy first, then up to k-1 sampled retries,
each sample index replayed by the response cache) and only an answer that passes IFEval's reference
checker is kept. A failure after k samples is counted as ``constraint_failed:<IFEval id>``; an
instruction near-identical to an IFEval prompt is never used (``ifeval_overlap``).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from ownchat.data.formats import detect_format, from_messages, to_messages
from ownchat.data.jsonl import read_records
from ownchat.data.lang import detect
from ownchat.data.provenance import provenance
from ownchat.synth import prompts
from ownchat.synth.runner import Mode, Outcome, UnitJob, derive_seed


class AnswerMode(Mode):
    name = "answer"
    template = "answer"
    max_per_unit = 1

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
        self.guard = None
        if self.cfg.constraints:
            from ownchat.synth.constraints import IFEvalGuard

            self.guard = IFEvalGuard.from_pack()

    def _language(self, users: list[dict[str, str]]) -> str:
        if self.cfg.language not in (None, "", "en"):
            return self.cfg.language
        first = next((m["content"] for m in users if m["role"] == "user"), "")
        found = detect(first, min_letters=4)
        return found if found and found != "other" else (self.cfg.language or "en")

    def units(self) -> int:
        return len(self.items)

    def restore(self, kept: list[dict[str, Any]]) -> None:
        pass  # nothing to rebuild: each unit reads its own input record

    def job(self, unit: int) -> UnitJob:
        rid, users, src = self.items[unit - 1]
        lang = self._language(users)
        n_user = sum(m["role"] == "user" for m in users)
        if self.guard is not None and n_user == 1:
            return (yield from self._constrained(unit, rid, users, lang))
        cfg, teacher, filters = self.cfg, self.teacher, self.filters
        head = [m for m in users if m["role"] == "system"]
        todo = [m for m in users if m["role"] == "user"]
        sys_prompt = cfg.system or (head[0]["content"] if head else None)
        params = teacher.params("answer", temperature=0.0)
        done: list[dict[str, str]] = []
        why = None
        for user in todo:
            done.append(user)
            (comp,) = yield [teacher.chat(prompts.answer(done, lang, sys_prompt), params)]
            why = _failure(comp) or filters.check_output(comp.text, count=False, language=lang)
            done.append({"role": "assistant", "content": comp.text.strip()})
            if why:
                break
        out = Outcome(candidates=1)
        if why:
            out.rejects[why] += 1
            return out
        prov = provenance(teacher.engine, template=prompts.template_id(self.template), params=params,
                          stage="synth", mode=self.name, unit=unit, language=lang)
        msgs = head + done
        extra = {"id": f"answer-{unit}-{rid}", "source_id": rid}
        if n_user == 1 and not head:
            rec = from_messages(msgs, "alpaca", extra)
            if detect_format(src) in ("alpaca", "dolly"):  # keep the original split of instruction and input
                rec["instruction"], rec["input"] = src["instruction"], src.get("input", src.get("context", ""))
        else:
            rec = from_messages(msgs, "openai", extra)
        rec["provenance"] = prov
        out.records.append(rec)
        return out

    def _constrained(self, unit: int, rid: str, users: list[dict[str, str]], lang: str) -> UnitJob:
        from ownchat.judge.ifeval_check import check
        from ownchat.synth import constraints as cons

        cfg, teacher, filters = self.cfg, self.teacher, self.filters
        out = Outcome(candidates=1)
        base = next(m["content"] for m in users if m["role"] == "user")
        rng = random.Random(derive_seed(cfg.seed, "constraints", unit, base))
        chosen = cons.pick(rng, base)
        prompt = cons.render(base, chosen)
        assert self.guard is not None
        if any(self.guard.overlaps(t) for t in (base, prompt, *(c.text for c in chosen))):
            out.rejects["ifeval_overlap"] += 1
            return out
        # a language the constraint asks for is verified by the checker (the script-based filter
        # cannot tell French from English)
        asked = next((c.language for c in chosen if c.language), None)
        sys_prompt = cfg.system or next((m["content"] for m in users if m["role"] == "system"), None)
        msgs = prompts.answer([{"role": "user", "content": prompt}], None if asked else lang, sys_prompt)
        ids = [c.instruction_id for c in chosen]
        kwargs = [c.kwargs for c in chosen]
        why, comp, params = "teacher_error", None, None
        for k in range(max(1, cfg.constraint_samples)):
            # the greedy answer first; retries sample (distinct seeds via the sample index)
            params = teacher.params("answer-constrained", unit, temperature=0.0 if k == 0 else None)
            (comp,) = yield [teacher.chat(msgs, params, sample_index=k)]
            why = _failure(comp)
            if why == "teacher_error":
                break  # not the answer's fault: the next run retries it
            if why is None:
                why = filters.check_output(comp.text, count=False, language=lang, check_language=not asked)
            if why is None:
                verdict = check(comp.text.strip(), prompt, ids, kwargs)
                for iid, ok in zip(verdict.instruction_ids, verdict.strict, strict=True):
                    out.checks[f"{iid}:{'pass' if ok else 'fail'}"] += 1
                if verdict.prompt_strict:
                    break
                failed = [iid for iid, ok in zip(verdict.instruction_ids, verdict.strict, strict=True) if not ok]
                why = f"constraint_failed:{failed[0]}"
        if why is not None or comp is None:
            out.rejects[why or "teacher_error"] += 1
            return out
        prov = provenance(teacher.engine, template=prompts.template_id("answer.constrained"), params=params,
                          stage="synth", mode=self.name, unit=unit, language=asked or lang,
                          constraints=[c.to_dict() for c in chosen], sample_index=k)
        rec = from_messages([{"role": "user", "content": prompt},
                             {"role": "assistant", "content": comp.text.strip()}], "alpaca",
                            {"id": f"answer-{unit}-{rid}", "source_id": rid})
        rec["instruction"], rec["input"] = prompt, ""  # the constraints belong to the instruction
        rec["instruction_id_list"], rec["kwargs"] = ids, kwargs  # IFEval's fields: re-checkable
        rec["provenance"] = prov
        out.records.append(rec)
        return out


def _failure(comp) -> str | None:
    if comp.error:
        return "teacher_error"
    if comp.finish_reason == "length":
        return "truncated"
    return None
