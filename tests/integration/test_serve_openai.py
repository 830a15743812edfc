"""`ownchat serve` for real: SmolLM2 on llama.cpp in a child process, driven by the official client.

One server for the whole module (model load is the expensive part); every reply is a few tokens.
"""

from __future__ import annotations

import ipaddress
import json
import sqlite3
import threading

import httpx
import openai
import pytest

from ownchat.serve.process import ServerProcess, open_sockets, reachable_listeners

pytestmark = pytest.mark.model
MODEL = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def server(smollm2_gguf, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    with ServerProcess(MODEL, "--parallel", "2", "--history", str(tmp / "history.sqlite"), "--max-tokens", "64",
                       "--max-body-bytes", "200000", log_path=tmp / "server.log") as srv:
        srv.history = tmp / "history.sqlite"
        yield srv


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0, timeout=60)


def ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_chat_completion(client):
    r = client.chat.completions.create(model=MODEL, messages=ask("What is 2+2?"), max_tokens=8, temperature=0)
    assert r.choices[0].message.content.strip()
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.model == MODEL and r.usage.completion_tokens <= 8 and r.usage.prompt_tokens > 5


def test_streaming_chat_with_usage(client):
    stream = client.chat.completions.create(model=MODEL, messages=ask("Name a colour."), max_tokens=8,
                                            temperature=0, stream=True, stream_options={"include_usage": True})
    parts, usage = [], None
    for chunk in stream:
        if chunk.choices:
            parts.append(chunk.choices[0].delta.content or "")
        if chunk.usage:
            usage = chunk.usage
    assert len([p for p in parts if p]) >= 2 and "".join(parts).strip()
    assert usage is not None and 1 <= usage.completion_tokens <= 8
    # the same request without streaming gives the same greedy text
    whole = client.chat.completions.create(model=MODEL, messages=ask("Name a colour."), max_tokens=8, temperature=0)
    assert whole.choices[0].message.content == "".join(parts)


def test_completions_stop_seed_and_n(client):
    r = client.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=3, temperature=0)
    assert "Paris" in r.choices[0].text
    r = client.completions.create(model=MODEL, prompt="1, 2, 3, 4,", max_tokens=12, temperature=0, stop=[" 7"])
    assert " 7" not in r.choices[0].text and "5" in r.choices[0].text
    a, b = (client.chat.completions.create(model=MODEL, messages=ask("Tell me a word."), max_tokens=6,
                                           temperature=1.0, seed=1234) for _ in range(2))
    assert a.choices[0].message.content == b.choices[0].message.content
    r = client.chat.completions.create(model=MODEL, messages=ask("Hi"), max_tokens=4, temperature=0.9, n=2)
    assert len(r.choices) == 2


def test_n_up_to_the_documented_eight_on_two_slots(client):
    r = client.chat.completions.create(model=MODEL, messages=ask("Hi"), max_tokens=2, temperature=0.9, n=8)
    assert sorted(c.index for c in r.choices) == list(range(8)) and r.usage.completion_tokens <= 16


def test_models(client):
    assert [m.id for m in client.models.list()] == [MODEL]


@pytest.mark.parametrize("case", ["bad_json", "wrong_type", "huge_body", "unknown_model", "negative_max_tokens",
                                  "too_many_tokens", "missing_messages"])
def test_malformed_requests(server, client, case):
    url = server.base_url + "/v1/chat/completions"
    good = {"model": MODEL, "messages": ask("hi"), "max_tokens": 2}
    bodies = {
        "bad_json": b'{"model": "x", "messages": [',
        "wrong_type": json.dumps({**good, "max_tokens": "lots"}).encode(),
        "huge_body": json.dumps({**good, "messages": ask("x" * 300_000)}).encode(),
        "unknown_model": json.dumps({**good, "model": "gpt-4o"}).encode(),
        "negative_max_tokens": json.dumps({**good, "max_tokens": -3}).encode(),
        "too_many_tokens": json.dumps({**good, "max_tokens": 100_000}).encode(),
        "missing_messages": json.dumps({"model": MODEL}).encode(),
    }
    expected = {"huge_body": 413, "unknown_model": 404}.get(case, 400)
    r = httpx.post(url, content=bodies[case], headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == expected, r.text
    err = r.json()["error"]
    assert err["message"] and set(err) == {"message", "type", "param", "code"}
    if case == "unknown_model":  # the official client raises its own typed error
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="gpt-4o", messages=ask("hi"), max_tokens=2)
    if case == "negative_max_tokens":
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model=MODEL, messages=ask("hi"), max_tokens=-3)
    ok = client.chat.completions.create(model=MODEL, messages=ask("hi"), max_tokens=2)
    assert ok.choices[0].message.content is not None


LONE = '"x\\ud800y"'  # JSON text of a string with a lone surrogate: not Unicode


