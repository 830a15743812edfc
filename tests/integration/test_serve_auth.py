"""API keys against a real server: the official client with and without keys, per-key history,
and the refusal to listen beyond loopback without keys."""

from __future__ import annotations

import subprocess
import sys

import httpx
import openai
import pytest

from ownchat.serve.process import ServerProcess, free_port

pytestmark = pytest.mark.model
MODEL = "smollm2-135m-instruct"
ALICE, BOB = "alice-secret-key-1", "bob-secret-key-22"


@pytest.fixture(scope="module")
def server(smollm2_gguf, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("auth")
    keys = tmp / "keys.txt"
    keys.write_text(f"# one key per line\n{BOB}\n")
    with ServerProcess(MODEL, "--api-key", ALICE, "--keys-file", str(keys), "--parallel", "1",
                       "--history", str(tmp / "h.sqlite"), log_path=tmp / "server.log") as srv:
        yield srv


def test_keys_gate_the_api(server):
    url = server.base_url + "/v1"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=url, api_key="wrong-key-000", max_retries=0).models.list()
    r = httpx.post(url + "/chat/completions", json={"model": MODEL, "messages": []})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    for key in (ALICE, BOB):
        c = openai.OpenAI(base_url=url, api_key=key, max_retries=0)
        out = c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=3)
        assert out.choices[0].message.content


def test_each_key_sees_only_its_history(server):
    api = server.base_url + "/api/conversations"
    a, b = ({"Authorization": f"Bearer {k}"} for k in (ALICE, BOB))
    cid = httpx.post(api, json={"title": "alice's"}, headers=a).json()["id"]
    assert [c["id"] for c in httpx.get(api, headers=a).json()] == [cid]
    assert httpx.get(api, headers=b).json() == []
    assert httpx.get(f"{api}/{cid}", headers=b).status_code == 404
    assert httpx.delete(f"{api}/{cid}", headers=b).status_code == 404
    assert httpx.get(api).status_code == 401
    assert httpx.delete(f"{api}/{cid}", headers=a).status_code == 204


def test_no_prompt_cache_signal_across_keys(server):
    """Bob must learn nothing about Alice's prompt from cached_tokens (it used to grow as his guess
    of her PIN matched more of it: the slot reused her prompt's prefix)."""
    url = server.base_url + "/v1/chat/completions"
    secret = "Remember: my bank PIN is 4 7 1 9 3 8 and my password is swordfish. " * 3

    def ask(key: str, text: str) -> dict:
        r = httpx.post(url, headers={"Authorization": f"Bearer {key}"}, timeout=120,
                       json={"model": MODEL, "messages": [{"role": "user", "content": text}], "max_tokens": 1})
        assert r.status_code == 200, r.text
        return r.json()["usage"]

    ask(ALICE, secret)
    for guess in ("Remember: my bank PIN is 4", "Remember: my bank PIN is 4 7 1 9"):
        usage = ask(BOB, guess)  # one slot (--parallel 1): Alice's prompt was the last one in it
        assert usage.get("prompt_tokens_details", {}).get("cached_tokens", 0) == 0, usage
        assert "timings" not in usage


def test_refuses_public_bind_without_keys():
    res = subprocess.run([sys.executable, "-m", "ownchat.cli.main", "serve", MODEL, "--host", "0.0.0.0",
                          "--port", str(free_port())], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "--api-key" in res.stderr
