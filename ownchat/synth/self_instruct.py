"""Self-Instruct (Wang et al., 2022): bootstrap a task pool from seed tasks.

Each unit is one proposal request: sample 8 in-context tasks (6 human seeds + 2 machine-made ones
once the pool has them) and ask for new instructions. New instructions pass the filters (ROUGE-L
against seeds, kept tasks and the unit's earlier proposals); the teacher then says whether each is a
classification task, and writes instances **output-first** for classification (a label, then an
input of that class) and **input-first** otherwise. A task is kept when at least one instance
survives the output filters and it is not a near-copy of a task committed before it.

The task pool is the dependency: unit u sees only tasks committed by units <= u - lag - 1 (``lag``
is twice the concurrency), so it can start while the units just before it are still answering,
and a replayed unit asks exactly the same questions. Its early ROUGE-L check looks at the same
committed view; the final check at commit (in unit order) sees everything kept.
"""

from __future__ import annotations

import bisect
import random
from typing import Any

from ownchat.data.dedup import DedupIndex, has_cjk
from ownchat.data.provenance import provenance
from ownchat.synth import prompts
from ownchat.synth.parse import parse_choice, parse_class_instances, parse_instance, parse_numbered_list
from ownchat.synth.runner import Mode, Outcome, UnitJob, derive_seed
from ownchat.synth.seedtasks import load_seeds, record

N_HUMAN, N_MACHINE, N_NEW = 6, 2, 8

MAX_LABEL_WORDS, MAX_LABEL_CJK_CHARS = 5, 10  # longer is free text, not a class label


