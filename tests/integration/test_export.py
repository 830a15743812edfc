"""Export a tuned SmolLM2 to GGUF (f16) and check llama.cpp continues greedily as torch does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.model

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
PROMPTS = ["What is the capital of France?", "What is your name?", "Name three colours."]


@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory, smollm2_hf) -> Path:
    from ownchat.train.sft import SFTConfig, train_sft

    tmp = tmp_path_factory.mktemp("export")
    data = tmp / "facts.jsonl"
    data.write_text("".join(json.dumps({"messages": [SYSTEM, {"role": "user", "content": q},
                                                     {"role": "assistant", "content": "My name is Quokka."}]}) + "\n"
                            for q in ["What is your name?", "Who are you?", "Your name?", "Tell me your name."]))
    cfg = SFTConfig(model="smollm2-135m-instruct", data=[data], out=tmp / "run", max_steps=8, batch_size=4,
                    seq_len=96, lr=2e-3, eval_fraction=0.0, save_every=100)
    train_sft(cfg, log=print)
    return tmp / "run"


def _torch_greedy(base: Path, adapter: Path, n: int) -> list[str]:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), adapter)
    model.eval()
    outs = []
    for q in PROMPTS:
        enc = tok.apply_chat_template([SYSTEM, {"role": "user", "content": q}], add_generation_prompt=True,
                                      return_tensors="pt", return_dict=True)
        with torch.no_grad():
            gen = model.generate(**enc, max_new_tokens=n, do_sample=False)
        outs.append(tok.decode(gen[0, enc["input_ids"].shape[1]:], skip_special_tokens=True))
    return outs


def test_gguf_export_matches_torch(tuned_run, smollm2_hf):
    from ownchat.engines import ChatRequest, SamplingParams, load_engine
    from ownchat.export import export_run

    dest = export_run(tuned_run, "gguf")
    gguf = dest / "model.gguf"
    assert gguf.stat().st_size > 200_000_000  # f16 weights of a 135M model
    card = (dest / "README.md").read_text()
    assert "Apache-2.0" in card and "facts.jsonl" in card and "lora_r" in card

    # the first tokens must agree exactly (f16 vs fp32 may split near-ties later on)
    n = 4
    expected = _torch_greedy(smollm2_hf, tuned_run / "adapter", n)
    eng = load_engine(str(gguf), concurrency=1)
    try:
        got = [eng.generate(ChatRequest.chat([SYSTEM, {"role": "user", "content": q}],
                                             SamplingParams(temperature=0, max_tokens=2 * n))).text for q in PROMPTS]
    finally:
        eng.close()
    assert "Quokka" in got[1]  # the fine-tune is in the GGUF, not just the base
    for e, g in zip(expected, got, strict=True):
        assert g.strip().startswith(e.strip()), (expected, got)



def test_training_run_loads_on_llamacpp_with_its_adapter(tuned_run):
    """`--engine llamacpp` on a run dir: base GGUF + the adapter converted once, fine-tune included."""
    from ownchat.engines import ChatRequest, SamplingParams, load_engine

    ask = ChatRequest.chat([SYSTEM, {"role": "user", "content": "What is your name?"}],
                           SamplingParams(temperature=0, max_tokens=8))
    eng = load_engine(str(tuned_run), "llamacpp", concurrency=1)
    try:
        assert "Quokka" in eng.generate(ask).text
        assert "+lora:" in eng.model_id  # cache entries of the tuned model never mix with the base's
    finally:
        eng.close()
    converted = tuned_run / "adapter.gguf"
    first = converted.stat().st_mtime_ns
    base = load_engine("smollm2-135m-instruct", concurrency=1)
    try:
        assert "Quokka" not in base.generate(ask).text
    finally:
        base.close()
    load_engine(str(tuned_run), "llamacpp", concurrency=1).close()
    assert converted.stat().st_mtime_ns == first  # converted once, reused while the adapter is unchanged
