"""Training configurations: the knobs every trainer shares, SFT's own, loadable from YAML, validated up front.

``validate()`` collects every problem before raising, so a user fixes a config in one pass instead
of discovering mistakes one crash at a time (twenty minutes into a run, for the last one). Each
problem names the value the way the user gave it: ``--lr`` on the command line, ``c.yaml:7 lr`` in a
config file, ``recipe.yaml sft.lr`` in a recipe, plain ``lr`` from Python (see ``given_as``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from ownchat.errors import UserError

METHODS = ("lora", "qlora", "full")
DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass
class TrainConfig:
    """The loop's knobs, shared by SFT, DPO and the reward model (which may change the defaults)."""

    model: str
    data: Any
    out: Path
    epochs: float = 1
    max_steps: int | None = None
    lr: float = 2e-4
    batch_size: int = 4
    grad_accum: int = 1
    seq_len: int = 512
    lora_r: int = 8
    lora_alpha: int | None = 16  # None: 2 * lora_r
    lora_dropout: float = 0.05
    seed: int = 0
    save_every: int = 50
    keep_checkpoints: int = 2
    chat_template: str | None = None
    resume: bool = False
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    gradient_checkpointing: bool = False
    dtype: str = "auto"  # auto: fp32 on CPU, bf16 on GPUs that support it
    log_every: int = 1

    #: options that change which batch comes at which step, or the weights: a resume must keep them
    ORDER_KEYS: ClassVar[tuple[str, ...]] = ("model", "data", "seed", "batch_size", "grad_accum", "seq_len",
                                             "epochs", "max_steps", "chat_template", "lr", "lora_r")
    #: command-line flags whose name is not ``--field-name``
    FLAGS: ClassVar[dict[str, str]] = {}
    MIN_SEQ_LEN: ClassVar[int] = 1
    SCHEDULE: ClassVar[str] = "cosine"

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self._where: dict[str, str] = {}

    # -- where values came from ---------------------------------------------------------------------
    def given_as(self, labels: dict[str, str]) -> TrainConfig:
        """Record how the user named some fields (``{"lr": "--lr"}``); problems are reported that way."""
        self._where.update(labels)
        return self

    def label(self, name: str) -> str:
        return self._where.get(name, name)

    @classmethod
    def flag(cls, name: str) -> str:
        return cls.FLAGS.get(name, "--" + name.replace("_", "-"))

    def from_flags(self, names: list[str] | tuple[str, ...]) -> TrainConfig:
        return self.given_as({n: self.flag(n) for n in names})

    # -- validation ---------------------------------------------------------------------------------
    def problems(self) -> list[tuple[str, str]]:
        """Every (field, problem) of this config; subclasses add their own."""
        errs: list[tuple[str, str]] = []
        if not self.model:
            errs.append(("model", "required (a pack name, HF directory or hub id)"))
        for name in ("batch_size", "grad_accum", "seq_len", "lora_r", "save_every", "log_every",
                     "keep_checkpoints"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                errs.append((name, f"must be a positive integer, got {v!r}"))
        if isinstance(self.seq_len, int) and 1 <= self.seq_len < self.MIN_SEQ_LEN:
            errs.append(("seq_len", f"must be at least {self.MIN_SEQ_LEN}, got {self.seq_len}"))
        if not isinstance(self.epochs, (int, float)) or self.epochs <= 0:
            errs.append(("epochs", f"must be a positive number, got {self.epochs!r}"))
        if self.max_steps is not None and (not isinstance(self.max_steps, int) or self.max_steps < 1):
            errs.append(("max_steps", f"must be a positive integer, got {self.max_steps!r}"))
        if not isinstance(self.lr, (int, float)) or not 0 < self.lr < 1:
            errs.append(("lr", f"must be in (0, 1), got {self.lr!r}"))
        if self.lora_alpha is not None and (not isinstance(self.lora_alpha, (int, float)) or self.lora_alpha <= 0):
            errs.append(("lora_alpha", f"must be a positive number, got {self.lora_alpha!r}"))
        for name, lo, hi in (("lora_dropout", 0, 1), ("warmup_ratio", 0, 1)):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not lo <= v < hi:
                errs.append((name, f"must be in [{lo}, {hi}), got {v!r}"))
        for name in ("weight_decay", "max_grad_norm"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or v < 0:
                errs.append((name, f"must be a number >= 0, got {v!r}"))
        if self.dtype not in DTYPES:
            errs.append(("dtype", f"{self.dtype!r} is not one of {', '.join(DTYPES)}"))
        return errs

    def validate(self) -> TrainConfig:
        errs = self.problems()
        if errs:
            kind = type(self).__name__.removesuffix("Config")
            raise UserError(f"invalid {kind} training config:\n  - "
                            + "\n  - ".join(f"{self.label(k)}: {p}" for k, p in errs))
        return self

    # -- serialisation ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, Path):
                d[k] = str(v)
            elif isinstance(v, list):
                d[k] = [str(x) if isinstance(x, Path) else x for x in v]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, where: str = "<config>") -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"{where}: unknown keys {unknown}; known keys: {', '.join(sorted(known))}")
        missing = [k for k in ("model", "data", "out") if d.get(k) in (None, "", [])]
        if missing:
            raise UserError(f"{where}: missing required keys {missing}")
        return cls(**d)


