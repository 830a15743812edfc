"""The generic engine path for real: SmolLM2 on transformers (what a fine-tuned run serves with)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def client(smollm2_hf):
    from ownchat.engines import load_engine
    from ownchat.serve.server import build_settings

    eng = load_engine(str(smollm2_hf), "hf", concurrency=2, log=lambda *a: None)
    from ownchat.serve.app import create_app

    settings = build_settings(str(smollm2_hf), eng, history=False)
    with TestClient(create_app(eng, settings), base_url="http://127.0.0.1") as c:
        c.model = settings.model_name
        yield c


def test_hf_chat_stream_and_not(client):
    msgs = [{"role": "user", "content": "What is the capital of France?"}]
    r = client.post("/v1/chat/completions", json={"model": client.model, "messages": msgs, "max_tokens": 12,
                                                   "temperature": 0})
    assert r.status_code == 200, r.text
    whole = r.json()["choices"][0]["message"]["content"]
    assert "Paris" in whole
    r = client.post("/v1/chat/completions", json={"model": client.model, "messages": msgs, "max_tokens": 12,
                                                   "temperature": 0, "stream": True})
    deltas = [json.loads(x[6:]) for x in r.text.split("\n") if x.startswith("data: {")]
    streamed = "".join(c["choices"][0]["delta"].get("content") or "" for c in deltas if c["choices"])
    assert streamed.strip() == whole.strip()


def test_hf_prompt_over_context_is_400(client):
    r = client.post("/v1/completions", json={"model": client.model, "prompt": "word " * 9000, "max_tokens": 2})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "context_length_exceeded"
