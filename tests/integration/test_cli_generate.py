"""`ownchat generate` and `ownchat chat` end to end on the SmolLM2 pack."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ownchat.cli.main import app
from ownchat.data.jsonl import read_jsonl
from ownchat.engines import load_engine
from ownchat.generate import GenerateConfig, generate_file

pytestmark = pytest.mark.model
runner = CliRunner()
SYSTEM = "You are a helpful assistant."  # see test_engines: the Q4_1 pack needs a plain system prompt


@pytest.fixture
def prompts(tmp_path):
    path = tmp_path / "prompts.jsonl"
    rows = [{"id": "fr", "messages": [{"role": "user", "content": "What is the capital of France?"}]},
            {"prompt": "What is 2 + 2?"},
            {"instruction": "Name a primary colour.", "input": "", "output": "red"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def private_cache(monkeypatch, cache_db):
    monkeypatch.setattr("ownchat.engines.cache.default_cache_db", lambda: cache_db)
    return cache_db


def test_generate_writes_resumes_and_replays_from_cache(prompts, tmp_path, smollm2_gguf, private_cache):
    out = tmp_path / "out.jsonl"
    args = ["generate", "smollm2-135m-instruct", "--prompts", str(prompts), "--system", SYSTEM,
            "--max-tokens", "24", "--concurrency", "3"]
    res = runner.invoke(app, [*args, "--out", str(out)])
    assert res.exit_code == 0, res.output
    recs = {r["input_line"]: r for r in read_jsonl(out)}
    assert sorted(recs) == [1, 2, 3]
    assert "Paris" in recs[1]["output"] and recs[1]["id"] == "fr"
    assert recs[3]["output"] and recs[3]["instruction"] == "Name a primary colour."
    assert all(r["usage"]["completion_tokens"] > 0 and r["finish_reason"] in ("stop", "length") for r in recs.values())
    assert recs[1]["provenance"]["engine"] == "llamacpp" and recs[1]["provenance"]["params"]["max_tokens"] == 24

    again = runner.invoke(app, [*args, "--out", str(out)])  # same output: nothing left to do
    assert again.exit_code == 0 and "3 already there" in " ".join(again.output.split())
    assert len(list(read_jsonl(out))) == 3

    other = tmp_path / "other.jsonl"
    cached = runner.invoke(app, [*args, "--out", str(other)])  # new output, same requests: all from cache
    assert cached.exit_code == 0 and "3 from cache" in " ".join(cached.output.split())
    assert [r["output"] for r in read_jsonl(other)] != []
    assert {r["output"] for r in read_jsonl(other)} == {r["output"] for r in recs.values()}


def test_second_identical_run_makes_zero_engine_calls(prompts, tmp_path, smollm2_gguf, cache_db):
    config = GenerateConfig(system=SYSTEM)
    eng = load_engine("smollm2-135m-instruct", cache=cache_db, concurrency=3, log=lambda m: None)
    generate_file(eng, prompts, tmp_path / "a.jsonl", config, log=lambda m: None)
    assert eng.calls == 3
    eng.calls = 0
    res = generate_file(eng, prompts, tmp_path / "b.jsonl", config, log=lambda m: None)
    eng.close()
    assert eng.calls == 0 and res.usage["cached"] == 3 and res.written == 3


def test_generate_on_transformers(prompts, tmp_path, smollm2_hf):
    out = tmp_path / "hf.jsonl"
    res = runner.invoke(app, ["generate", "smollm2-135m-instruct", "--engine", "hf", "--prompts", str(prompts),
                              "--out", str(out), "--max-tokens", "16", "--no-cache"])
    assert res.exit_code == 0, res.output
    recs = {r["input_line"]: r for r in read_jsonl(out)}
    assert "Paris" in recs[1]["output"] and recs[1]["provenance"]["engine"] == "hf"


def test_chat_streams_saves_and_resets(tmp_path, smollm2_gguf):
    saved = tmp_path / "conv.jsonl"
    script = f"What is the capital of France?\n/save {saved}\n/reset\n/save {saved}\n/nope\n/exit\n"
    res = runner.invoke(app, ["chat", "smollm2-135m-instruct", "--system", SYSTEM, "--temperature", "0",
                              "--max-tokens", "24"], input=script)
    assert res.exit_code == 0, res.output
    assert "bot> " in res.output and "Paris" in res.output and "unknown command /nope" in res.output
    first, after_reset = list(read_jsonl(saved))
    assert [m["role"] for m in first["messages"]] == ["system", "user", "assistant"]
    assert "Paris" in first["messages"][2]["content"]
    assert after_reset["messages"] == [{"role": "system", "content": SYSTEM}]
