"""Careless paths on the command line: a directory where a file belongs, an empty input file.

Each gets one line naming the path and exit status 2, never a traceback; nothing existing is
overwritten and no temp file is left behind. None of these load a model: the checks come first.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ownchat.cli.main import app

MODEL = "smollm2-135m-instruct"


def run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_one_line_error(res, path, words: str) -> None:
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    assert "Traceback" not in res.output and str(path) in res.output, res.output
    assert words in res.output, res.output


@pytest.fixture
def good(tmp_path):
    f = tmp_path / "good.jsonl"
    f.write_text(json.dumps({"instruction": "Say hi.", "input": "", "output": "Hi!"}) + "\n")
    return f


@pytest.mark.parametrize("argv", [
    ["data", "stats", "{d}"],
    ["data", "convert", "{d}", "--to", "sharegpt", "--out", "{tmp}/o.jsonl"],
    ["data", "dedup", "{d}", "--out", "{tmp}/o.jsonl"],
    ["generate", MODEL, "--prompts", "{d}", "--out", "{tmp}/o.jsonl"],
    ["synth", "answer", "--input", "{d}", "--out", "{tmp}/o.jsonl"],
    ["train", "sft", "--model", MODEL, "-d", "{d}", "--out", "{tmp}/run"],
    ["run", "{d}"],
])
def test_directory_as_input_file(tmp_path, argv):
    d = tmp_path / "folder"
    d.mkdir()
    res = run(*(a.format(d=d, tmp=tmp_path) for a in argv))
    assert_one_line_error(res, d, "directory")


@pytest.mark.parametrize("argv", [
    ["data", "convert", "{good}", "--to", "sharegpt", "--out", "{d}"],
    ["data", "dedup", "{good}", "--out", "{d}"],
    ["generate", MODEL, "--prompts", "{good}", "--out", "{d}"],
    ["synth", "answer", "--input", "{good}", "--out", "{d}"],
])
def test_directory_as_output_file(tmp_path, good, argv):
    d = tmp_path / "outdir"
    d.mkdir()
    res = run(*(a.format(d=d, good=good) for a in argv))
    assert_one_line_error(res, d, "directory")
    assert list(d.iterdir()) == [] and not (tmp_path / "outdir.tmp").exists()


@pytest.mark.parametrize("argv", [
    ["data", "convert", "{empty}", "--to", "sharegpt", "--out", "{out}"],
    ["data", "dedup", "{empty}", "--out", "{out}"],
    ["generate", MODEL, "--prompts", "{empty}", "--out", "{out}"],
    ["synth", "answer", "--input", "{empty}", "--out", "{out}"],
])
@pytest.mark.parametrize("content", ["", "\n\n"])
def test_empty_input_fails_and_keeps_existing_output(tmp_path, argv, content):
    empty, out = tmp_path / "empty.jsonl", tmp_path / "out.jsonl"
    empty.write_text(content)
    out.write_text('{"kept": "from an earlier run"}\n')
    res = run(*(a.format(empty=empty, out=out) for a in argv))
    assert_one_line_error(res, empty, "empty")
    assert out.read_text() == '{"kept": "from an earlier run"}\n'
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_convert_still_writes_a_good_file(tmp_path, good):
    out = tmp_path / "o.jsonl"
    res = run("data", "convert", good, "--to", "sharegpt", "--out", out)
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["conversations"][0]["value"] == "Say hi."