@dataclass
class SFTConfig(TrainConfig):
    data: list[str | Path]
    method: str = "lora"
    target_modules: list[str] | None = None
    eval_fraction: float = 0.05
    data_weights: list[float] | None = None
    packing: bool = False
    eval_every: int = 0  # 0: evaluate at the end (and at each checkpoint)

    ORDER_KEYS: ClassVar[tuple[str, ...]] = (*TrainConfig.ORDER_KEYS, "data_weights", "method", "packing",
                                             "eval_fraction")

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.data, (str, Path)):
            self.data = [self.data]
        parsed = [parse_data_arg(d) for d in self.data]
        if any(w is not None for _, w in parsed):
            if self.data_weights is not None:
                raise UserError("give data weights either as FILE:WEIGHT or as data_weights, not both")
            self.data = [p for p, _ in parsed]
            self.data_weights = [1.0 if w is None else w for _, w in parsed]

    def problems(self) -> list[tuple[str, str]]:
        errs = super().problems()
        if not self.data:
            errs.append(("data", "give at least one file"))
        errs += [("data", f"file not found: {d}") for d in self.data if not Path(d).exists()]
        if self.method not in METHODS:
            errs.append(("method", f"{self.method!r} is not one of {', '.join(METHODS)}"))
        if not isinstance(self.eval_fraction, (int, float)) or not 0 <= self.eval_fraction < 0.5:
            errs.append(("eval_fraction", f"must be in [0, 0.5), got {self.eval_fraction!r}"))
        if self.data_weights is not None:
            if len(self.data_weights) != len(self.data):
                errs.append(("data_weights", f"{len(self.data_weights)} weights for {len(self.data)} files"))
            elif any(not isinstance(w, (int, float)) or w <= 0 for w in self.data_weights):
                errs.append(("data_weights", f"must be positive numbers, got {self.data_weights}"))
        return errs


@dataclass
class PrefTrainConfig(TrainConfig):
    """What DPO and the reward model share beyond the loop's knobs: one pairs file, an adapter to
    continue, and their own defaults. A preference run always resumes from its last checkpoint."""

    data: Path
    adapter: Path | None = None  # an SFT run (or adapter folder) to continue training
    lr: float = 5e-5
    lora_alpha: int | None = None
    lora_dropout: float = 0.0
    warmup_ratio: float = 0.1
    resume: bool = True
    # padded tokens per forward pass: a micro-batch's pairs are split into passes of about this
    # size. None: 512 on CPU, the whole micro-batch on a GPU. The gradient is the same either way.
    tokens_per_pass: int | None = None

    ORDER_KEYS: ClassVar[tuple[str, ...]] = (*TrainConfig.ORDER_KEYS, "adapter")
    MIN_SEQ_LEN: ClassVar[int] = 16
    SCHEDULE: ClassVar[str] = "linear"

    def problems(self) -> list[tuple[str, str]]:
        errs = super().problems()
        if not self.data:
            errs.append(("data", "required: a JSONL file of prompt, chosen, rejected"))
        elif not Path(self.data).exists():
            errs.append(("data", f"file not found: {self.data}"))
        if self.tokens_per_pass is not None and (not isinstance(self.tokens_per_pass, int) or self.tokens_per_pass < 1):
            errs.append(("tokens_per_pass", f"must be a positive integer, got {self.tokens_per_pass!r}"))
        if self.adapter is not None and not Path(self.adapter).exists():
            errs.append(("adapter", f"not found: {self.adapter}"))
        return errs


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
    """A YAML file (optional) with command-line values on top; ``None`` overrides are ignored.

    Problems name the flag for values given on the command line and ``FILE:LINE key`` for the rest.
    """
    import yaml

    base: dict[str, Any] = {}
    lines: dict[str, int] = {}
    if path:
        p = Path(path)
        if not p.exists():
            raise UserError(f"config file not found: {p}")
        try:
            text = p.read_text()
            base = yaml.safe_load(text) or {}
            node = yaml.compose(text)
        except yaml.YAMLError as exc:
            raise UserError(f"{p}: invalid YAML ({exc})") from None
        if not isinstance(base, dict):
            raise UserError(f"{p}: expected a mapping of option: value")
        if isinstance(node, yaml.MappingNode):
            lines = {k.value: k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
    given = {k: v for k, v in overrides.items() if v not in (None, [], ())}
    cfg = SFTConfig.from_dict({**base, **given}, where=str(path or "command line"))
    cfg.given_as({k: f"{path}:{lines[k]} {k}" if k in lines else f"{path} {k}" for k in base})
    cfg.from_flags(list(given))
    return cfg.validate()
