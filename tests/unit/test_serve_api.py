"""The HTTP API against fake engines (no model): shapes, errors, limits, auth, history routes."""

from __future__ import annotations

import json
import time

import pytest
from serve_fakes import GenericFake, PassThroughFake, assert_error, chat, make_client, sse_events

from ownchat.serve.app import ServeSettings, create_app
from ownchat.serve.auth import KeyRing
from ownchat.serve.limits import Limits


@pytest.fixture
def client(tmp_path):
    with make_client(tmp_path=tmp_path) as c:
        yield c


def test_chat_completion_shape_and_model_name_hidden(client):
    r = client.post("/v1/chat/completions", json=chat(max_tokens=3, n=2, stop=["x"], seed=7, temperature=0))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "tiny" and "timings" not in body
    assert [c["message"]["content"] for c in body["choices"]] == ["w0 w1 w2 "] * 2
    first, second = client.app.state.backend.engine.bodies[-2:]  # n=2: one engine call per choice
    assert first["stop"] == ["x"] and first["temperature"] == 0 and "n" not in first
    assert sorted([first["seed"], second["seed"]]) == [7, 8]  # distinct choices, still replayable


def test_streaming_chat_sends_chunks_then_done(client):
    r = client.post("/v1/chat/completions", json=chat(max_tokens=4, stream=True))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    ev = sse_events(r.text)
    assert ev[-1] == "[DONE]"
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in ev[:-1] if e["choices"])
    assert text == "w0 w1 w2 w3 "
    assert not any("usage" in e for e in ev[:-1])  # not asked for
    r = client.post("/v1/chat/completions", json=chat(max_tokens=2, stream=True,
                                                       stream_options={"include_usage": True}))
    assert sse_events(r.text)[-2]["usage"]["completion_tokens"] == 2


def test_completions_and_models(client):
    r = client.post("/v1/completions", json={"model": "tiny-alias", "prompt": "a b", "max_tokens": 2})
    assert r.status_code == 200 and r.json()["choices"][0]["text"] == "w0 w1 "
    models = client.get("/v1/models").json()
    assert models["object"] == "list" and models["data"][0]["id"] == "tiny"
    assert client.get("/v1/models/tiny").json()["id"] == "tiny"


@pytest.mark.parametrize("payload,status,code", [
    (b"{not json", 400, "invalid_json"),
    (b"", 400, "invalid_json"),
    (json.dumps({"model": "tiny", "messages": "hello"}).encode(), 400, "invalid_value"),
    (json.dumps(chat(temperature="hot")).encode(), 400, "invalid_value"),
    (json.dumps(chat(max_tokens=-5)).encode(), 400, "invalid_value"),
    (json.dumps(chat(max_tokens=10_000)).encode(), 400, "invalid_value"),
    (json.dumps(chat(n=99)).encode(), 400, "invalid_value"),
    (json.dumps({"model": "tiny", "messages": []}).encode(), 400, "invalid_value"),
    (json.dumps({**chat(), "model": "gpt-9"}).encode(), 404, "model_not_found"),
    (json.dumps({"model": "tiny", "messages": [{"role": "wizard", "content": "x"}]}).encode(), 400, None),
    (json.dumps({"model": "tiny", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "x"}}]}]}).encode(), 400, "unsupported_value"),
    (json.dumps(chat("x" * 30_000)).encode(), 413, "request_too_large"),
    (json.dumps(chat("TOOLONG")).encode(), 400, "context_length_exceeded"),
])
def test_bad_requests_get_openai_errors_and_server_survives(client, payload, status, code):
    r = client.post("/v1/chat/completions", content=payload, headers={"content-type": "application/json"})
    assert_error(r, status, code)
    assert client.post("/v1/chat/completions", json=chat(max_tokens=1)).status_code == 200


def test_context_error_in_stream_is_still_a_400(client):
    assert_error(client.post("/v1/chat/completions", json=chat("TOOLONG", stream=True)), 400,
                 "context_length_exceeded")


def test_prompt_token_limit_uses_tokenizer_when_engine_has_one(tmp_path):
    eng = PassThroughFake()
    eng.count_tokens = lambda text: len(text.split())  # one token per word
    with make_client(eng, tmp_path, limits=Limits(max_prompt_tokens=100)) as c:
        assert c.post("/v1/chat/completions", json=chat("a " * 90, max_tokens=1)).status_code == 200
        assert_error(c.post("/v1/chat/completions", json=chat("a " * 150)), 400, "context_length_exceeded")


def test_generic_engine_path(tmp_path):
    with make_client(GenericFake(), tmp_path) as c:
        r = c.post("/v1/chat/completions", json=chat(n=2))
        assert [x["message"]["content"] for x in r.json()["choices"]] == ["seen 1 messages"] * 2
        ev = sse_events(c.post("/v1/chat/completions", json=chat(stream=True)).text)
        assert "".join(e["choices"][0]["delta"].get("content") or "" for e in ev[:-1] if e["choices"]) == "seen it"