class SelfInstructMode(Mode):
    name = "self-instruct"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seeds = load_seeds(self.cfg.seeds, self.cfg.language)
        self.machine: list[dict[str, Any]] = []  # kept tasks, in commit order
        self.machine_units: list[int] = []  # the unit that kept each
        cls = [t for t in self.seeds if t["is_classification"]]
        gen = [t for t in self.seeds if not t["is_classification"]]
        self.cls_seeds = cls or self.seeds
        self.gen_seeds = gen or self.seeds
        self.lag = 2 * max(1, self.cfg.concurrency)

    def restore(self, kept: list[dict[str, Any]]) -> None:
        for t in self.seeds:
            self.filters.keep(t["instruction"])
        self._index_base = self.filters.size
        super().restore(kept)
        for k in kept:
            if k.get("instances"):
                self.machine.append(k)
                self.machine_units.append(k["provenance"]["unit"])

    def job(self, unit: int) -> UnitJob:
        cfg, teacher, filters = self.cfg, self.teacher, self.filters
        # the committed view this unit may depend on (see the module docstring)
        pool = self.machine[:bisect.bisect_right(self.machine_units, unit - self.lag - 1)]
        upto = self.index_as_of(unit)
        need = cfg.n - len(pool)
        if need <= 0:  # enough tasks were kept before this unit's view: nothing to ask
            return Outcome()
        rng = random.Random(derive_seed(cfg.seed, "si-shots", unit))
        n_machine = min(N_MACHINE, len(pool))
        shots = rng.sample(self.seeds, min(N_HUMAN + N_MACHINE - n_machine, len(self.seeds)))
        shots += rng.sample(pool, n_machine)
        rng.shuffle(shots)
        msgs = prompts.self_instruct_instructions([s["instruction"] for s in shots], N_NEW, cfg.language, cfg.topic)
        (comp,) = yield [teacher.chat(msgs, teacher.params("si-propose", unit, max_tokens=min(cfg.gen_tokens, 768)))]
        out = Outcome()
        if comp.error:
            out.rejects["teacher_error"] += 1
            return out
        items = parse_numbered_list(comp.text, truncated=comp.finish_reason == "length")[:N_NEW * 2]
        if not items:
            out.candidates += 1
            out.rejects["parse_failure"] += 1
            return out
        out.candidates += len(items)
        pending = DedupIndex(cfg.filters.rouge_threshold)
        chosen: list[tuple[int, str]] = []
        for k, inst in enumerate(items):
            if len(chosen) >= need:
                break
            why = filters.check_instruction(inst, count=False) or \
                filters.check_similar(inst, pending, upto=upto, count=False)
            if why:
                out.rejects[why] += 1
                continue
            pending.force_add(inst)
            chosen.append((k, inst))
        if not chosen:
            return out
        cls_params = teacher.params("si-classify", temperature=0.0, max_tokens=8)
        replies = yield [teacher.chat(prompts.self_instruct_classify(inst), cls_params) for _, inst in chosen]
        # an unreadable reply counts as "not classification": input-first suits any task
        is_cls = [c.ok and parse_choice(c.text) == "A" for c in replies]
        inst_reqs, inst_params = [], []
        for (k, inst), c in zip(chosen, is_cls, strict=True):
            srng = random.Random(derive_seed(cfg.seed, "si-inst-shots", unit, k))
            seeds = self.cls_seeds if c else self.gen_seeds
            shots = srng.sample(seeds, min(3, len(seeds)))
            build = prompts.self_instruct_class_instances if c else prompts.self_instruct_instances
            p = teacher.params("si-instances", unit, k, temperature=0.0, max_tokens=min(cfg.gen_tokens, 768))
            inst_params.append(p)
            inst_reqs.append(teacher.chat(build(inst, shots, cfg.language), p))
        for idx, comp in enumerate((yield inst_reqs)):
            k, inst = chosen[idx]
            if comp.error:
                out.rejects["teacher_error"] += 1
                continue
            instances, why = self._instances(comp.text, is_cls[idx])
            if instances is None:
                out.rejects[why] += 1
                continue
            tpl = "self-instruct.class-instances" if is_cls[idx] else "self-instruct.instances"
            prov = provenance(teacher.engine, template=prompts.template_id(tpl), params=inst_params[idx],
                              stage="synth", mode=self.name, unit=unit, language=cfg.language)
            first = instances[0]
            out.records.append(record(f"si-{unit}-{k}", inst, first["input"], first["output"], prov,
                                      instances=instances, is_classification=is_cls[idx]))
        return out

    def commit(self, unit: int, outcome: Outcome, need: int) -> list[dict[str, Any]]:
        kept: list[dict[str, Any]] = []
        for rec in outcome.records:
            if len(kept) >= need:
                break
            if self.filters.check_similar(rec["instruction"]):  # near-copy of a task committed meanwhile
                continue
            self.keep(rec["instruction"], unit)
            self.machine.append(rec)
            self.machine_units.append(unit)
            kept.append(rec)
        return kept

    def _instances(self, text: str, is_cls: bool) -> tuple[list[dict[str, str]] | None, str]:
        """Instances that pass the output filters, or (None, the reason the task is dropped)."""
        if is_cls:
            raw = [{"input": inp, "output": label} for label, inp in parse_class_instances(text)]
        else:
            one = parse_instance(text)
            raw = [{"input": one[0], "output": one[1]}] if one else []
        if not raw:
            return None, "parse_failure"
        reasons, good = [], []
        for inst in raw:
            # counted once per task, not once per instance
            why = self.filters.check_output(inst["output"], inst["input"] if not is_cls else "", count=False)
            if why:
                reasons.append(why)
            else:
                good.append(inst)
        if not good:
            return None, reasons[0]
        if is_cls and not _looks_like_labels([g["output"] for g in good]):
            # the teacher called it classification but wrote free text as "labels"
            return None, "not_labels"
        return good, ""


def _looks_like_labels(labels: list[str]) -> bool:
    """At least two distinct labels, each a short phrase (a few words, or a few CJK characters)."""
    distinct = {lab.strip().lower() for lab in labels}
    return len(distinct) >= 2 and all(_short(lab) for lab in distinct)


def _short(label: str) -> bool:
    if has_cjk(label):  # no spaces to count words by
        return len(label) <= MAX_LABEL_CJK_CHARS
    return len(label.split()) <= MAX_LABEL_WORDS and len(label) <= 40
