"""The public Python API: light to import, one-call chat."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fake_openai import FakeOpenAI

import ownchat


def test_import_is_light():
    code = "import ownchat, sys; ownchat.ChatRequest; print(sorted(m for m in ('torch', 'transformers', 'xllamacpp', 'httpx') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_public_names():
    from ownchat.engines import load_engine
    from ownchat.engines.base import ChatRequest, SamplingParams

    assert ownchat.load_engine is load_engine and ownchat.ChatRequest is ChatRequest
    assert ownchat.SamplingParams is SamplingParams and callable(ownchat.resolve) and callable(ownchat.pull)
    with pytest.raises(AttributeError):
        ownchat.nope  # noqa: B018


def test_chat_convenience_reuses_the_engine():
    with FakeOpenAI() as srv:
        kw = {"base_url": srv.url, "api_key": "k"}
        assert ownchat.chat("openai:teacher", "What is the capital of France?", system="Be brief.", **kw) == \
            "Paris is the capital."
        ownchat.chat("openai:teacher", [{"role": "user", "content": "again"}], max_tokens=5, **kw)
        assert len(ownchat._engines) == 1
        ownchat.close_engines()
    first, second = srv.requests
    assert first["body"]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert second["body"]["max_tokens"] == 5 and len(second["body"]["messages"]) == 1
    assert ownchat._engines == {}


def test_vllm_is_an_engine_of_the_one_factory_and_says_what_it_needs():
    import importlib.util

    from ownchat.engines import ENGINE_NAMES, EngineError, load_engine

    assert "vllm" in ENGINE_NAMES
    if importlib.util.find_spec("vllm") is None:  # this CPU machine: a clear error, before any model loads
        with pytest.raises(EngineError, match="pip install vllm"):
            load_engine("smollm2-135m-instruct", "vllm", log=lambda m: None)
