"""The objective measures on a real model (the SmolLM2 pack): IFEval, teacher NLL, one-token verdicts.

Small sizes for `make test`; the numbers that matter are in docs/judge.md and come from longer runs.
"""

from __future__ import annotations

import json
import random

import pytest
from typer.testing import CliRunner

from ownchat.cli.main import app
from ownchat.engines.base import ChatRequest, SamplingParams

pytestmark = pytest.mark.model
MODEL = "smollm2-135m-instruct"


def test_ifeval_cli_runs_resumes_and_compares_engines(tmp_path):
    runner = CliRunner()
    a, b = tmp_path / "llamacpp", tmp_path / "hf"
    base = ["eval", "ifeval", "-m", MODEL, "--subset", "6", "--max-tokens", "48", "--no-cache"]
    res = runner.invoke(app, [*base, "--out", str(a)])
    assert res.exit_code == 0, res.output
    s = json.loads((a / "summary.json").read_text())
    assert s["n"] == 6 and s["instruction_strict"]["n"] >= 6
    assert 0 <= s["average"]["ci95"][0] <= s["average"]["value"] <= s["average"]["ci95"][1] <= 1
    assert "| instruction | n | strict | loose |" in (a / "report.md").read_text()
    # everything is on disk: the re-run loads no model and scores the same
    again = runner.invoke(app, [*base, "--out", str(a), "--json"])
    assert again.exit_code == 0 and json.loads(again.stdout)["average"] == s["average"]
    res = runner.invoke(app, [*base, "--engine", "hf", "--out", str(b)])
    assert res.exit_code == 0, res.output
    cmp = runner.invoke(app, ["eval", "compare", str(a), str(b), "--json"])
    assert cmp.exit_code == 0, cmp.output
    c = json.loads(cmp.stdout)
    assert c["n"] == 6 and c["prompt_strict"]["ci"][0] <= c["prompt_strict"]["gain"] <= c["prompt_strict"]["ci"][1]


def test_ifeval_cli_takes_a_chat_template(tmp_path):
    """`--chat-template` reaches the engine: a base model is measured in the format it is taught."""
    runner = CliRunner()
    base = ["eval", "ifeval", "-m", MODEL, "--subset", "2", "--max-tokens", "4", "--no-cache"]
    tokens = {}
    for name in ("chatml", "gemma"):
        res = runner.invoke(app, [*base, "--chat-template", name, "--out", str(tmp_path / name)])
        assert res.exit_code == 0, res.output
        assert json.loads((tmp_path / name / "config.json").read_text())["extra"]["chat_template"] == name
        rows = [json.loads(x) for x in (tmp_path / name / "responses.jsonl").read_text().splitlines()]
        tokens[name] = [r["prompt_tokens"] for r in rows]
    # SmolLM2's vocabulary has ChatML's markers as single tokens, gemma's as several
    assert all(g > c for g, c in zip(tokens["gemma"], tokens["chatml"], strict=True)), tokens


def test_teacher_nll_is_the_sft_loss_and_ranks_answers(tmp_path, smollm2_hf):
    import torch

    from ownchat.engines.hf import HFEngine
    from ownchat.judge.teacher_nll import _score, compare_nll, evaluate_nll
    from ownchat.train.render import render_conversation

    eng = HFEngine(smollm2_hf, batch_size=1, log=lambda m: None)
    q = "What is the capital of France?"
    own = eng.generate(ChatRequest.chat([{"role": "user", "content": q}], SamplingParams(max_tokens=24))).text
    words = own.split()
    random.Random(0).shuffle(words)
    scrambled = " ".join(words)
    convo = [{"role": "user", "content": q}, {"role": "assistant", "content": own}]
    # the same number as the training loss on those tokens (labels -100 off the mask)
    total, n = _score(eng, convo, 1024)
    ids, mask = render_conversation(eng.tokenizer, convo, eng._jinja)
    labels = torch.tensor([[t if m else -100 for t, m in zip(ids, mask, strict=True)]])
    with torch.inference_mode():
        loss = eng.model(input_ids=torch.tensor([ids]), labels=labels).loss
    assert n == sum(mask[1:]) and total / n == pytest.approx(float(loss), rel=1e-4)

    def write(path, answer):
        path.write_text(json.dumps({"id": "q1", "messages": [{"role": "user", "content": q},
                                                             {"role": "assistant", "content": answer}]}) + "\n")
        return path

    s_own = evaluate_nll("smollm2", write(tmp_path / "own.jsonl", own), tmp_path / "o", engine=eng)
    s_bad = evaluate_nll("smollm2", write(tmp_path / "bad.jsonl", scrambled), tmp_path / "b", engine=eng)
    assert s_own["nll_per_token"] < s_bad["nll_per_token"]  # its own greedy answer is likelier than a scramble
    c = compare_nll(tmp_path / "b", tmp_path / "o")
    assert c["n"] == 1 and c["gain"] < 0


def test_choice_logprobs_on_both_engines(smollm2_gguf, smollm2_hf):
    import torch

    from ownchat.engines.hf import HFEngine
    from ownchat.engines.llamacpp import LlamaCppEngine

    req = ChatRequest.chat([{"role": "user", "content": "Is 5 larger than 3? Answer with one letter: A for yes, "
                                                         "B for no."}])
    hf = HFEngine(smollm2_hf, batch_size=1, log=lambda m: None)
    lp = hf.choice_logprobs(req, ("A", "B"))
    # exact: the next-token log-softmax at the end of the prompt, summed over "A" and " A"
    with torch.inference_mode():
        logits = hf.model(input_ids=torch.tensor([hf.prompt_ids(req)])).logits[0, -1]
    ref = torch.log_softmax(logits, -1)
    ids = {tuple(hf.tokenizer.encode(s, add_special_tokens=False)) for s in ("A", " A")}
    assert lp.logprobs["A"] == pytest.approx(float(torch.logsumexp(ref[[i[0] for i in ids]], 0)), abs=1e-4)
    llama = LlamaCppEngine(smollm2_gguf, n_parallel=1)
    try:
        lq = llama.choice_logprobs(req, ("A", "B"))
    finally:
        llama.close()
    for res in (lp, lq):
        p = res.normalised()
        assert sum(p.values()) == pytest.approx(1.0) and all(v < 0 for v in res.logprobs.values())


def test_judge_validate_cli_with_probability_verdicts(tmp_path):
    res = CliRunner().invoke(app, ["judge", "validate", "--judge", MODEL, "--method", "prob", "--limit", "4",
                                   "--concurrency", "2"])
    assert res.exit_code == 0, res.output
    assert "known-answer pairs" in res.stdout and "not stored" in res.stdout
