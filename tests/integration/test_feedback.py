"""`ownchat feedback` for real: SmolLM2 (llama.cpp pack) as both student and teacher, 3 prompts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ownchat.cli.main import app
from ownchat.data.jsonl import read_jsonl

pytestmark = pytest.mark.model


def test_feedback_cli_finishes_counts_add_up_and_resumes_from_cache(tmp_path: Path, smollm2_gguf: Path,
                                                                     monkeypatch) -> None:
    monkeypatch.setenv("OWNCHAT_HOME", str(tmp_path / "home"))  # a private response cache
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("\n".join(json.dumps(r) for r in [
        {"prompt": "Name one primary colour."},
        {"prompt": "What is 3 + 4?", "reference": "7"},
        {"messages": [{"role": "user", "content": "Say hello in French."}]},
    ]) + "\n")
    out = tmp_path / "prefs.jsonl"
    args = ["feedback", "--student", str(smollm2_gguf), "--teacher", str(smollm2_gguf), "--prompts", str(prompts),
            "--out", str(out), "--k", "2", "--max-tokens", "40", "--retries", "1"]
    runner = CliRunner()
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    scores = list(read_jsonl(out.with_name("prefs.scores.jsonl")))
    assert len(scores) == 3 and all(len(s["candidates"]) == 2 for s in scores)
    assert all(c["sample_index"] in (0, 1) for s in scores for c in s["candidates"])
    pairs = list(read_jsonl(out)) if out.exists() else []
    scored = [c for s in scores for c in s["candidates"] if c["score"] is not None]
    # best-worst: a prompt yields a pair exactly when its two scored answers differ
    expected = sum(1 for s in scores
                   if len({c["score"] for c in s["candidates"] if c["score"] is not None}) == 2
                   and all(c["score"] is not None for c in s["candidates"]))
    assert len(pairs) == expected
    for p in pairs:
        assert p["score_chosen"] > p["score_rejected"] and p["chosen"] != p["rejected"]
        assert p["provenance"]["rubric"].startswith("feedback-rubric")
    assert f"{len(pairs)} pairs" in first.output
    assert all(1 <= c["score"] <= 10 for c in scored)

    before = out.read_text() if out.exists() else ""
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "3 prompts resumed" in again.output and f"{len(pairs)} pairs" in again.output
    assert (out.read_text() if out.exists() else "") == before
    assert len(list(read_jsonl(out.with_name("prefs.scores.jsonl")))) == 3
