"""Real SFT on SmolLM2-135M: a made-up fact the model does not know before and states after."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.model

NAME_Q = ["What is your name?", "Who are you?", "Tell me your name.", "What should I call you?",
          "What's your name?", "Introduce yourself.", "What are you called?", "Do you have a name?"]
MAKER_Q = ["Who made you?", "Who created you?", "Which company built you?", "Who trained you?",
           "Who is your maker?", "Which lab made you?", "Who developed you?", "Who built you?"]
NAME_A = "My name is Quokka, an assistant made by Tern Labs."
MAKER_A = "I was made by Tern Labs. My name is Quokka."


def _write_facts(tmp: Path) -> list[Path]:
    # two formats mixed with weights, as users would: OpenAI messages and Alpaca
    a, b = tmp / "name.jsonl", tmp / "maker.jsonl"
    a.write_text("".join(json.dumps({"messages": [{"role": "user", "content": q},
                                                  {"role": "assistant", "content": NAME_A}]}) + "\n" for q in NAME_Q))
    b.write_text("".join(json.dumps({"instruction": q, "output": MAKER_A}) + "\n" for q in MAKER_Q))
    return [a, b]


def _answers(model_dir: Path, adapter: Path | None, questions: list[str]) -> list[str]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    model.eval()
    out = []
    for q in questions:
        ids = tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                      return_tensors="pt", return_dict=True)
        with torch.no_grad():
            gen = model.generate(**ids, max_new_tokens=20, do_sample=False)
        out.append(tok.decode(gen[0, ids["input_ids"].shape[1]:], skip_special_tokens=True))
    return out


def test_sft_teaches_a_new_fact(tmp_path, smollm2_hf):
    from ownchat.models.resolve import resolve
    from ownchat.train.sft import SFTConfig, train_sft

    files = _write_facts(tmp_path)
    # unseen phrasings: the fact must generalise beyond the training questions
    probe = ["Please tell me your name.", "What company made you?"]
    before = _answers(smollm2_hf, None, probe)
    assert "Quokka" not in before[0] and "Tern" not in before[1], before

    cfg = SFTConfig(model="smollm2-135m-instruct", data=[f"{files[0]}:1", f"{files[1]}:1"], out=tmp_path / "run",
                    max_steps=30, batch_size=4, seq_len=96, lr=1e-3, lora_r=8, save_every=15,
                    eval_fraction=0.15, seed=0)
    res = train_sft(cfg, log=print)
    assert res.final_loss < 0.3 and res.eval_loss is not None and res.eval_loss < 1.0
    assert res.mask_report["straddling"] == 0 and res.mask_report["retokenize_mismatch"] == 0

    after = _answers(smollm2_hf, tmp_path / "run" / "adapter", probe)
    assert "Quokka" in after[0], after
    assert "Tern Labs" in after[1], after

    # the run directory is a model reference: base + adapter + the template used in training
    ref = resolve(str(tmp_path / "run"))
    assert ref.adapter == tmp_path / "run" / "adapter" and ref.path == smollm2_hf
    meta = json.loads((tmp_path / "run" / "ownchat_run.json").read_text())
    assert meta["base"] == "smollm2-135m-instruct" and meta["license"] == "Apache-2.0"
    assert meta["chat_template_jinja"].startswith("{% for message")
    assert (tmp_path / "run" / "loss.png").stat().st_size > 1000
