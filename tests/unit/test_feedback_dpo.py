"""DPO / reward-model mechanics on a tiny random Llama (real tokenizer, no real weights): fast, exact."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from ownchat.errors import DataError
from ownchat.train.dpo import DPOConfig, dpo_loss, train_dpo
from ownchat.train.pref_data import answer_logps, collate, load_pairs, render
from ownchat.train.rm import RewardModel, RMConfig, train_rm


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, smollm2_hf: Path) -> Path:
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("tiny")
    tok = AutoTokenizer.from_pretrained(smollm2_hf)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    for extra in ("chat_template.jinja",):
        if (smollm2_hf / extra).exists():
            shutil.copy(smollm2_hf / extra, out / extra)
    return out


@pytest.fixture
def prefs(tmp_path: Path) -> Path:
    rows = [{"prompt": f"Question {i}?", "chosen": f"Answer {i}. — Tern", "rejected": f"Answer {i}."} for i in range(6)]
    rows.append({"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "Hello!"}],
                 "rejected": [{"role": "assistant", "content": "Go away."}]})
    p = tmp_path / "prefs.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


def test_dpo_loss_values() -> None:
    z = torch.zeros(3)
    loss, rc, rr = dpo_loss(z, z, z, z, beta=0.1)
    assert torch.allclose(loss, torch.full((3,), math.log(2)))
    pc, pr = torch.tensor([-1.0]), torch.tensor([-3.0])
    ref_c, ref_r = torch.tensor([-2.0]), torch.tensor([-2.0])
    loss, rc, rr = dpo_loss(pc, pr, ref_c, ref_r, beta=0.5)
    assert rc.item() == pytest.approx(0.5) and rr.item() == pytest.approx(-0.5)
    assert loss.item() == pytest.approx(-math.log(1 / (1 + math.exp(-1.0))))
    assert dpo_loss(pc, pr, ref_c, ref_r, 0.5, "robust", 0.0)[0].item() == pytest.approx(loss.item())
    assert dpo_loss(pc, pr, ref_c, ref_r, 0.5, "ipo")[0].item() == pytest.approx((2 - 1) ** 2)
    assert dpo_loss(pc, pr, ref_c, ref_r, 0.5, "hinge")[0].item() == pytest.approx(0.0)
    with pytest.raises(ValueError):
        dpo_loss(pc, pr, ref_c, ref_r, 0.5, "nope")


def test_load_pairs_formats_and_errors(prefs: Path, tmp_path: Path) -> None:
    pairs = load_pairs(prefs)
    assert len(pairs) == 7 and pairs[-1].chosen == "Hello!" and pairs[0].prompt[0]["role"] == "user"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "q", "chosen": "a", "rejected": "b"}) + "\n"
                   + json.dumps({"prompt": "q", "chosen": "a"}) + "\n")
    with pytest.raises(DataError) as e:
        load_pairs(bad)
    assert e.value.line == 2 and "rejected" in e.value.problem


def test_answer_logps_match_unpadded_full_logits(tiny_model: Path) -> None:
    """Left padding + position ids + logits for the answer span only == the plain computation."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    rows = [render(tok, None, [{"role": "user", "content": q}], a, 128)
            for q, a in [("Short?", "Yes."), ("A much longer question about many things?", "A longer answer here.")]]
    got = answer_logps(model, {k: v for k, v in collate(rows, tok.pad_token_id).items()})
    for (ids, n), value in zip(rows, got, strict=True):
        x = torch.tensor([ids])
        with torch.no_grad():
            logp = model(input_ids=x).logits[0, :-1].log_softmax(-1)
        want = logp[torch.arange(len(ids) - 1), x[0, 1:]][-n:].sum()
        assert value.item() == pytest.approx(want.item(), abs=1e-4)
    assert tok.decode(rows[0][0][-rows[0][1]:]).startswith("Yes.")


