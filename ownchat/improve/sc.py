"""Self-consistency decoding: sample K reasoning paths, extract each answer, take the majority.

Two ways in:

- ``self_consistency(engine, prompts, cfg)`` for many questions at once: all K x N requests go
  through ``engine.generate_many`` (llama.cpp's parallel slots, the hf engine's batches); sample k
  carries ``sample_index=k``, so with the response cache every sample is paid for once and replayed
  on a re-run, and the shared few-shot prefix is processed once per llama.cpp slot (``cache_prompt``).
- ``SelfConsistencyEngine(inner, cfg)``, an Engine whose ``generate`` answers with the majority
  rationale and reports the vote in ``completion.extra["sc"]``: any code that takes an engine gets
  self-consistency as an option.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ownchat.engines.base import ChatRequest, Completion, Engine, Message, SamplingParams
from ownchat.improve.extract import extract_answer, final_answer
from ownchat.improve.vote import Vote, majority_vote

Extractor = Callable[[str], "str | None"]


@dataclass(frozen=True)
class SCConfig:
    k: int = 5
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 256
    seed: int | None = 0  # sample k uses seed + k: distinct, and the same on every re-run
    stop: tuple[str, ...] = ()

    def params(self) -> SamplingParams:
        return SamplingParams(temperature=self.temperature, top_p=self.top_p, max_tokens=self.max_tokens,
                              seed=self.seed, stop=self.stop)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d


@dataclass
class Sample:
    k: int
    text: str
    answer: str | None
    finish_reason: str = "stop"
    completion_tokens: int = 0
    cached: bool = False
    error: str | None = None
    #: prompt tokens the engine actually computed (llama.cpp timings): shows the shared-prefix reuse
    prompt_computed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Sample:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass
class SCResult:
    vote: Vote
    samples: list[Sample] = field(default_factory=list)

    @property
    def answer(self) -> str | None:
        return self.vote.answer

    @property
    def share(self) -> float:
        return self.vote.share

    def agreeing(self) -> list[Sample]:
        """The samples whose answer is the majority answer (LMSI keeps these as training targets)."""
        return [s for s in self.samples if s.answer is not None and s.answer == self.vote.answer]

    def to_dict(self) -> dict[str, Any]:
        return {"vote": self.vote.to_dict(), "samples": [s.to_dict() for s in self.samples]}


def sample_requests(messages: Sequence[Message], cfg: SCConfig) -> list[ChatRequest]:
    params = cfg.params()
    return [ChatRequest.chat(messages, params, sample_index=k) for k in range(cfg.k)]


def _to_sample(k: int, comp: Completion, extract: Extractor) -> Sample:
    answer = final_answer(comp.text, comp.finish_reason, extract) if comp.ok else None
    return Sample(k=k, text=comp.text, answer=answer,
                  finish_reason=comp.finish_reason, completion_tokens=comp.completion_tokens,
                  cached=comp.cached, error=comp.error,
                  prompt_computed=(comp.extra.get("timings") or {}).get("prompt_n"))


def self_consistency(engine: Engine, prompts: Sequence[Sequence[Message]], cfg: SCConfig, *,
                     extract: Extractor = extract_answer, concurrency: int | None = None,
                     done: dict[tuple[int, int], Sample] | None = None,
                     on_sample: Callable[[int, Sample, Completion], None] | None = None,
                     ) -> Iterator[tuple[int, SCResult]]:
    """Yield ``(prompt_index, SCResult)`` as each prompt's K samples complete.

    ``done`` holds samples already on disk from an interrupted run, keyed ``(prompt_index, k)``; only
    the missing ones are requested. ``on_sample`` sees each new sample (write it out there).
    """
    have: dict[int, dict[int, Sample]] = {i: {} for i in range(len(prompts))}
    for (i, k), s in (done or {}).items():
        if i in have and k < cfg.k:
            have[i][k] = s
    # Already complete prompts come out first, so a resumed run shows them at once.
    for i in range(len(prompts)):
        if len(have[i]) == cfg.k:
            yield i, _finish(have[i])
    todo = [(i, k) for i in range(len(prompts)) for k in range(cfg.k) if k not in have[i]]
    params = cfg.params()
    # Question-major order: a question's samples are in flight together, so it finishes early and
    # the slots share its prompt prefix.
    requests = (ChatRequest.chat(prompts[i], params, sample_index=k) for i, k in todo)
    for j, comp in engine.generate_many(requests, concurrency=concurrency):
        i, k = todo[j]
        sample = _to_sample(k, comp, extract)
        have[i][k] = sample
        if on_sample:
            on_sample(i, sample, comp)
        if len(have[i]) == cfg.k:
            yield i, _finish(have[i])


def _finish(samples: dict[int, Sample]) -> SCResult:
    ordered = [samples[k] for k in sorted(samples)]
    return SCResult(majority_vote([s.answer for s in ordered]), ordered)


class SelfConsistencyEngine(Engine):
    """Wraps an engine: each ``generate`` draws K samples and answers with the majority's rationale.

    The request's own sampling parameters are replaced by ``cfg``'s (greedy samples would all agree).
    ``completion.extra["sc"]`` holds the vote; token usage is the sum over the K samples.
    """

    def __init__(self, inner: Engine, cfg: SCConfig | None = None, extract: Extractor = extract_answer) -> None:
        self.inner = inner
        self.cfg = cfg or SCConfig()
        self.extract = extract
        self.name = inner.name
        self.model_id = f"{inner.model_id}+sc:k={self.cfg.k},t={self.cfg.temperature}"
        # one SC request fills K slots: keep the number of SC requests in flight small
        self.max_concurrency = max(1, inner.max_concurrency // self.cfg.k)
        self.license = getattr(inner, "license", None)

    def generate(self, request: ChatRequest) -> Completion:
        if request.messages is None:
            reqs = [ChatRequest.completion(request.prompt or "", self.cfg.params(), sample_index=k)
                    for k in range(self.cfg.k)]
        else:
            reqs = sample_requests(request.messages, self.cfg)
        comps: dict[int, Completion] = dict(self.inner.generate_many(reqs))
        samples = {k: _to_sample(k, c, self.extract) for k, c in comps.items()}
        result = _finish(samples)
        agree = result.agreeing()
        chosen = comps[agree[0].k] if agree else comps[0]
        return Completion(
            text=chosen.text, finish_reason=chosen.finish_reason,
            prompt_tokens=sum(c.prompt_tokens for c in comps.values()),
            completion_tokens=sum(c.completion_tokens for c in comps.values()),
            cached=all(c.cached for c in comps.values()), error=chosen.error, model=self.model_id,
            extra={"sc": {**result.vote.to_dict(), "answers": [s.answer for s in result.samples]}},
        )

    def close(self) -> None:
        self.inner.close()
