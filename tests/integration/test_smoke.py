"""Known-answer smoke tests of the model packs on every engine.

The SmolLM2 pack's own Q4_1 file must fail on llama.cpp (the "capital of France" flip) and what
ownchat uses instead must pass, as must transformers on the dequantised weights. Qwen passes on
llama.cpp as shipped. Gemma and the Qwen transformers conversion (6 GB of fp32) are `make test-slow`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ownchat.engines.smoke import check_pack, llamacpp_file, run_smoke

pytestmark = pytest.mark.model


def _llama(path: Path, base_model: bool = False):
    from ownchat.engines.llamacpp import LlamaCppEngine

    eng = LlamaCppEngine(path, n_parallel=4, n_ctx_per_slot=512)
    try:
        return run_smoke(eng, base_model=base_model)
    finally:
        eng.close()


def _hf(name: str, base_model: bool = False):
    from ownchat.engines.hf import HFEngine

    eng = HFEngine.from_ref(name, batch_size=4, log=lambda m: None)
    try:
        return run_smoke(eng, base_model=base_model)
    finally:
        eng.close()


def test_smollm2_q4_1_fails_on_llamacpp_and_the_replacement_passes(smollm2_gguf):
    own = _llama(smollm2_gguf)
    assert not own.passed and not own.answers[0]["ok"]  # "What is the capital of France?"
    assert _hf("smollm2-135m-instruct").passed
    used = llamacpp_file("smollm2-135m-instruct", log=lambda m: None)
    assert used != smollm2_gguf and used.exists()
    assert _llama(used).passed
    rec = check_pack("smollm2-135m-instruct")
    assert rec["ok"] and rec["llamacpp_gguf"] == str(used) and not rec["llamacpp"]["passed"]


def test_load_engine_serves_the_pack_on_the_file_that_passed():
    from ownchat.engines import ChatRequest, SamplingParams, load_engine

    eng = load_engine("smollm2-135m-instruct", "llamacpp", concurrency=1, log=lambda m: None)
    try:
        text = eng.generate(ChatRequest.chat([{"role": "user", "content": "What is the capital of France?"}],
                                             SamplingParams(max_tokens=16))).text
    finally:
        eng.close()
    assert "Paris" in text


def test_qwen_passes_on_llamacpp_as_shipped(qwen_gguf):
    assert _llama(qwen_gguf).passed
    assert llamacpp_file("qwen2.5-coder-1.5b-instruct", log=lambda m: None) == qwen_gguf


@pytest.mark.slow
def test_gemma_base_and_qwen_transformers():
    from ownchat.models.store import installed, pull

    gemma = (installed("gemma-3-270m") or pull("gemma-3-270m")).path
    assert _llama(gemma, base_model=True).passed
    assert _hf("gemma-3-270m", base_model=True).passed
    assert _hf("qwen2.5-coder-1.5b-instruct").passed


def test_models_check_cli_compares_every_variant_with_fp32(tmp_path, smollm2_gguf):
    """`ownchat models check`: the same IFEval prompts on the pack's Q4_1 and the f16 ownchat uses
    (llama.cpp) and on fp32 transformers, with greedy agreement and the paired difference."""
    import json

    from typer.testing import CliRunner

    from ownchat.cli.main import app

    res = CliRunner().invoke(app, ["models", "check", "smollm2-135m-instruct", "--ifeval", "3", "--max-tokens", "16",
                                   "--out", str(tmp_path / "chk"), "--json"])
    assert res.exit_code == 0, res.output[-2000:]
    out = json.loads(res.stdout[res.stdout.index("{"):])
    rows = {r["variant"]: r for r in out["rows"]}
    assert set(rows) == {"transformers (fp32)", "llama.cpp SmolLM2-135M-Instruct.Q4_1.gguf",
                         "llama.cpp SmolLM2-135M-Instruct.Q4_1.ownchat-f16.gguf"}
    assert rows["transformers (fp32)"]["agreement_with_fp32"] == 1.0 and "vs_fp32" not in rows["transformers (fp32)"]
    f16 = rows["llama.cpp SmolLM2-135M-Instruct.Q4_1.ownchat-f16.gguf"]
    assert f16["n"] == 3 and 0 <= f16["agreement_with_fp32"] <= 1 and len(f16["vs_fp32"]["ci"]) == 2
