"""`ownchat quickstart --tiny` end to end with the real CLI and real packs, then a no-op re-run.

The tiny quickstart is the real pipeline at toy sizes: the Qwen pack writes answers, SmolLM2 gets a
few LoRA steps, is judged against its base on the bench, exported to GGUF; the report, ledgers and
run.json are written; the serve command is printed. Running it again must skip every stage.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def _ownchat(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "160", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([sys.executable, "-m", "ownchat.cli.main", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.model
def test_quickstart_tiny_end_to_end_then_nothing_to_do(tmp_path, smollm2_gguf, qwen_gguf):
    out = tmp_path / "qs"
    t0 = time.time()
    res = _ownchat("quickstart", "--tiny", "--out", str(out))
    first = time.time() - t0
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    text = res.stdout + res.stderr
    assert "ownchat serve" in text and "report:" in text

    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "done" and info["packages"]["ownchat"]
    names = [s["name"] for s in info["stages"]]
    assert names[0] == "synth" and {"sft:smollm2", "ifeval:smollm2", "teacher-nll:smollm2"} <= set(names)
    assert all(s["status"] == "done" and s["seconds"] is not None for s in info["stages"])

    by_name = {s["name"]: s["summary"] for s in info["stages"]}
    assert by_name["sft:smollm2"]["steps"] == 4 and by_name["sft:smollm2"]["final_loss"] > 0
    # the headline: measured before -> after, paired, with a CI (no judge in the tiny run)
    assert "95% CI" in by_name["ifeval:smollm2"]["headline"]["IFEval average, base → tuned"]
    assert "95% CI" in by_name["teacher-nll:smollm2"]["headline"]["teacher NLL, base → tuned"]
    assert (out / "stages/data/heldout.jsonl").read_text().count("\n") == 4
    gguf = Path(out / "stages/export-smollm2/export/model.gguf")
    assert gguf.exists() and gguf.stat().st_size > 50e6

    ledger = json.loads((out / "ledger.json").read_text())
    assert ledger["privacy"]["entries"] == []  # local packs only: nothing was sent anywhere
    assert ledger["licence"]["students"]["smollm2"]["verdict"] == "cleared"
    train = [json.loads(x) for x in (out / "stages/data/train.jsonl").read_text().splitlines()]
    assert train and all(r["provenance"]["terms"]["key"] == "apache-2.0" for r in train)

    page = (out / "report.html").read_text()
    assert "data:image/png;base64," in page and "Licence ledger" in page and "Privacy ledger" in page
    assert "TOO SMALL TO SHOW A GAIN" in page and "Results" in page

    t1 = time.time()
    again = _ownchat("quickstart", "--tiny", "--out", str(out), timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    info2 = json.loads((out / "run.json").read_text())
    assert all(s["skipped"] for s in info2["stages"]) and info2["attempt"] == 2
    assert time.time() - t1 < min(60, first / 3)


@pytest.mark.model
@pytest.mark.slow  # the tiny quickstart above already covers these stages in make test
def test_small_real_run_trains_judges_and_resumes_nothing(tmp_path, smollm2_gguf, qwen_gguf):
    """User data (no teacher synth) -> 2 LoRA steps -> judged against the base by the Qwen pack."""
    recipe = tmp_path / "small.yaml"
    recipe.write_text(f"""\
name: small
teacher: {{model: qwen2.5-coder-1.5b-instruct, concurrency: 2}}
students: [{{name: smol, base: smollm2-135m-instruct}}]
data: [{{path: {ROOT / 'tests/integration/data/tiny_chat.jsonl'}}}]
sft: {{max_steps: 2, batch_size: 4, seq_len: 128}}
judge: {{n: 2, turns: 1, lang: en, compare: [base], max_tokens: 48}}
export: {{to: none}}
""")
    out = tmp_path / "run"
    res = _ownchat("run", str(recipe), "--out", str(out))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    info = json.loads((out / "run.json").read_text())
    assert [s["name"] for s in info["stages"]] == ["data", "sft:smol", "answers:smol-base", "judge:smol"]
    comp = info["stages"][-1]["summary"]["comparisons"][0]
    assert comp["n"] == 2 and comp["b"] == "smol-base"
    ledger = json.loads((out / "ledger.json").read_text())
    smol = ledger["licence"]["students"]["smol"]
    # the data file declares Apache-2.0 in its sidecar: every binding item is permissive
    assert smol["verdict"] == "cleared"
    assert any(i["source"] == "tiny_chat.jsonl.license" for i in smol["items"])
    assert ledger["privacy"]["entries"] == []
    assert "ownchat serve" in res.stdout + res.stderr