@pytest.mark.parametrize("path,raw", [
    ("/v1/chat/completions", '{"model": "%s", "messages": [{"role": "user", "content": %s}], "max_tokens": 2}'),
    ("/v1/completions", '{"model": "%s", "prompt": %s, "max_tokens": 2}'),
    ("/api/chat", '{"messages": [{"role": "user", "content": %s}]}'),
    ("/api/conversations", '{"title": "t", "system_prompt": %s}'),
    ("/api/chat", '{"messages": [{"role": "user", "content": "hi"}], "settings": {"max_tokens": "many"}}'),
    ("/api/chat", '{"messages": ['),
    ("/api/conversations", '{"title": ""'),
    ("/api/conversations", '{"unknown_field": 1}'),
])
def test_malformed_web_and_v1_requests(server, client, path, raw):
    """The web API answers broken bodies like /v1 does: a 4xx with an error body, and the server lives."""
    body = raw.replace("%s", MODEL, 1).replace("%s", LONE) if raw.count("%s") == 2 else raw.replace("%s", LONE)
    r = httpx.post(server.base_url + path, content=body.encode(), headers={"content-type": "application/json"},
                   timeout=30)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["message"] and set(err) == {"message", "type", "param", "code"}
    if LONE in raw:
        assert "surrogate" in err["message"] and err["param"]
    ok = client.chat.completions.create(model=MODEL, messages=ask("hi"), max_tokens=2)
    assert ok.choices[0].message.content is not None


@pytest.mark.parametrize("path", ["/", "/static/index.html", "/v1/models", "/api/conversations", "/api/info"])
def test_foreign_host_header_is_refused(server, path):
    """DNS rebinding: a page on attacker.example that resolves to 127.0.0.1 must not read the server."""
    r = httpx.get(server.base_url + path, headers={"Host": "attacker.example"}, timeout=10)
    assert r.status_code == 421 and r.json()["error"]["code"] == "host_not_allowed"
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}"):
        assert httpx.get(server.base_url + path, headers={"Host": host}, timeout=10).status_code == 200


def test_static_page_has_the_csp_of_the_root_page(server):
    root, static = (httpx.get(server.base_url + p, timeout=10) for p in ("/", "/static/index.html"))
    assert root.headers["content-security-policy"] == static.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in static.headers["content-security-policy"]


def test_only_the_asked_port_listens(server, client):
    """llama.cpp's in-process HTTP server used to listen on a second, keyless loopback port."""
    client.chat.completions.create(model=MODEL, messages=ask("hi"), max_tokens=1)
    assert reachable_listeners(server.pid) == [f"tcp 127.0.0.1:{server.port}"]


def test_context_overflow_is_a_400(client):
    with pytest.raises(openai.BadRequestError, match="context"):
        client.completions.create(model=MODEL, prompt="hello " * 5000, max_tokens=2)


def _is_local(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    if addr.version == 6 and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return addr.is_loopback or addr.is_unspecified


def test_no_connection_beyond_loopback(server, client):
    """While a chat streams and after it, every socket the server holds is on loopback."""
    seen: list[dict] = []
    started = threading.Event()

    def chat():
        for _ in client.chat.completions.create(model=MODEL, messages=ask("Write a short poem."), max_tokens=48,
                                                stream=True):
            started.set()

    t = threading.Thread(target=chat)
    t.start()
    started.wait(30)
    seen += open_sockets(server.pid)
    t.join(60)
    seen += open_sockets(server.pid)
    assert any(s["state"] == "0A" for s in seen), "the listening socket should be visible"
    assert any(s["state"] == "01" for s in seen), "the chat's connection should be visible"
    outside = [s for s in seen if not (_is_local(s["local"][0]) and _is_local(s["remote"][0]))]
    assert outside == [], f"sockets beyond loopback: {outside}"


def test_web_history_delete_removes_rows(server):
    api = server.base_url + "/api"
    cid = httpx.post(api + "/conversations", json={"settings": {"max_tokens": 6, "temperature": 0}}).json()["id"]
    with httpx.stream("POST", f"{api}/conversations/{cid}/messages", json={"content": "Say hello"}, timeout=60) as r:
        assert r.status_code == 200
        text = "".join(r.iter_text())
    assert "[DONE]" in text
    conv = httpx.get(f"{api}/conversations/{cid}").json()
    assert [m["role"] for m in conv["messages"]] == ["user", "assistant"] and conv["messages"][1]["content"]
    db = sqlite3.connect(server.history)
    assert db.execute("SELECT COUNT(*) FROM messages WHERE conversation_id = ?", (cid,)).fetchone()[0] == 2
    assert httpx.delete(f"{api}/conversations/{cid}").status_code == 204
    assert db.execute("SELECT COUNT(*) FROM messages WHERE conversation_id = ?", (cid,)).fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM conversations WHERE id = ?", (cid,)).fetchone()[0] == 0
    assert b"Say hello" not in server.history.read_bytes()
