"""Host check (DNS rebinding), security headers, lone surrogates, n against the queue, the prompt
cache across keys (fake engines, no model)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from fastapi.testclient import TestClient
from serve_fakes import PassThroughFake, assert_error, chat, make_client, sse_events

from ownchat.serve.app import ServeSettings, create_app
from ownchat.serve.auth import KeyRing
from ownchat.serve.guards import CSP, host_name, host_policy
from ownchat.serve.limits import Limits

ROUTES = [("GET", "/"), ("GET", "/static/index.html"), ("GET", "/healthz"), ("GET", "/api/info"),
          ("GET", "/api/conversations"), ("GET", "/v1/models"), ("POST", "/v1/chat/completions")]


@pytest.fixture
def client(tmp_path):
    with make_client(tmp_path=tmp_path) as c:
        yield c


@pytest.mark.parametrize("method,path", ROUTES)
def test_foreign_host_is_refused_everywhere(client, method, path):
    for host in ("attacker.example", "attacker.example:8000", "127.0.0.1.attacker.example", "localhost.evil"):
        r = client.request(method, path, headers={"Host": host}, json=chat(max_tokens=1))
        assert_error(r, 421, "host_not_allowed")
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    for host in ("127.0.0.1:8000", "localhost:8000", "LOCALHOST", "[::1]:8000", "localhost."):
        r = client.request(method, path, headers={"Host": host}, json=chat(max_tokens=1))
        assert r.status_code in (200, 201), (host, r.text)


def test_host_policy_names():
    assert host_name("[::1]:8000") == "::1" and host_name("Example.ORG.:80") == "example.org"
    loop = host_policy("127.0.0.1")
    assert loop.allows("127.0.0.1:1") and not loop.allows("10.0.0.7") and not loop.allows("my-box")
    named = host_policy("127.0.0.1", ["chat.lan"])
    assert named.allows("chat.lan:8000") and not named.allows("other.lan")
    wild = host_policy("0.0.0.0")
    assert wild.allows("192.168.1.20:8000") and wild.allows("[fe80::1]") and not wild.allows("attacker.example")
    assert host_policy("192.168.1.20").allows("192.168.1.20") and not host_policy("192.168.1.20").allows("10.1.1.1")


def test_static_page_carries_the_same_headers_as_root(client):
    root, static = client.get("/"), client.get("/static/index.html")
    assert root.status_code == static.status_code == 200
    for r in (root, static, client.get("/static/app.js")):
        assert r.headers["content-security-policy"] == CSP
        assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"


LONE = '"a\\ud800b"'  # JSON text for a string holding a lone high surrogate


@pytest.mark.parametrize("method,path,raw,param", [
    ("POST", "/v1/chat/completions", '{"model": "tiny", "messages": [{"role": "user", "content": %s}]}',
     "messages[0].content"),
    ("POST", "/v1/completions", '{"model": "tiny", "prompt": %s}', "prompt"),
    ("POST", "/v1/chat/completions", '{"model": "tiny", "messages": [{"role": "user", "content": "x"}], '
                                     '"stop": [%s]}', "stop[0]"),
    ("POST", "/api/chat", '{"messages": [{"role": "user", "content": %s}]}', "messages[0].content"),
    ("POST", "/api/conversations", '{"system_prompt": %s}', "system_prompt"),
    ("POST", "/api/conversations", '{"title": "\\udfff"}', "title"),
])
def test_lone_surrogates_are_a_400_naming_the_field(client, method, path, raw, param):
    body = (raw % LONE) if "%s" in raw else raw
    r = client.request(method, path, content=body.encode(), headers={"content-type": "application/json"})
    assert_error(r, 400, "invalid_value")
    assert r.json()["error"]["param"] == param and "surrogate" in r.json()["error"]["message"]
    # a proper pair (an emoji) is fine, and the server keeps working
    ok = client.post("/v1/chat/completions", content=b'{"model": "tiny", "messages": [{"role": "user", '
                                                     b'"content": "\\ud83d\\ude00"}], "max_tokens": 1}',
                     headers={"content-type": "application/json"})
    assert ok.status_code == 200, ok.text


def test_lone_surrogate_in_a_conversation_patch_and_reply(client):
    cid = client.post("/api/conversations", json={}).json()["id"]
    for path, method, body in ((f"/api/conversations/{cid}", "PATCH", '{"system_prompt": ' + LONE + "}"),
                               (f"/api/conversations/{cid}/messages", "POST", '{"content": ' + LONE + "}")):
        r = client.request(method, path, content=body.encode(), headers={"content-type": "application/json"})
        assert_error(r, 400, "invalid_value")
    assert client.get(f"/api/conversations/{cid}").json()["messages"] == []


def test_n_counts_every_choice_against_slots_and_queue(tmp_path):
    eng = PassThroughFake(delay=0.01)
    with make_client(eng, tmp_path, limits=Limits(max_tokens=64, queue_size=2)) as c:  # 2 slots + 2 waiting
        r = c.post("/v1/chat/completions", json=chat(max_tokens=5, n=4, seed=1))
        assert r.status_code == 200 and [x["index"] for x in r.json()["choices"]] == [0, 1, 2, 3]
        assert len(eng.bodies) == 4 and eng.max_active == 2  # four turns, never more than the slots
        assert r.json()["usage"]["completion_tokens"] == 20
        assert_error(c.post("/v1/chat/completions", json=chat(n=5)), 400, "invalid_value")  # over capacity
        ev = sse_events(c.post("/v1/chat/completions", json=chat(max_tokens=2, n=3, stream=True)).text)
        texts = {}
        for e in ev[:-1]:
            for ch in e["choices"]:
                texts[ch["index"]] = texts.get(ch["index"], "") + (ch["delta"].get("content") or "")
        assert texts == {0: "w0 w1 ", 1: "w0 w1 ", 2: "w0 w1 "}


def test_a_request_for_n_choices_takes_n_places_in_the_queue():
    eng = PassThroughFake(delay=0.05)
    app = create_app(eng, ServeSettings(model_name="tiny", history=False, limits=Limits(queue_size=2)))

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as ac:
            big = asyncio.ensure_future(ac.post("/v1/chat/completions", json=chat(max_tokens=8, n=4)))
            while app.state.admission.inside < 4:
                await asyncio.sleep(0.01)
            small = await ac.post("/v1/chat/completions", json=chat(max_tokens=1))
            assert small.status_code == 429  # 4 of 4 places taken by one request's choices
            assert (await big).status_code == 200
            assert app.state.admission.inside == 0

    asyncio.run(go())


def test_prompt_cache_is_not_shared_between_keys(tmp_path):
    """With several keys nothing about another key's prompt may show: no reuse, no cached_tokens."""
    eng = PassThroughFake()
    keys = KeyRing(["alice-key-123", "bob-key-4567"])
    alice, bob = ({"Authorization": f"Bearer {k}"} for k in ("alice-key-123", "bob-key-4567"))
    with make_client(eng, tmp_path, keys=keys) as c:
        c.post("/v1/chat/completions", json=chat("my PIN is 4719", max_tokens=1), headers=alice)
        r = c.post("/v1/chat/completions", json=chat("my PIN is 4", max_tokens=1), headers=bob)
        assert "prompt_tokens_details" not in r.json()["usage"]
        assert all(b["cache_prompt"] is False for b in eng.bodies)
        ev = sse_events(c.post("/v1/chat/completions", json=chat("my PIN is 47", max_tokens=1, stream=True,
                                                                  stream_options={"include_usage": True}),
                               headers=bob).text)
        assert all("prompt_tokens_details" not in e.get("usage", {}) and "timings" not in e for e in ev[:-1])
    # one user: the cache helps that user and reports it
    eng = PassThroughFake()
    with make_client(eng, tmp_path) as c:
        c.post("/v1/chat/completions", json=chat("hello there", max_tokens=1))
        r = c.post("/v1/chat/completions", json=chat("hello there", max_tokens=1))
        assert r.json()["usage"]["prompt_tokens_details"]["cached_tokens"] > 0


def test_healthz_reports_engine_state(client):
    h = client.get("/healthz").json()
    assert h == {"ok": True, "in_flight": 0, "capacity": 3, "generating": 0, "engine_busy": 0}


def test_request_body_json_with_surrogate_pairs_roundtrips(tmp_path):
    with TestClient(create_app(PassThroughFake(), ServeSettings(model_name="tiny", history_path=tmp_path / "h")),
                    base_url="http://localhost") as c:
        cid = c.post("/api/conversations", content=json.dumps({"system_prompt": "😀 ok"}).encode(),
                     headers={"content-type": "application/json"}).json()["id"]
        assert c.get(f"/api/conversations/{cid}").json()["system_prompt"] == "😀 ok"
