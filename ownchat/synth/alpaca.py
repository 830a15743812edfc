"""Alpaca mode (Taori et al., 2023): one request asks for a batch of instruction/input/output triples.

Each request (one unit) shows 3 seed examples sampled for that unit and asks for ``batch_size`` new
triples separated by ``###``; ``<noinput>`` marks an empty input and the last triple is dropped when
the reply hit the token limit. Every triple passes the filters on its own merits inside its unit;
ROUGE-L against everything kept so far is checked when the unit commits, in unit order.
"""

from __future__ import annotations

import random
from typing import Any

from ownchat.data.provenance import provenance
from ownchat.synth import prompts
from ownchat.synth.parse import parse_alpaca_batch
from ownchat.synth.runner import Mode, Outcome, UnitJob, derive_seed
from ownchat.synth.seedtasks import load_seeds, record


class AlpacaMode(Mode):
    name = "alpaca"
    template = "alpaca.batch"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        seeds = load_seeds(self.cfg.seeds, self.cfg.language)
        self.seeds = seeds
        self.examples = [{"instruction": t["instruction"], "input": t["instances"][0]["input"],
                          "output": t["instances"][0]["output"]} for t in seeds]

    def restore(self, kept: list[dict[str, Any]]) -> None:
        for t in self.seeds:  # seeds count as kept: a copy of a seed task is no new data
            self.filters.keep(t["instruction"])
        self._index_base = self.filters.size
        super().restore(kept)

    def job(self, unit: int) -> UnitJob:
        cfg, teacher, filters = self.cfg, self.teacher, self.filters
        rng = random.Random(derive_seed(cfg.seed, "alpaca-shots", unit))
        shots = rng.sample(self.examples, min(3, len(self.examples)))
        params = teacher.params("alpaca", unit)
        (comp,) = yield [teacher.chat(prompts.alpaca_batch(shots, cfg.batch_size, cfg.language, cfg.topic), params)]
        out = Outcome()
        if comp.error:
            out.rejects["teacher_error"] += 1
            return out
        triples, failed = parse_alpaca_batch(comp.text, truncated=comp.finish_reason == "length")
        out.candidates += len(triples) + failed
        if failed:
            out.rejects["parse_failure"] += failed
        if not triples and not failed:
            out.candidates += 1
            out.rejects["parse_failure"] += 1
        for k, t in enumerate(triples):
            why = filters.check_instruction(t.instruction, count=False) or \
                filters.check_output(t.output, t.input, count=False)
            if why:
                out.rejects[why] += 1
                continue
            prov = provenance(teacher.engine, template=prompts.template_id(self.template), params=params,
                              stage="synth", mode=self.name, unit=unit, language=cfg.language)
            out.records.append(record(f"alpaca-{unit}-{k}", t.instruction, t.input, t.output, prov))
        return out

    def commit(self, unit: int, outcome: Outcome, need: int) -> list[dict[str, Any]]:
        kept: list[dict[str, Any]] = []
        for rec in outcome.records:
            if len(kept) >= need:
                break
            if self.filters.check_similar(rec["instruction"]):
                continue
            self.keep(rec["instruction"], unit)
            kept.append(rec)
        return kept
