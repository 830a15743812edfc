"""The stage graph: what each stage is, its content hash, and what it will cost before it runs.

A stage's key hashes its kind, its settings, the bytes of the files it reads and the keys of the
stages it depends on (a Merkle chain). Change one setting and exactly that stage and everything
downstream of it get new keys; everything else is skipped. Keys are known before anything runs, so
``--dry-run`` can say precisely what would run again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ownchat.paths import home
from ownchat.progress import Progress, silent


@dataclass
class Estimate:
    seconds: float = 0.0
    tokens_in: int = 0  # prompt tokens sent to a teacher/judge
    tokens_out: int = 0  # tokens it writes back
    cost_usd: float = 0.0
    note: str = ""  # how it was worked out ("300 answers x 120 tok at 35 tok/s")


@dataclass
class StageResult:
    """What a stage hands back to the runner, the ledgers and the report (JSON-able throughout)."""
    summary: dict[str, Any] = field(default_factory=dict)  # headline numbers for the report
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> path relative to the run dir
    usage: dict[str, dict[str, Any]] = field(default_factory=dict)  # role -> UsageMeter snapshot
    privacy: list[dict[str, Any]] = field(default_factory=list)  # data that left: host, requests, records
    licences: list[dict[str, Any]] = field(default_factory=list)  # what binds the result (ledger items)
    images: dict[str, str] = field(default_factory=dict)  # title -> PNG path relative to the run dir
    samples: list[dict[str, Any]] = field(default_factory=list)  # a few records to show
    speeds: dict[str, float] = field(default_factory=dict)  # measured speeds for future plans
    raw: dict[str, Any] = field(default_factory=dict)  # the stage API's own to_dict()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StageResult:
        return cls(**{k: v for k, v in (d or {}).items() if k in cls.__dataclass_fields__})


@dataclass
class StageContext:
    run_dir: Path
    dir: Path  # this stage's own folder (resumable state lives here)
    results: dict[str, StageResult]  # finished upstream stages, by name
    log: Callable[[str], None] = print
    progress: Progress = silent  # (label, done, total) events; the CLI draws them as bars

    def dep_path(self, stage: str, artifact: str) -> Path:
        """An upstream stage's artifact as an absolute path."""
        return self.run_dir / self.results[stage].artifacts[artifact]

    def rel(self, path: Path) -> str:
        return os.path.relpath(path, self.run_dir)


class Stage:
    """One step of a run. Subclasses set the attributes and implement ``run``; the runner does the rest."""

    kind: str = "stage"
    #: bump when a stage's behaviour changes so old results are not reused for it
    version: int = 1

    def __init__(self, name: str, deps: tuple[str, ...] = ()) -> None:
        self.name, self.deps = name, tuple(deps)

    def settings(self) -> dict[str, Any]:
        """Everything that changes this stage's output (JSON-able)."""
        return {}

    def input_files(self) -> list[Path]:
        """Files outside the run directory that this stage reads (user data, seed prompts)."""
        return []

    def estimate(self, speeds: Speeds) -> Estimate:
        return Estimate()

    def run(self, ctx: StageContext) -> StageResult:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def dirname(self) -> str:
        return self.name.replace(":", "-")


# ---------------------------------------------------------------- hashing

