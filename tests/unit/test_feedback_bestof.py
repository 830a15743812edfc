"""BestOfNEngine: N distinct samples, the highest reward wins, usage adds up."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from ownchat.engines.base import ChatRequest, Completion, Engine, SamplingParams
from ownchat.errors import UserError
from ownchat.feedback.bestof import BestOfNEngine, with_best_of


class Sampler(Engine):
    name = "sampler"
    model_id = "sampler"
    max_concurrency = 4

    def __init__(self) -> None:
        self.requests: list[ChatRequest] = []

    def generate(self, request: ChatRequest) -> Completion:
        self.requests.append(request)
        if request.sample_index == 2:
            return Completion("", "error", error="boom")
        return Completion(f"answer {request.sample_index}", "stop", 10, 5)


class LengthScorer:
    """Prefers a fixed answer, to check the argmax is taken over the right texts."""

    model_id = "len-rm"

    def __init__(self, favourite: str) -> None:
        self.favourite = favourite
        self.seen: list[str] = []

    def score(self, prompt: Sequence[dict], answers: Sequence[str]) -> list[float]:
        self.seen = list(answers)
        return [10.0 if a == self.favourite else float(len(a)) for a in answers]


def test_best_of_picks_the_top_reward_and_sums_usage() -> None:
    inner, rm = Sampler(), LengthScorer("answer 1")
    eng = BestOfNEngine(inner, rm, n=4)
    comp = eng.generate(ChatRequest.chat([{"role": "user", "content": "hi"}], SamplingParams(temperature=0)))
    assert comp.text == "answer 1"
    assert sorted(rm.seen) == ["answer 0", "answer 1", "answer 3"]  # the failed sample is not scored
    assert comp.completion_tokens == 15 and comp.prompt_tokens == 30
    assert comp.extra["best_of"]["n"] == 4 and len(comp.extra["best_of"]["rewards"]) == 3
    # greedy requests are sampled instead, with distinct indices and a fixed seed
    assert {r.sample_index for r in inner.requests} == {0, 1, 2, 3}
    assert all(r.params.temperature == 0.8 and r.params.seed == 0 for r in inner.requests)
    assert eng.model_id == "sampler+bestof4:len-rm"


def test_sample_indices_do_not_collide_across_outer_samples() -> None:
    inner = Sampler()
    eng = BestOfNEngine(inner, LengthScorer("x"), n=3)
    eng.generate(ChatRequest.chat([{"role": "user", "content": "hi"}], SamplingParams(temperature=0.5), sample_index=1))
    assert sorted(r.sample_index for r in inner.requests) == [3, 4, 5]
    assert all(r.params.temperature == 0.5 for r in inner.requests)


def test_all_samples_failing_returns_the_error() -> None:
    class Broken(Sampler):
        def generate(self, request: ChatRequest) -> Completion:
            return Completion("", "error", error="down")

    comp = BestOfNEngine(Broken(), LengthScorer("x"), n=2).generate(ChatRequest.chat([{"role": "user", "content": "q"}]))
    assert comp.error == "down"


def test_with_best_of_wiring() -> None:
    inner = Sampler()
    assert with_best_of(inner, None, 1) is inner
    with pytest.raises(UserError):
        with_best_of(inner, None, 4)
    with pytest.raises(ValueError):
        BestOfNEngine(inner, LengthScorer("x"), n=0)


class RawSampler(Sampler):
    """Also speaks llama.cpp's raw dialect, which the server would use if best-of let it through."""

    def generate(self, request: ChatRequest) -> Completion:
        self.requests.append(request)
        return Completion(f"answer {request.sample_index}", "stop", 10, 5)

    def raw_chat(self, body, on_chunk=None):  # pragma: no cover - must never be reached
        raise AssertionError("best-of was bypassed")

    raw_completion = raw_chat


def test_served_replies_are_reranked_and_sampled_afresh(tmp_path) -> None:
    from fastapi.testclient import TestClient

    from ownchat.serve.app import ServeSettings, create_app

    inner = RawSampler()
    eng = BestOfNEngine(inner, LengthScorer("answer 2"), n=3, reproducible=False)
    assert not hasattr(eng, "raw_chat")
    settings = ServeSettings(model_name="tiny", history_path=tmp_path / "h.sqlite")
    with TestClient(create_app(eng, settings), base_url="http://127.0.0.1") as client:
        body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}
        r = client.post("/v1/chat/completions", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"] == "answer 2"
        assert r.json()["usage"]["completion_tokens"] == 15  # all three samples were paid for
        streamed = client.post("/v1/chat/completions", json={**body, "stream": True}).text
        assert "answer 2" in streamed
    assert all(r.params.seed is None for r in inner.requests)  # a server does not pin the seed


def test_serve_refuses_best_of_without_a_reward_model() -> None:
    from ownchat.serve.server import serve

    with pytest.raises(UserError, match="--reward-model"):
        serve("smollm2-135m-instruct", best_of=4)