def test_queue_full_answers_429(tmp_path):
    import httpx

    eng = PassThroughFake(delay=0.05)
    app = create_app(eng, ServeSettings(model_name="tiny", history=False,
                                        limits=Limits(queue_size=0)))  # 2 slots, nobody waits
    results: list[int] = []

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as ac:
            import asyncio

            async def one():
                r = await ac.post("/v1/chat/completions", json=chat(max_tokens=8))
                results.append(r.status_code)
                if r.status_code == 429:
                    assert r.json()["error"]["type"] == "rate_limit_error"

            await asyncio.gather(*[one() for _ in range(5)])
            assert app.state.admission.inside == 0
            r = await ac.post("/v1/chat/completions", json=chat(max_tokens=1))
            assert r.status_code == 200

    import asyncio
    asyncio.run(go())
    assert sorted(results) == [200, 200, 429, 429, 429]


def test_api_keys_required_and_history_is_per_key(tmp_path):
    keys = KeyRing(["alice-key-123", "bob-key-4567"])
    with make_client(tmp_path=tmp_path, keys=keys) as c:
        assert_error(c.post("/v1/chat/completions", json=chat()), 401, "invalid_api_key")
        assert_error(c.get("/v1/models", headers={"Authorization": "Bearer wrong-key-999"}), 401)
        assert_error(c.get("/api/conversations"), 401)
        assert c.get("/api/info").json()["auth"] is True  # the page asks before it has a key
        alice = {"Authorization": "Bearer alice-key-123"}
        bob = {"Authorization": "Bearer bob-key-4567"}
        assert c.get("/v1/models", headers=alice).status_code == 200
        cid = c.post("/api/conversations", json={}, headers=alice).json()["id"]
        assert [x["id"] for x in c.get("/api/conversations", headers=alice).json()] == [cid]
        assert c.get("/api/conversations", headers=bob).json() == []
        assert_error(c.get(f"/api/conversations/{cid}", headers=bob), 404)
        assert_error(c.delete(f"/api/conversations/{cid}", headers=bob), 404)
        assert c.get(f"/api/conversations/{cid}", headers=alice).status_code == 200


def test_web_history_flow_and_export(client):
    cid = client.post("/api/conversations", json={"system_prompt": "Be brief.",
                                                  "settings": {"max_tokens": 3}}).json()["id"]
    r = client.post(f"/api/conversations/{cid}/messages", json={"content": "Hello there"})
    assert r.status_code == 200 and sse_events(r.text)[-1] == "[DONE]"
    conv = client.get(f"/api/conversations/{cid}").json()
    assert conv["title"] == "Hello there"
    assert [(m["role"], m["content"]) for m in conv["messages"]] == [("user", "Hello there"),
                                                                      ("assistant", "w0 w1 w2 ")]
    sent = client.app.state.backend.engine.bodies[-1]["messages"]
    assert sent[0] == {"role": "system", "content": "Be brief."}
    assert client.patch(f"/api/conversations/{cid}", json={"title": "Renamed"}).json()["title"] == "Renamed"
    assert_error(client.patch(f"/api/conversations/{cid}", json={"title": ""}), 400)
    exported = client.get(f"/api/conversations/{cid}/export").json()
    assert exported[0]["conversations"][0] == {"from": "system", "value": "Be brief."}
    assert exported[0]["conversations"][-1]["from"] == "gpt"
    assert client.delete(f"/api/conversations/{cid}").status_code == 204
    assert_error(client.get(f"/api/conversations/{cid}"), 404)


def test_no_history_mode_stores_nothing(tmp_path):
    with make_client(tmp_path=tmp_path, history=False) as c:
        assert c.get("/api/info").json()["history"] is False
        assert_error(c.post("/api/conversations", json={}), 404, "history_disabled")
        r = c.post("/api/chat", json={"messages": [{"role": "user", "content": "hi"}], "settings": {"max_tokens": 2}})
        assert r.status_code == 200 and "w1" in r.text
    assert not (tmp_path / "h.sqlite").exists()


def test_web_page_is_self_contained(client):
    r = client.get("/")
    assert r.status_code == 200 and "default-src 'self'" in r.headers["content-security-policy"]
    for src in ("/static/app.js", "/static/style.css"):
        assert client.get(src).status_code == 200
    assert "http://" not in r.text and "https://" not in r.text
    assert_error(client.get("/nope"), 404)


def test_chunked_body_over_the_limit_is_refused(client):
    def chunks():
        for _ in range(30):
            yield b" " * 1000  # 30 kB with no Content-Length, limit is 20 kB

    r = client.post("/v1/chat/completions", content=chunks(), headers={"content-type": "application/json"})
    assert_error(r, 413, "request_too_large")
    assert client.get("/v1/models").status_code == 200


def test_client_disconnect_stops_generation(tmp_path):
    """Closing a stream early (stop button, dead client) must free the engine's slot."""
    eng = PassThroughFake(delay=0.02)
    with make_client(eng, tmp_path, limits=Limits(max_tokens=64)) as c:
        with c.stream("POST", "/v1/chat/completions", json=chat(max_tokens=64, stream=True)) as r:
            for line in r.iter_lines():
                if "w2" in line:
                    break
        assert eng.stopped_early.wait(5)
        deadline = time.time() + 5
        while c.app.state.admission.inside and time.time() < deadline:
            time.sleep(0.05)
        assert c.app.state.admission.inside == 0