_FILE_HASHES: dict[tuple[str, int, int], str] = {}


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes (memoised by path, size and mtime: a big data file is read once)."""
    from ownchat.models.identity import file_identity

    path = Path(path)
    if path.is_dir():
        return file_identity(path)
    st = path.stat()
    memo = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if memo not in _FILE_HASHES:
        if st.st_size > 1 << 30:  # model weights: the sampled identity is enough and far cheaper
            _FILE_HASHES[memo] = file_identity(path)
        else:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            _FILE_HASHES[memo] = h.hexdigest()
    return _FILE_HASHES[memo]


def stage_key(stage: Stage, dep_keys: dict[str, str]) -> str:
    payload = {
        "kind": stage.kind,
        "version": stage.version,
        "settings": stage.settings(),
        "files": {str(p): file_digest(p) for p in stage.input_files()},
        "deps": {d: dep_keys[d] for d in stage.deps},
    }
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def order(stages: list[Stage]) -> list[Stage]:
    """Topological order (stable: recipe order where dependencies allow). Rejects cycles and unknown deps."""
    by_name = {s.name: s for s in stages}
    done: list[Stage] = []
    seen: set[str] = set()

    def visit(s: Stage, trail: tuple[str, ...]) -> None:
        if s.name in seen:
            return
        if s.name in trail:
            raise ValueError(f"stage cycle: {' -> '.join((*trail, s.name))}")
        for d in s.deps:
            if d not in by_name:
                raise ValueError(f"stage {s.name!r} depends on unknown stage {d!r}")
            visit(by_name[d], (*trail, s.name))
        seen.add(s.name)
        done.append(s)

    for s in stages:
        visit(s, ())
    return done


def compute_keys(stages: list[Stage]) -> dict[str, str]:
    keys: dict[str, str] = {}
    for s in order(stages):
        keys[s.name] = stage_key(s, keys)
    return keys


# ---------------------------------------------------------------- speeds used by estimates

# Measured on 2 idle CPU cores (see docs/recipes.md). "gen" counts completion tokens per second with
# all slots busy, prompt processing included; "train" counts training tokens (batch x length) per second.
CPU_SPEEDS: dict[str, float] = {
    "gen:qwen2.5-coder-1.5b-instruct": 35.0,
    "prefill:qwen2.5-coder-1.5b-instruct": 70.0,
    "gen:smollm2-135m-instruct": 180.0,
    "prefill:smollm2-135m-instruct": 600.0,
    "gen:gemma-3-270m": 110.0,
    "prefill:gemma-3-270m": 350.0,
    "train:smollm2-135m-instruct": 300.0,  # quickstart, 2026-12: 305 (LoRA r16, seq 320)
    "train:gemma-3-270m": 200.0,  # same run: 205
}
# Rough single-GPU (H100-class, bf16) figures, scaled from the 135M reference by parameter count.
GPU_SPEEDS: dict[str, float] = {
    "gen:smollm2-135m-instruct": 6000.0,
    "prefill:smollm2-135m-instruct": 60000.0,
    "train:smollm2-135m-instruct": 250000.0,
}
REMOTE_STREAM = 60.0  # completion tokens per second per request in flight to a hosted API
_REF = "smollm2-135m-instruct"
_REF_PARAMS = 134_515_008


def detect_device() -> str:
    """"cuda" when an NVIDIA GPU answers, else "cpu" (no torch import: a dry run stays instant)."""
    import shutil
    import subprocess

    if shutil.which("nvidia-smi"):
        try:
            if subprocess.run(["nvidia-smi", "-L"], capture_output=True, timeout=5).returncode == 0:
                return "cuda"
        except (OSError, subprocess.SubprocessError):
            pass
    return "cpu"


class Speeds:
    """Default speeds overlaid with those runs measured here (``$OWNCHAT_HOME/speeds.json``, per device)."""

    def __init__(self, path: Path | None = None, device: str | None = None) -> None:
        self.path = path or home() / "speeds.json"
        self.device = device or detect_device()
        self.defaults = GPU_SPEEDS if self.device == "cuda" else CPU_SPEEDS
        self._all: dict[str, dict[str, float]] = {}
        if self.path.exists():
            try:
                self._all = {d: {k: float(v) for k, v in m.items()} for d, m in json.loads(self.path.read_text()).items()}
            except (ValueError, AttributeError):
                self._all = {}
        self.measured = self._all.setdefault(self.device, {})

    def get(self, kind: str, model: str, *, remote: bool = False, concurrency: int | None = None) -> tuple[float, bool]:
        """(tokens per second, measured here?) for ``kind`` ("gen", "prefill", "train") on ``model``."""
        if remote:
            per = self.measured.get(f"{kind}:remote", REMOTE_STREAM if kind == "gen" else 20 * REMOTE_STREAM)
            return per * (concurrency or 8), f"{kind}:remote" in self.measured
        key = f"{kind}:{model}"
        if key in self.measured:
            return self.measured[key], True
        if key in self.defaults:
            return self.defaults[key], False
        return self.defaults[f"{kind}:{_REF}"] * _REF_PARAMS / model_params(model), False

    def record(self, speeds: dict[str, float]) -> None:
        """Blend new measurements in (so one noisy run does not swing every later plan)."""
        if not speeds:
            return
        for k, v in speeds.items():
            if v and v > 0:
                old = self.measured.get(k)
                self.measured[k] = round(v if old is None else 0.5 * old + 0.5 * v, 2)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._all, indent=2, sort_keys=True))
        tmp.replace(self.path)


def model_params(model: str) -> float:
    """Parameter count of a model reference: the pack table, else a size in its name (7B, 270m)."""
    import re

    from ownchat.models.packs import PACKS

    pack = PACKS.get(model)
    if pack and pack.params:
        return float(pack.params)
    m = re.search(r"(\d+(?:\.\d+)?)\s*([bm])\b", model.lower().replace("_", "-").replace("-", " "))
    if m:
        return float(m.group(1)) * (1e9 if m.group(2) == "b" else 1e6)
    return 1e9


def gen_estimate(speeds: Speeds, model: str, n: int, tok_in: int, tok_out: int, *, remote: bool = False,
                 price: Any = None, what: str = "requests", concurrency: int | None = None) -> Estimate:
    """``n`` requests of ``tok_in`` prompt and ``tok_out`` completion tokens on ``model``."""
    gen, g_measured = speeds.get("gen", model, remote=remote, concurrency=concurrency)
    pre, _ = speeds.get("prefill", model, remote=remote, concurrency=concurrency)
    seconds = n * tok_out / gen + n * tok_in / pre
    cost = 0.0
    if price is not None:
        cost = (n * tok_in * price.input + n * tok_out * price.output) / 1e6
    src = ", measured" if g_measured else ""
    return Estimate(seconds, n * tok_in, n * tok_out, cost, f"{n:,} {what} x {tok_out} tok @ {gen:,.0f} tok/s{src}")


def fmt_seconds(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"
