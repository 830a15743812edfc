"""Export pieces that need no model: Ollama Modelfile translation and the model card."""

from __future__ import annotations

from pathlib import Path

import pytest

from ownchat.errors import UserError
from ownchat.export.card import model_card
from ownchat.export.ollama import default_system, template_family, write_modelfile
from ownchat.train.templates import CHATML, GEMMA, LLAMA3


@pytest.mark.parametrize("jinja,family,stop", [(CHATML, "chatml", "<|im_end|>"), (LLAMA3, "llama3", "<|eot_id|>"),
                                                (GEMMA, "gemma", "<end_of_turn>")])
def test_modelfile_per_family(tmp_path, jinja, family, stop):
    assert template_family(jinja) == family
    text = write_modelfile(tmp_path, "model.gguf", jinja).read_text()
    assert text.startswith("FROM ./model.gguf\n")
    assert f'PARAMETER stop "{stop}"' in text and 'TEMPLATE """' in text
    assert "SYSTEM" not in text  # these templates inject no default system prompt


def test_default_system_prompt_is_carried(smollm2_hf: Path):
    assert default_system((smollm2_hf / "chat_template.jinja").read_text()) == "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def test_unknown_template_is_refused():
    with pytest.raises(UserError, match="Go template"):
        template_family("{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}{% endfor %}")


def test_card_lists_base_data_terms_and_losses():
    meta = {"base": "smollm2-135m-instruct", "license": "Apache-2.0", "method": "lora", "stage": "sft",
            "data": [{"path": "synth.jsonl", "format": "openai", "records": 10, "weight": 1.0, "train": 9,
                      "eval": 1, "terms": {"openai": 10}, "teachers": ["gpt-4o"]}],
            "hyperparameters": {"out": "runs/x", "lr": 2e-4, "lora_r": 8, "seed": 0},
            "target_modules": ["q_proj", "v_proj"], "final_loss": 0.1234, "eval_loss": 0.5, "steps": 30,
            "chat_template_name": "model"}
    card = model_card(meta, fmt="gguf", files=["model.gguf"])
    for needle in ("smollm2-135m-instruct", "Apache-2.0", "synth.jsonl", "gpt-4o", "OpenAI Terms of Use",
                   "commercial: NOT allowed", "0.0002", "q_proj, v_proj", "0.1234", "0.5"):
        assert needle in card, needle
