"""The recipe schema: one YAML file describes a whole run, validated up front.

Every problem is reported at once (unknown key, wrong type, missing file, unknown model), each with
the YAML line it sits on, so a user fixes the recipe in one pass instead of one crash at a time.
Stage sections are optional: leave out ``feedback``/``dpo``/``improve`` and those stages do not run.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=False)


class Price(_Strict):
    """US dollars per million tokens, as the provider bills them (the plan and report show the cost)."""
    input: float = Field(0.0, ge=0)
    output: float = Field(0.0, ge=0)


class ModelSpec(_Strict):
    """A teacher or judge: a pack, a local model, a training run, or an OpenAI-compatible endpoint."""
    base_url: str | list[str] | None = None  # declared first: the model check reads it
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int | None = Field(None, ge=1)
    price: Price = Field(default_factory=Price)
    license: str | None = None  # overrides what ownchat knows (e.g. a hub model's licence)

    @field_validator("model")
    @classmethod
    def _known_model(cls, v: str, info: ValidationInfo) -> str:
        return _check_model_ref(v, info, remote=bool(info.data.get("base_url")))

    @property
    def remote(self) -> bool:
        return bool(self.base_url) or self.model.startswith(("openai:", "http://", "https://"))


class Student(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    base: str
    license: str | None = None
    chat_template: str | None = None  # base models without one get "chatml" (recorded in the run)

    @field_validator("base")
    @classmethod
    def _known_base(cls, v: str, info: ValidationInfo) -> str:
        return _check_model_ref(v, info, remote=False)


class DataFile(_Strict):
    """Data the user brings. Its licence is declared here or in a sidecar ``FILE.license``."""
    path: str
    license: str | None = None
    limit: int | None = Field(None, ge=1)

    @field_validator("path")
    @classmethod
    def _exists(cls, v: str, info: ValidationInfo) -> str:
        return _check_file(v, info)


class Filters(_Strict):
    dedup: bool = True
    min_chars: int = Field(1, ge=0)
    max_chars: int | None = Field(None, ge=1)
    drop_refusals: bool = True


class Synth(_Strict):
    """The teacher writes the training data (``ownchat.synth``).

    ``self-instruct`` and ``alpaca`` grow new tasks from seed tasks (``prompts``: builtin or a seed file);
    ``answer`` has the teacher answer existing prompts (builtin: the shipped seed instructions);
    ``chat`` writes multi-turn conversations (``prompts``: optional topics file).
    """
    method: Literal["self-instruct", "alpaca", "answer", "chat"] = "alpaca"
    prompts: str = "builtin"
    n: int = Field(200, ge=1)
    turns: int = Field(3, ge=1, le=16)  # chat only
    batch_size: int = Field(20, ge=1)  # alpaca only: triples asked for per request
    max_tokens: int = Field(1024, ge=16)  # per teacher request
    temperature: float = Field(0.7, ge=0, le=2)
    system: str | None = None  # answer only: the teacher's system prompt
    language: str | None = None  # e.g. "zh-TW": asked of the teacher, and checked by the filters
    topic: str | None = None
    max_cost: float | None = Field(None, gt=0)  # USD: stop synth once a priced teacher has cost this much
    # answer only: add verifiable constraints (IFEval-checkable, never IFEval's own prompts) and keep
    # only answers that pass, trying up to constraint_samples answers per instruction
    constraints: bool = False
    constraint_samples: int = Field(4, ge=1, le=16)
    # per kept constrained answer, up to this many variants with one more constraint, the answer
    # rewritten by code to meet it and re-checked (ownchat.synth.rewrites): no extra teacher calls
    rewrites: int = Field(0, ge=0, le=8)
    # append this many ShareGPT conversations (ChatGPT's answers): the licence ledger then says the
    # students are not cleared for a model that competes with OpenAI
    mix_sharegpt: int = Field(0, ge=0)
    filters: Filters = Field(default_factory=Filters)
    options: dict[str, Any] = Field(default_factory=dict)  # passed through to ownchat.synth.SynthConfig

    @field_validator("prompts")
    @classmethod
    def _prompts(cls, v: str, info: ValidationInfo) -> str:
        return v if v == "builtin" else _check_file(v, info)

    @field_validator("constraints")
    @classmethod
    def _constraints(cls, v: bool, info: ValidationInfo) -> bool:
        if v and info.data.get("method", "alpaca") != "answer":
            raise ValueError("constraints need method: answer (the teacher answers constrained instructions)")
        return v

    @field_validator("rewrites")
    @classmethod
    def _rewrites(cls, v: int, info: ValidationInfo) -> int:
        if v and not info.data.get("constraints"):
            raise ValueError("rewrites need constraints: true (variants are made from checked, constrained answers)")
        return v


class SFT(_Strict):
    lora_r: int = Field(8, ge=1)
    lora_alpha: int | None = Field(None, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    epochs: int = Field(1, ge=1)
    max_steps: int | None = Field(None, ge=1)
    batch_size: int = Field(4, ge=1)
    grad_accum: int = Field(1, ge=1)
    seq_len: int = Field(256, ge=16)
    lr: float = Field(2e-4, gt=0)
    accelerate: str | None = None  # an accelerate config file: launched with `accelerate launch`
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("accelerate")
    @classmethod
    def _acc(cls, v: str | None, info: ValidationInfo) -> str | None:
        return None if v is None else _check_file(v, info)


class Feedback(_Strict):
    """The student answers prompts several times; a judge ranks the answers into preference pairs."""
    n: int = Field(64, ge=1)
    samples: int = Field(4, ge=2)
    judge: ModelSpec | None = None  # default: the teacher
    temperature: float = Field(0.9, gt=0, le=2)  # > 0: greedy decoding gives k identical samples
    max_tokens: int = Field(192, ge=1)
    options: dict[str, Any] = Field(default_factory=dict)


class DPO(_Strict):
    beta: float = Field(0.1, gt=0)
    epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, ge=1)
    batch_size: int = Field(2, ge=1)
    lr: float = Field(5e-5, gt=0)
    seq_len: int = Field(384, ge=16)
    options: dict[str, Any] = Field(default_factory=dict)


class Improve(_Strict):
    """Self-improvement on a task with checkable answers (LMSI: majority-vote paths become data)."""
    task: Literal["gsm8k"] = "gsm8k"
    n: int = Field(200, ge=1)
    samples: int = Field(8, ge=1)
    eval_n: int = Field(100, ge=1)
    max_tokens: int = Field(256, ge=1)
    options: dict[str, Any] = Field(default_factory=dict)


class IFEvalSection(_Strict):
    """IFEval before -> after on llama.cpp: the objective headline of a run (``ownchat eval ifeval``)."""
    n: int = Field(60, ge=1, le=541)  # prompts of IFEval's fixed, nested spread
    max_tokens: int = Field(256, ge=16)
    teacher: bool = True  # the teacher answers too: each student's "percent of the teacher"


class Eval(_Strict):
    """Measures that need no judge: IFEval, and the distance to the teacher on held-out answers."""
    ifeval: IFEvalSection | None = Field(default_factory=IFEvalSection)
    teacher_nll: bool = True  # NLL per token of held-out teacher answers, base vs tuned
    heldout: int = Field(16, ge=0)  # teacher examples kept out of training for teacher_nll


class Judge(_Strict):
    bench: str = "ownchat"  # "ownchat" (built in), "mt-bench", or a file of questions
    n: int | None = Field(None, ge=1)  # a subset of the bench, spread over categories (None: all of it)
    turns: int | None = Field(None, ge=1)  # judge only the first turns of each question
    lang: str | None = None  # only questions in this language (the bench has en and zh-TW)
    judge: ModelSpec | None = None  # default: the teacher
    compare: list[Literal["base", "teacher"]] = Field(default_factory=lambda: ["base", "teacher"])
    method: Literal["text", "prob"] = "text"  # prob: one-token verdicts, both orders calibrated
    require_valid: bool = False  # skip the judge unless `ownchat judge validate` passed for it
    max_tokens: int = Field(256, ge=1)
    options: dict[str, Any] = Field(default_factory=dict)


class Export(_Strict):
    to: Literal["gguf", "hf", "ollama", "none"] = "gguf"  # hf: a merged model folder; ollama: GGUF + Modelfile
    outtype: Literal["f32", "f16", "bf16", "q8_0"] = "q8_0"  # GGUF weight type (llama.cpp's converter)


class Serve(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)


class Recipe(_Strict):
    name: str
    description: str = ""
    seed: int = 0
    teacher: ModelSpec | None = None
    students: list[Student] = Field(min_length=1)
    data: list[DataFile] = Field(default_factory=list)
    synth: Synth | None = None
    sft: SFT | None = Field(default_factory=SFT)
    feedback: Feedback | None = None
    dpo: DPO | None = None
    improve: Improve | None = None
    eval: Eval | None = Field(default_factory=Eval)
    judge: Judge | None = Field(default_factory=Judge)
    export: Export = Field(default_factory=Export)
    serve: Serve = Field(default_factory=Serve)

    #: where the recipe file lives: relative paths in it are relative to this directory
    base_dir: Path = Field(default=Path("."), exclude=True)

    def resolve_path(self, p: str) -> Path:
        path = Path(p).expanduser()
        return path if path.is_absolute() else (self.base_dir / path)

    def judge_model(self, section: Judge | Feedback | None) -> ModelSpec | None:
        return (section.judge if section and section.judge else None) or self.teacher


# ---------------------------------------------------------------- helpers used by the validators

def _check_file(v: str, info: ValidationInfo) -> str:
    base = Path((info.context or {}).get("base_dir", "."))
    path = Path(v).expanduser()
    if not (path if path.is_absolute() else base / path).exists():
        raise ValueError(f"file not found: {v} (relative paths are relative to the recipe's folder)")
    return v


def _check_model_ref(v: str, info: ValidationInfo, *, remote: bool) -> str:
    """Accept what ``load_engine`` accepts, without downloading anything (dry runs stay offline)."""
    from ownchat.models.packs import PACKS

    if remote or v.startswith(("openai:", "http://", "https://")):
        return v
    if v in PACKS:
        if PACKS[v].kind != "model":
            raise ValueError(f"{v!r} is a data pack, not a model")
        return v
    base = Path((info.context or {}).get("base_dir", "."))
    path = Path(v).expanduser()
    if v.startswith((".", "/", "~")) or path.suffix == ".gguf":
        if not (path if path.is_absolute() else base / path).exists():
            raise ValueError(f"model file or folder not found: {v}")
        return v
    if v.count("/") == 1:
        return v  # a Hugging Face hub id, downloaded when the stage runs
    close = difflib.get_close_matches(v, [n for n, p in PACKS.items() if p.kind == "model"], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown model {v!r}: use a pack name, a .gguf file, an HF folder or org/name{hint}")