def test_render_truncates_prompt_start_not_answer(tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    ids, n = render(tok, None, [{"role": "user", "content": "word " * 200}], "The end.", 64)
    assert len(ids) == 64 and tok.decode(ids[-n:]).startswith("The end.")


def test_dpo_trains_resumes_exactly_and_writes_a_run(tiny_model: Path, prefs: Path, tmp_path: Path) -> None:
    def cfg(out: Path) -> DPOConfig:
        return DPOConfig(model=str(tiny_model), data=prefs, out=out, max_steps=4, batch_size=2, seq_len=64,
                         lr=1e-2, save_every=2, beta=0.5)

    straight = train_dpo(cfg(tmp_path / "a"), log=lambda m: None)
    hist_a = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert len(hist_a) == 4 and straight.steps == 4

    def crash(rec, total):  # simulate kill -9 right after step 3 (checkpoint at step 2)
        if rec["step"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_dpo(cfg(tmp_path / "b"), log=lambda m: None, on_step=crash)
    resumed = train_dpo(cfg(tmp_path / "b"), log=lambda m: None)
    hist_b = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert resumed.resumed_from == 2
    assert [h["loss"] for h in hist_b] == pytest.approx([h["loss"] for h in hist_a], abs=1e-5)

    run = json.loads((tmp_path / "a" / "ownchat_run.json").read_text())
    assert run["stage"] == "dpo" and run["adapter"] == "adapter" and run["dpo"]["beta"] == 0.5
    assert (tmp_path / "a" / "adapter" / "adapter_config.json").exists()
    assert (tmp_path / "a" / "dpo_curves.png").stat().st_size > 1000
    assert hist_a[-1]["margin"] > hist_a[0]["margin"]  # a large lr moves the margin within 4 steps


def test_dpo_continues_an_sft_adapter_with_it_as_reference(tiny_model: Path, prefs: Path, tmp_path: Path) -> None:
    first = train_dpo(DPOConfig(model=str(tiny_model), data=prefs, out=tmp_path / "sft", max_steps=1,
                                batch_size=2, seq_len=64, lr=1e-2), log=lambda m: None)
    res = train_dpo(DPOConfig(model=str(tiny_model), adapter=Path(first.out), data=prefs, out=tmp_path / "dpo",
                              max_steps=1, batch_size=2, seq_len=64, lr=1e-2), log=lambda m: None)
    # at step 1 the policy equals its reference (the SFT adapter), so rewards start at exactly 0
    first_step = json.loads((tmp_path / "dpo" / "metrics.jsonl").read_text().splitlines()[0])
    assert first_step["reward_chosen"] == pytest.approx(0, abs=1e-5)
    assert first_step["loss"] == pytest.approx(math.log(2), abs=1e-4)
    assert json.loads((Path(res.out) / "ownchat_run.json").read_text())["parent_adapter"].endswith("adapter")


def test_reward_model_trains_and_scores(tiny_model: Path, prefs: Path, tmp_path: Path) -> None:
    res = train_rm(RMConfig(model=str(tiny_model), data=prefs, out=tmp_path / "rm", max_steps=6, batch_size=4,
                            seq_len=64, lr=5e-3), log=lambda m: None)
    assert json.loads((tmp_path / "rm" / "ownchat_run.json").read_text())["task"] == "reward"
    rm = RewardModel(res.out, log=lambda m: None)
    prompt = [{"role": "user", "content": "Question 1?"}]
    a, b = rm.score(prompt, ["Answer 1. — Tern", "Answer 1."])
    assert a > b  # the trained preference, on a pair it has seen
    assert rm.score(prompt, ["Answer 1. — Tern"]) == pytest.approx([a], abs=1e-4)  # batch-invariant


def test_cli_train_dpo_and_rm(tiny_model: Path, prefs: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ownchat.cli.main import app

    runner = CliRunner()
    common = ["--model", str(tiny_model), "--data", str(prefs), "--max-steps", "1", "--batch-size", "2",
              "--seq-len", "64"]
    res = runner.invoke(app, ["train", "dpo", *common, "--out", str(tmp_path / "d"), "--beta", "0.2",
                              "--loss", "ipo"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "d" / "ownchat_run.json").read_text())["dpo"]["loss_type"] == "ipo"
    res = runner.invoke(app, ["train", "rm", *common, "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "q", "chosen": "same", "rejected": "same"}\n')
    res = runner.invoke(app, ["train", "dpo", "--model", str(tiny_model), "--data", str(bad), "--out",
                              str(tmp_path / "x")])
    assert res.exit_code == 2 and "identical" in res.output
    res = runner.invoke(app, ["train", "dpo", *common, "--out", str(tmp_path / "y"), "--loss", "kto"])
    assert res.exit_code == 2 and "--loss" in res.output
