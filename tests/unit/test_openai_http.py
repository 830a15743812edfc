"""The HTTP engine against a real local server that fails in every way a remote teacher does."""

from __future__ import annotations

import json
import socket
import time

import pytest
from fake_openai import FakeOpenAI

from ownchat.engines.base import ChatRequest, EngineError, SamplingParams
from ownchat.engines.openai_http import OpenAIEngine, retry_after
from ownchat.engines.pricing import load_prices
from ownchat.errors import DataError

Q = [{"role": "user", "content": "What is the capital of France?"}]


def engine(urls, **kw) -> OpenAIEngine:
    kw = {"api_key": "sk-test", "max_retries": 4, "backoff": 0.01, "timeout": 0.5, **kw}
    return OpenAIEngine("gpt-4o-mini", base_urls=urls, **kw)


def req(**params) -> ChatRequest:
    return ChatRequest.chat(Q, SamplingParams(**params))


@pytest.mark.parametrize("failure", ["429", "500", "malformed", "slow", "drop"])
def test_each_transient_failure_is_retried_then_answered(failure):
    with FakeOpenAI([failure, failure]) as srv:
        eng = engine(srv.url)
        comp = eng.generate(req(max_tokens=8))
    assert comp.text == "Paris is the capital."
    assert comp.prompt_tokens == 10 and comp.completion_tokens == 5
    assert eng.meter.retries == 2
    assert len(srv.requests) == 3


def test_mixed_failures_under_concurrency_every_request_ends():
    script = ["429", "500", "malformed", "drop", "slow", "500", "ok", "429"] * 2
    with FakeOpenAI(script) as srv:
        eng = engine(srv.url, concurrency=4, max_retries=len(script))
        reqs = [req(max_tokens=8, seed=i) for i in range(12)]
        results = dict(eng.generate_many(reqs))
    assert sorted(results) == list(range(12))
    assert all(c.ok and c.text == "Paris is the capital." for c in results.values()), results
    assert eng.meter.retries == len(script) - script.count("ok")
    assert eng.meter.snapshot()["requests"] == 12


def test_gives_up_with_clear_error_after_last_retry():
    with FakeOpenAI(default="500") as srv:
        eng = engine(srv.url, max_retries=3)
        with pytest.raises(EngineError, match=r"gave up after 4 attempts.*HTTP 500"):
            eng.generate(req())
        assert len(srv.requests) == 4 and eng.meter.retries == 3
        # through generate_many the failure becomes an error record, not an exception
        [(_, comp)] = list(eng.generate_many([req()]))
    assert comp.finish_reason == "error" and "gave up" in comp.error


def test_client_errors_are_not_retried():
    with FakeOpenAI(default="401") as srv:
        eng = engine(srv.url)
        with pytest.raises(EngineError, match="HTTP 401"):
            eng.generate(req())
    assert len(srv.requests) == 1 and eng.meter.retries == 0


def test_retry_after_is_honoured():
    with FakeOpenAI(["429"], retry_after="1") as srv:
        eng = engine(srv.url, backoff=0.0)
        eng.generate(req())
    assert srv.times[1] - srv.times[0] >= 0.95


def test_retry_after_parsing():
    assert retry_after("3") == 3.0
    assert retry_after(None) is None and retry_after("soon") is None
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 <= retry_after(date) <= 31


def test_unreachable_host_fails_clearly():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here now
    eng = engine(f"http://127.0.0.1:{port}/v1", max_retries=2)
    with pytest.raises(EngineError, match="connection failed"):
        eng.generate(req())
    assert eng.meter.retries == 2


def test_load_is_spread_and_dead_urls_are_routed_around():
    with FakeOpenAI() as a, FakeOpenAI() as b, FakeOpenAI(default="500") as dead:
        eng = engine([a.url, b.url, dead.url], concurrency=6)
        results = list(eng.generate_many([req(seed=i) for i in range(24)]))
        assert all(c.ok for _, c in results)
        assert len(a.requests) >= 6 and len(b.requests) >= 6
        # a retry never goes back to the URL that just failed
        assert len(dead.requests) == eng.meter.retries
    assert eng.base_urls == [a.url, b.url, dead.url]


def test_request_body_and_auth():
    with FakeOpenAI() as srv:
        eng = engine(srv.url)
        eng.generate(ChatRequest.chat(Q, SamplingParams(temperature=0.5, max_tokens=7, seed=3, stop=("\n",)),
                                      sample_index=2))
        comp = eng.generate(ChatRequest.completion("The capital of France is", SamplingParams(max_tokens=4)))
    chat, completion = srv.requests
    assert chat["path"] == "/v1/chat/completions" and chat["auth"] == "Bearer sk-test"
    assert chat["body"]["seed"] == 5 and chat["body"]["stop"] == ["\n"] and chat["body"]["max_tokens"] == 7
    assert completion["path"] == "/v1/completions" and completion["body"]["prompt"].endswith("is")
    assert comp.finish_reason == "length"


def test_env_configuration(monkeypatch):
    with FakeOpenAI() as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
        eng = OpenAIEngine("local-model")
        assert eng.generate(req()).ok
    assert srv.requests[0]["auth"] == "Bearer sk-env"
    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(EngineError, match="API key"):
        OpenAIEngine("gpt-4o")


def test_streaming_sse_and_usage():
    with FakeOpenAI(["500"]) as srv:
        eng = engine(srv.url)
        pieces = list(eng.stream(req()))
    assert "".join(pieces) == "Paris is the capital." and len(pieces) == 4
    assert eng.meter.retries == 1 and eng.meter.completion_tokens == 4


def test_stream_broken_mid_way_is_a_clear_error():
    with FakeOpenAI(["stream-broken"]) as srv:
        eng = engine(srv.url)
        got = []
        with pytest.raises(EngineError, match="stream broke after 2 chunks"):
            for piece in eng.stream(req()):
                got.append(piece)
    assert got == ["Paris", " is"]


def test_cost_accounting_and_price_overrides(tmp_path):
    with FakeOpenAI() as srv:
        eng = engine(srv.url)
        for _ in range(4):
            eng.generate(req())
    snap = eng.meter.snapshot()
    assert snap["prompt_tokens"] == 40 and snap["completion_tokens"] == 20
    assert snap["cost_usd"] == pytest.approx((40 * 0.15 + 20 * 0.60) / 1e6)

    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"my-model": [1.0, 2.0]}))
    table = load_prices(prices)
    assert table.cost("my-model", 1_000_000, 500_000) == pytest.approx(2.0)
    assert table.cost("gpt-4o-mini-2024-07-18", 1_000_000, 0) == pytest.approx(0.15)  # dated snapshot
    assert table.cost("unknown", 10**6, 10**6) == 0 and not table.priced("unknown")
    prices.write_text("{bad")
    with pytest.raises(DataError, match="prices.json:1"):
        load_prices(prices)
    with pytest.raises(DataError, match="must be"):
        load_prices({"m": 3})
