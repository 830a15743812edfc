"""Alpaca mode (Taori et al., 2023): one request asks for a batch of instruction/input/output triples.

Each request shows 3 seed examples sampled for that (round, request) and asks for ``batch_size`` new
triples separated by ``###``; ``<noinput>`` marks an empty input and the last triple is dropped when
the reply hit the token limit. Every triple then passes the filters, ROUGE-L included.
"""

from __future__ import annotations

import random
from typing import Any

from ownchat.data.provenance import provenance
from ownchat.synth import prompts
from ownchat.synth.parse import parse_alpaca_batch
from ownchat.synth.runner import Mode, derive_seed
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
        self._candidates = 0

    def candidates(self) -> int:
        return self._candidates

    def restore(self, kept: list[dict[str, Any]]) -> None:
        for t in self.seeds:  # seeds count as kept: a copy of a seed task is no new data
            self.filters.keep(t["instruction"])
        super().restore(kept)

    def run_round(self, r: int, need: int) -> list[dict[str, Any]]:
        cfg, teacher, filters = self.cfg, self.teacher, self.filters
        requests, params = [], []
        for j in range(max(1, cfg.concurrency)):
            rng = random.Random(derive_seed(cfg.seed, "alpaca-shots", r, j))
            shots = rng.sample(self.examples, min(3, len(self.examples)))
            p = teacher.params("alpaca", r, j)
            params.append(p)
            requests.append(teacher.chat(prompts.alpaca_batch(shots, cfg.batch_size, cfg.language, cfg.topic), p))
        out: list[dict[str, Any]] = []
        for j, comp in enumerate(teacher.run(requests)):
            if comp.error:
                filters.reject("teacher_error")
                continue
            triples, failed = parse_alpaca_batch(comp.text, truncated=comp.finish_reason == "length")
            self._candidates += len(triples) + failed
            for _ in range(failed):
                filters.reject("parse_failure")
            if not triples and not failed:
                self._candidates += 1
                filters.reject("parse_failure")
            for k, t in enumerate(triples):
                if (filters.check_instruction(t.instruction) or filters.check_output(t.output, t.input)
                        or filters.check_similar(t.instruction)):
                    continue
                filters.keep(t.instruction)
                prov = provenance(teacher.engine, template=prompts.template_id(self.template), params=params[j],
                                  stage="synth", mode=self.name, round=r, language=cfg.language)
                out.append(record(f"alpaca-{r}-{j}-{k}", t.instruction, t.input, t.output, prov))
                if len(out) >= need:
                    return out
        return out
