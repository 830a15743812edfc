"""The SFT configuration: one dataclass, loadable from YAML, validated up front.

``validate()`` collects every problem before raising, so a user fixes a config in one pass instead
of discovering mistakes one crash at a time (twenty minutes into a run, for the last one).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ownchat.errors import UserError

METHODS = ("lora", "qlora", "full")


@dataclass
class SFTConfig:
    model: str
    data: list[str | Path]
    out: Path
    method: str = "lora"
    epochs: int = 1
    max_steps: int | None = None
    lr: float = 2e-4
    batch_size: int = 4
    grad_accum: int = 1
    seq_len: int = 512
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: list[str] | None = None
    seed: int = 0
    save_every: int = 50
    eval_fraction: float = 0.05
    chat_template: str | None = None
    data_weights: list[float] | None = None
    resume: bool = False
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    packing: bool = False
    eval_every: int = 0  # 0: evaluate at the end (and at each checkpoint)
    keep_checkpoints: int = 2
    gradient_checkpointing: bool = False
    dtype: str = "auto"  # auto: fp32 on CPU, bf16 on GPUs that support it
    log_every: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.data, (str, Path)):
            self.data = [self.data]
        self.out = Path(self.out)
        parsed = [parse_data_arg(d) for d in self.data]
        if any(w is not None for _, w in parsed):
            if self.data_weights is not None:
                raise UserError("give data weights either as FILE:WEIGHT or as data_weights, not both")
            self.data = [p for p, _ in parsed]
            self.data_weights = [1.0 if w is None else w for _, w in parsed]

    def validate(self) -> SFTConfig:
        errs: list[str] = []
        if not self.model:
            errs.append("model: required (a pack name, HF directory or hub id)")
        if not self.data:
            errs.append("data: give at least one file")
        for d in self.data:
            if not Path(d).exists():
                errs.append(f"data: file not found: {d}")
        if self.method not in METHODS:
            errs.append(f"method: {self.method!r} is not one of {', '.join(METHODS)}")
        for name in ("epochs", "batch_size", "grad_accum", "seq_len", "lora_r", "save_every", "log_every"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                errs.append(f"{name}: must be a positive integer, got {v!r}")
        if self.max_steps is not None and (not isinstance(self.max_steps, int) or self.max_steps < 1):
            errs.append(f"max_steps: must be a positive integer, got {self.max_steps!r}")
        if not isinstance(self.lr, (int, float)) or not 0 < self.lr < 1:
            errs.append(f"lr: must be in (0, 1), got {self.lr!r}")
        if not 0 <= self.eval_fraction < 0.5:
            errs.append(f"eval_fraction: must be in [0, 0.5), got {self.eval_fraction!r}")
        if not 0 <= self.lora_dropout < 1:
            errs.append(f"lora_dropout: must be in [0, 1), got {self.lora_dropout!r}")
        if not 0 <= self.warmup_ratio < 1:
            errs.append(f"warmup_ratio: must be in [0, 1), got {self.warmup_ratio!r}")
        if self.data_weights is not None:
            if len(self.data_weights) != len(self.data):
                errs.append(f"data_weights: {len(self.data_weights)} weights for {len(self.data)} files")
            elif any(not isinstance(w, (int, float)) or w <= 0 for w in self.data_weights):
                errs.append(f"data_weights: must be positive numbers, got {self.data_weights}")
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            errs.append(f"dtype: {self.dtype!r} is not one of auto, float32, bfloat16, float16")
        if errs:
            raise UserError("invalid training config:\n  - " + "\n  - ".join(errs))
        return self

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["out"] = str(self.out)
        d["data"] = [str(p) for p in self.data]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, where: str = "<config>") -> SFTConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"{where}: unknown keys {unknown}; known keys: {', '.join(sorted(known))}")
        missing = [k for k in ("model", "data", "out") if d.get(k) in (None, "", [])]
        if missing:
            raise UserError(f"{where}: missing required keys {missing}")
        return cls(**d)


def parse_data_arg(arg: str | Path) -> tuple[Path, float | None]:
    """``file.jsonl:2`` -> (file.jsonl, 2.0); a plain path (even one containing ':') -> (path, None)."""
    s = str(arg)
    head, sep, tail = s.rpartition(":")
    if sep and head and not Path(s).exists():
        try:
            return Path(head), float(tail)
        except ValueError:
            pass
    return Path(s), None


def load_config(path: str | Path | None, overrides: dict[str, Any]) -> SFTConfig:
    """A YAML file (optional) with command-line values on top; ``None`` overrides are ignored."""
    import yaml

    base: dict[str, Any] = {}
    if path:
        p = Path(path)
        if not p.exists():
            raise UserError(f"config file not found: {p}")
        try:
            base = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise UserError(f"{p}: invalid YAML ({exc})") from None
        if not isinstance(base, dict):
            raise UserError(f"{p}: expected a mapping of option: value")
    merged = {**base, **{k: v for k, v in overrides.items() if v not in (None, [], ())}}
    return SFTConfig.from_dict(merged, where=str(path or "command line")).validate()


@dataclass
class TrainResult:
    out_dir: Path
    final_loss: float | None
    eval_loss: float | None
    steps: int
    metrics_path: Path
    tokens: int = 0
    seconds: float = 0.0
    tokens_per_second: float = 0.0
    padding_fraction: float = 0.0
    mask_report: dict = field(default_factory=dict)
    resumed_from: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["out_dir"], d["metrics_path"] = str(self.out_dir), str(self.metrics_path)
        return d
