"""DPO on real SmolLM2 weights learns a preference a tiny run can learn: sign answers with "— Tern".

Chosen answers end with the sign-off, rejected ones are the same answers without it. After a few
LoRA DPO steps the tuned model must prefer the signed answer on *held-out* prompts more than the
base model does (log-prob margin, deterministic); the slow test checks greedy generations too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ownchat.train.dpo import DPOConfig, train_dpo

pytestmark = pytest.mark.model

SIGN = "\n\n— Tern"
TRAIN = [
    ("Name a primary colour.", "Red is a primary colour."), ("What is 2 + 2?", "2 + 2 = 4."),
    ("Which planet is closest to the Sun?", "Mercury is the closest planet to the Sun."),
    ("What do bees make?", "Bees make honey."), ("How many legs does a spider have?", "A spider has eight legs."),
    ("What is the opposite of hot?", "The opposite of hot is cold."), ("Name a yellow fruit.", "A banana is yellow."),
    ("What is frozen water called?", "Frozen water is called ice."),
    ("How many days are in a week?", "There are seven days in a week."), ("What animal says moo?", "A cow says moo."),
    ("What is the capital of Italy?", "The capital of Italy is Rome."),
    ("What gas do plants take in?", "Plants take in carbon dioxide."),
    ("What colour is the sky on a clear day?", "The sky is blue on a clear day."),
    ("How many hours are in a day?", "A day has 24 hours."), ("What is 10 minus 3?", "10 minus 3 is 7."),
    ("Name a musical instrument with keys.", "The piano has keys."),
]
HELD_OUT = [
    ("What is the largest ocean?", "The Pacific is the largest ocean."),
    ("How many wheels does a bicycle have?", "A bicycle has two wheels."),
    ("What colour is grass?", "Grass is green."), ("Name a big cat.", "The lion is a big cat."),
    ("What is 5 times 2?", "5 times 2 is 10."), ("Which season comes after winter?", "Spring comes after winter."),
]


def write_pairs(path: Path) -> Path:
    path.write_text("".join(json.dumps({"prompt": q, "chosen": a + SIGN, "rejected": a}) + "\n" for q, a in TRAIN))
    return path


def sign_margins(model, tok) -> list[float]:
    """log p(answer + sign-off) - log p(answer) per held-out prompt."""
    import torch

    from ownchat.train.pref_data import answer_logps, collate, render

    rows = []
    for q, a in HELD_OUT:
        msgs = [{"role": "user", "content": q}]
        rows += [render(tok, None, msgs, a + SIGN, 128), render(tok, None, msgs, a, 128)]
    with torch.no_grad():
        lp = answer_logps(model, collate(rows, tok.pad_token_id)).tolist()
    return [lp[i] - lp[i + 1] for i in range(0, len(lp), 2)]


@pytest.fixture(scope="module")
def tern_run(tmp_path_factory, smollm2_hf: Path) -> Path:
    tmp = tmp_path_factory.mktemp("dpo")
    cfg = DPOConfig(model=str(smollm2_hf), data=write_pairs(tmp / "pairs.jsonl"), out=tmp / "run",
                    max_steps=10, batch_size=4, seq_len=96, lr=1e-3, beta=0.1, lora_r=8, save_every=5, seed=0)
    res = train_dpo(cfg, log=lambda m: None)
    assert res.steps == 10
    return Path(res.out)


def test_dpo_moves_held_out_preference_towards_the_sign_off(tern_run: Path, smollm2_hf: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smollm2_hf)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(smollm2_hf), tern_run / "adapter").eval()
    with model.disable_adapter():
        before = sign_margins(model, tok)
    after = sign_margins(model, tok)
    gains = [a - b for a, b in zip(after, before, strict=True)]
    print(f"\nheld-out sign-off margin (nats) before {[round(b, 2) for b in before]} "
          f"after {[round(a, 2) for a in after]}")
    assert all(g > 0 for g in gains), (before, after)
    assert sum(gains) / len(gains) > 2.0, (before, after)  # nats: e^2 ≈ 7x more likely to sign
    hist = [json.loads(line) for line in (tern_run / "metrics.jsonl").read_text().splitlines()]
    assert hist[-1]["accuracy"] == 1.0 and hist[-1]["margin"] > hist[0]["margin"]


def test_dpo_run_dir_resolves_to_base_plus_adapter(tern_run: Path) -> None:
    from ownchat.models.resolve import resolve

    ref = resolve(str(tern_run))
    assert ref.kind == "hf" and ref.adapter == tern_run / "adapter"
    assert (tern_run / "dpo_curves.png").exists()


@pytest.mark.slow
def test_dpo_greedy_generations_sign_off_more_often(tern_run: Path, smollm2_hf: Path) -> None:
    from ownchat.engines import ChatRequest, SamplingParams, load_engine

    def signed(model: str) -> int:
        eng = load_engine(model, "hf", log=lambda m: None)
        reqs = [ChatRequest.chat([{"role": "user", "content": q}], SamplingParams(max_tokens=48)) for q, _ in HELD_OUT]
        return sum("Tern" in c.text for _, c in eng.generate_many(reqs))

    tuned, base = signed(str(tern_run)), signed(str(smollm2_hf))
    print(f"\ngreedy answers with the sign-off: base {base}/{len(HELD_OUT)}, DPO {tuned}/{len(HELD_OUT)}")
    assert tuned > base
