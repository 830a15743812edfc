"""`generate_file` and `ownchat generate`: record format, resume, bad input, a teacher that goes away."""

from __future__ import annotations

import json
import socket

import pytest
from fake_openai import FakeOpenAI
from test_cache import Echo
from typer.testing import CliRunner

from ownchat.cli.main import app
from ownchat.data.jsonl import read_jsonl
from ownchat.engines.base import EngineError, SamplingParams
from ownchat.engines.cache import CachedEngine, ResponseCache
from ownchat.errors import DataError
from ownchat.generate import GenerateConfig, generate_file, load_prompts

runner = CliRunner()


def write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture
def prompts(tmp_path):
    return write(tmp_path / "in.jsonl", [
        {"messages": [{"role": "user", "content": "one"}]},
        {"prompt": "two", "id": "p2"},
        {"instruction": "three", "input": "", "output": "reference"},
        {"conversations": [{"from": "human", "value": "four"}, {"from": "gpt", "value": "ref"}]},
    ])


def test_records_keep_input_and_gain_output(prompts, tmp_path):
    out = tmp_path / "out.jsonl"
    res = generate_file(Echo(), prompts, out, GenerateConfig(system="Be brief."), log=lambda m: None)
    assert (res.total, res.written, res.skipped, res.errors) == (4, 4, 0, 0)
    recs = sorted(read_jsonl(out), key=lambda r: r["input_line"])
    assert [r["output"] for r in recs] == ["echo one #0", "echo two #0", "echo three #0", "echo four #0"]
    assert recs[1]["id"] == "p2" and recs[0]["usage"] == {"prompt_tokens": 3, "completion_tokens": 2}
    assert recs[0]["finish_reason"] == "stop" and recs[0]["provenance"]["stage"] == "generate"
    assert res.usage["completion_tokens"] == 8 and res.hosts == []


def test_system_prompt_and_reference_answers(prompts):
    items = load_prompts(prompts, GenerateConfig(system="S"))
    assert items[2].request.messages == ({"role": "system", "content": "S"}, {"role": "user", "content": "three"})
    assert items[3].request.messages[-1] == {"role": "user", "content": "four"}  # reference answer dropped
    raw = load_prompts(prompts, GenerateConfig(completion=True))
    assert raw[1].request.prompt == "two" and raw[0].request.messages is not None


def test_resume_skips_what_is_already_written(prompts, tmp_path):
    out = tmp_path / "out.jsonl"
    generate_file(Echo(), prompts, out, log=lambda m: None)
    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines[:2]) + "\n" + lines[2][:15])  # two records and a line cut by kill -9
    eng = Echo()
    res = generate_file(eng, prompts, out, log=lambda m: None)
    assert res.skipped == 2 and res.written == 2 and len(eng.calls) == 2
    recs = list(read_jsonl(out))
    assert len(recs) == 4 and len({r["input_line"] for r in recs}) == 4


def test_second_identical_run_makes_zero_engine_calls(prompts, tmp_path, cache_db):
    generate_file(CachedEngine(Echo(), ResponseCache(cache_db)), prompts, tmp_path / "a.jsonl", log=lambda m: None)
    eng = CachedEngine(Echo(), ResponseCache(cache_db))
    res = generate_file(eng, prompts, tmp_path / "b.jsonl", log=lambda m: None)
    assert eng.calls == 0 and res.usage["cached"] == 4 and res.written == 4


@pytest.mark.parametrize("line,problem", [
    ('{"messages": [{"role": "user"', "invalid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"text": "no prompt here"}', "unrecognised record"),
    ('{"messages": [{"role": "robot", "content": "x"}]}', "unknown role"),
    ('{"messages": [{"role": "assistant", "content": "x"}]}', "no user message"),
])
def test_bad_lines_name_file_and_line(tmp_path, line, problem):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "fine"}\n\n' + line + "\n")
    with pytest.raises(DataError, match=rf"bad.jsonl:3: .*{problem}"):
        load_prompts(bad, GenerateConfig())


def test_cli_malformed_input_exits_2_with_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"prompt": \n')
    res = runner.invoke(app, ["generate", "smollm2-135m-instruct", "--prompts", str(bad), "--out",
                              str(tmp_path / "o.jsonl")])
    assert res.exit_code == 2 and "bad.jsonl:2" in res.output and "invalid JSON" in res.output


def test_stops_after_consecutive_failures_keeping_written_records(prompts, tmp_path):
    out = tmp_path / "out.jsonl"
    eng = Echo(fail_on="three")
    eng.fail_on = None
    generate_file(eng, prompts, out, GenerateConfig(concurrency=1), log=lambda m: None)  # all 4 written
    more = write(tmp_path / "more.jsonl", [{"prompt": "x"}] * 6 + [{"prompt": "fine"}])
    with pytest.raises(EngineError, match="3 failed requests in a row.*resume"):
        generate_file(Echo(fail_on="x"), more, out, GenerateConfig(concurrency=1, max_consecutive_errors=3),
                      log=lambda m: None)
    assert len(list(read_jsonl(out))) == 4


def test_cli_generate_against_http_teacher_then_teacher_gone(tmp_path, cache_db, monkeypatch):
    monkeypatch.setattr("ownchat.engines.cache.default_cache_db", lambda: cache_db)
    inp = write(tmp_path / "in.jsonl", [{"prompt": f"q{i}"} for i in range(5)])
    out = tmp_path / "out.jsonl"
    with FakeOpenAI(["500", "429"]) as srv:
        res = runner.invoke(app, ["generate", "openai:teacher", "--base-url", srv.url, "--api-key", "k",
                                  "--prompts", str(inp), "--out", str(out), "--max-tokens", "8", "--concurrency", "2"])
    assert res.exit_code == 0, res.output
    recs = list(read_jsonl(out))
    assert len(recs) == 5 and recs[0]["output"] == "Paris is the capital."
    assert recs[0]["provenance"]["engine"] == "openai"

    more = write(tmp_path / "more.jsonl", [{"prompt": f"q{i}"} for i in range(14)])  # 9 not done yet
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    s.close()
    res = runner.invoke(app, ["generate", "openai:teacher", "--base-url", dead, "--prompts", str(more),
                              "--out", str(out), "--max-tokens", "8", "--retries", "1", "--no-cache",
                              "--concurrency", "1"])
    assert res.exit_code == 2
    said = " ".join(res.output.split())  # rich wraps long lines
    assert "connection failed" in said and "run the same command again to resume" in said
    assert len(list(read_jsonl(out))) == 5  # nothing lost


def test_sampling_params_reach_the_engine(prompts, tmp_path):
    eng = Echo()
    params = SamplingParams(temperature=0.3, max_tokens=9, seed=4)
    generate_file(eng, prompts, tmp_path / "o.jsonl", GenerateConfig(params=params), log=lambda m: None)
    assert all(r.params == params for r in eng.calls)


def test_cli_chat_streams_from_http_teacher(tmp_path):
    saved = tmp_path / "chat.jsonl"
    with FakeOpenAI(["500", "ok", "stream-broken"]) as srv:
        res = runner.invoke(app, ["chat", "openai:teacher", "--base-url", srv.url, "--api-key", "k"],
                            input=f"hello\nhello again\n/save {saved}\n")  # ends with EOF, like Ctrl-D
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())
    assert "bot> Paris is the capital." in said  # first turn: retried after the 500, then streamed
    assert "stream broke after 2 chunks" in said and "message dropped" in said  # second turn failed
    [conv] = list(read_jsonl(saved))
    assert [m["content"] for m in conv["messages"]] == ["hello", "Paris is the capital."]
