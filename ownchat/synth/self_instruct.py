"""Self-Instruct (Wang et al., 2022): bootstrap a task pool from seed tasks.

Each round, for every request slot: sample 8 in-context tasks (6 human seeds + 2 machine-made ones
once the pool has them) and ask for new instructions. New instructions pass the filters (ROUGE-L
against seeds, kept tasks and this round's earlier proposals); the teacher then says whether each
is a classification task, and writes instances **output-first** for classification (a label, then
an input of that class) and **input-first** otherwise. A task is kept when at least one instance
survives the output filters. Round r sees only tasks kept before round r, so a replayed round asks
exactly the same questions.
"""

from __future__ import annotations

import random
from typing import Any

from ownchat.data.dedup import DedupIndex, has_cjk
from ownchat.data.provenance import provenance
from ownchat.synth import prompts
from ownchat.synth.parse import parse_choice, parse_class_instances, parse_instance, parse_numbered_list
from ownchat.synth.runner import Mode, derive_seed
from ownchat.synth.seedtasks import load_seeds, record

N_HUMAN, N_MACHINE, N_NEW = 6, 2, 8

MAX_LABEL_WORDS, MAX_LABEL_CJK_CHARS = 5, 10  # longer is free text, not a class label


class SelfInstructMode(Mode):
    name = "self-instruct"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seeds = load_seeds(self.cfg.seeds, self.cfg.language)
        self.machine: list[dict[str, Any]] = []
        self._candidates = 0
        cls = [t for t in self.seeds if t["is_classification"]]
        gen = [t for t in self.seeds if not t["is_classification"]]
        self.cls_seeds = cls or self.seeds
        self.gen_seeds = gen or self.seeds

    def candidates(self) -> int:
        return self._candidates

    def restore(self, kept: list[dict[str, Any]]) -> None:
        for t in self.seeds:
            self.filters.keep(t["instruction"])
        super().restore(kept)
        self.machine = [k for k in kept if k.get("instances")]

    def _propose(self, r: int) -> list[tuple[int, int, str]]:
        cfg, teacher = self.cfg, self.teacher
        reqs = []
        for j in range(max(1, cfg.concurrency)):
            rng = random.Random(derive_seed(cfg.seed, "si-shots", r, j))
            n_machine = min(N_MACHINE, len(self.machine))
            shots = rng.sample(self.seeds, min(N_HUMAN + N_MACHINE - n_machine, len(self.seeds)))
            shots += rng.sample(self.machine, n_machine)
            rng.shuffle(shots)
            msgs = prompts.self_instruct_instructions([s["instruction"] for s in shots], N_NEW, cfg.language,
                                                      cfg.topic)
            reqs.append(teacher.chat(msgs, teacher.params("si-propose", r, j, max_tokens=min(cfg.gen_tokens, 768))))
        found = []
        for j, comp in enumerate(teacher.run(reqs)):
            if comp.error:
                self.filters.reject("teacher_error")
                continue
            items = parse_numbered_list(comp.text, truncated=comp.finish_reason == "length")
            if not items:
                self._candidates += 1
                self.filters.reject("parse_failure")
            found += [(j, k, inst) for k, inst in enumerate(items[:N_NEW * 2])]
        return found

    def run_round(self, r: int, need: int) -> list[dict[str, Any]]:
        cfg, teacher, filters = self.cfg, self.teacher, self.filters
        proposals = self._propose(r)
        self._candidates += len(proposals)
        pending = DedupIndex(cfg.filters.rouge_threshold)
        chosen = []
        for j, k, inst in proposals:
            if len(chosen) >= need:
                break
            if filters.check_instruction(inst) or filters.check_similar(inst, pending):
                continue
            pending.force_add(inst)
            chosen.append((j, k, inst))
        if not chosen:
            return []
        cls_params = teacher.params("si-classify", temperature=0.0, max_tokens=8)
        cls_reqs = [teacher.chat(prompts.self_instruct_classify(inst), cls_params) for _, _, inst in chosen]
        # an unreadable reply counts as "not classification": input-first suits any task
        is_cls = [c.ok and parse_choice(c.text) == "A" for c in teacher.run(cls_reqs)]
        inst_reqs, inst_params = [], []
        for (j, k, inst), c in zip(chosen, is_cls, strict=True):
            rng = random.Random(derive_seed(cfg.seed, "si-inst-shots", r, j, k))
            pool = self.cls_seeds if c else self.gen_seeds
            shots = rng.sample(pool, min(3, len(pool)))
            build = prompts.self_instruct_class_instances if c else prompts.self_instruct_instances
            p = teacher.params("si-instances", r, j, k, temperature=0.0, max_tokens=min(cfg.gen_tokens, 768))
            inst_params.append(p)
            inst_reqs.append(teacher.chat(build(inst, shots, cfg.language), p))
        out = []
        for idx, comp in enumerate(teacher.run(inst_reqs)):
            j, k, inst = chosen[idx]
            if comp.error:
                filters.reject("teacher_error")
                continue
            instances = self._instances(comp.text, is_cls[idx])
            if instances is None:
                continue
            filters.keep(inst)
            tpl = "self-instruct.class-instances" if is_cls[idx] else "self-instruct.instances"
            prov = provenance(teacher.engine, template=prompts.template_id(tpl), params=inst_params[idx],
                              stage="synth", mode=self.name, round=r, language=cfg.language)
            first = instances[0]
            out.append(record(f"si-{r}-{j}-{k}", inst, first["input"], first["output"], prov,
                              instances=instances, is_classification=is_cls[idx]))
        return out

    def _instances(self, text: str, is_cls: bool) -> list[dict[str, str]] | None:
        """Instances that pass the output filters, or None (the drop is counted under its reason)."""
        if is_cls:
            raw = [{"input": inp, "output": label} for label, inp in parse_class_instances(text)]
        else:
            one = parse_instance(text)
            raw = [{"input": one[0], "output": one[1]}] if one else []
        if not raw:
            self.filters.reject("parse_failure")
            return None
        reasons, good = [], []
        for inst in raw:
            # counted once per task below, not once per instance
            why = self.filters.check_output(inst["output"], inst["input"] if not is_cls else "", count=False)
            if why:
                reasons.append(why)
            else:
                good.append(inst)
        if not good:
            self.filters.reject(reasons[0])
            return None
        if is_cls and not _looks_like_labels([g["output"] for g in good]):
            # the teacher called it classification but wrote free text as "labels"
            self.filters.reject("not_labels")
            return None
        return good


def _looks_like_labels(labels: list[str]) -> bool:
    """At least two distinct labels, each a short phrase (a few words, or a few CJK characters)."""
    distinct = {lab.strip().lower() for lab in labels}
    return len(distinct) >= 2 and all(_short(lab) for lab in distinct)


def _short(label: str) -> bool:
    if has_cjk(label):  # no spaces to count words by
        return len(label) <= MAX_LABEL_CJK_CHARS
    return len(label.split()) <= MAX_LABEL_WORDS and len(label) <= 40
