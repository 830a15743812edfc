"""Known-answer smoke tests for model packs, per engine, and the GGUF llama.cpp should use instead.

A pack's quantisation can break a small model on one engine only: the SmolLM2 Q4_1 pack answers
"What is the capital of France?" with a French word salad on llama.cpp, while transformers on the
same weights (dequantised to fp32) says "Paris". So before a pack serves on llama.cpp, four greedy
questions whose answers any working model gets right are asked of it. If the pack's own file fails
and the transformers conversion passes, ownchat writes a q8_0 GGUF from that conversion (llama.cpp's
own converter), then an f16 one if the q8_0 fails too, checks each the same way, and llama.cpp uses
the first that passes from then on. The result is recorded
in ``packs/<name>/smoke.json`` and shown by ``ownchat models list``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ownchat.engines.base import ChatRequest, Engine, SamplingParams

# Questions any working chat model answers, and an answer word that must appear (lower case).
CHAT_CASES = (
    ("What is the capital of France?", ("paris",)),
    ("How many days are there in a week?", ("7", "seven")),
    ("What color is the sky on a clear day?", ("blue",)),
    ("Which animal says 'meow'?", ("cat",)),
)
# Base models (no chat template) continue text instead.
BASE_CASES = (
    ("The capital of France is the city of", ("paris",)),
    ("Monday, Tuesday, Wednesday,", ("thursday",)),
    ("On a clear day, the color of the sky is", ("blue",)),
    ("A young dog is called a", ("pup",)),
)
SMOKE_FILE = "smoke.json"
# What to write when a pack's own quantisation fails on llama.cpp. Measured on SmolLM2-135M: q8_0
# still flips "Paris" (its 8-bit dot products land on the same close choice), f16 does not.
REPAIR_TYPES = ("q8_0", "f16")


@dataclass
class SmokeResult:
    engine: str
    file: str
    passed: bool
    answers: list[dict[str, Any]]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_smoke(engine: Engine, *, base_model: bool, file: str = "") -> SmokeResult:
    """Ask the known-answer questions greedily; pass only when every answer names the right thing."""
    t0 = time.perf_counter()
    cases = BASE_CASES if base_model else CHAT_CASES
    params = SamplingParams(temperature=0.0, max_tokens=24)
    reqs = [ChatRequest.completion(q, params) if base_model else
            ChatRequest.chat([{"role": "user", "content": q}], params) for q, _ in cases]
    answers: list[dict[str, Any]] = [{} for _ in cases]
    for i, comp in engine.generate_many(reqs):
        ok = comp.ok and any(w in comp.text.lower() for w in cases[i][1])
        answers[i] = {"prompt": cases[i][0], "answer": comp.text.strip()[:120], "ok": ok, "error": comp.error}
    return SmokeResult(engine.name, file, all(a["ok"] for a in answers), answers,
                       round(time.perf_counter() - t0, 1))


def smoke_path(pack_name: str) -> Path:
    from ownchat.models.packs import get_pack
    from ownchat.models.store import pack_dir

    return pack_dir(get_pack(pack_name)) / SMOKE_FILE


def load_record(pack_name: str) -> dict[str, Any] | None:
    path = smoke_path(pack_name)
    return json.loads(path.read_text()) if path.exists() else None


def _llamacpp(path: Path, base_model: bool) -> SmokeResult:
    from ownchat.engines.llamacpp import LlamaCppEngine

    eng = LlamaCppEngine(path, n_parallel=len(CHAT_CASES), n_ctx_per_slot=512,
                         chat_template="chatml" if base_model else None)
    try:
        return run_smoke(eng, base_model=base_model, file=str(path))
    finally:
        eng.close()


def check_pack(name: str, *, log: Callable[[str], None] = print, force: bool = False) -> dict[str, Any]:
    """Smoke-test a model pack on llama.cpp (and transformers when needed); return the record.

    ``record["llamacpp_gguf"]`` is the file llama.cpp should load: the pack's own when it passes,
    else a q8_0 or f16 made from the transformers conversion when that passes, else the pack's own (with
    ``ok: false``, so the CLI can warn).
    """
    from ownchat.models.resolve import resolve

    if not force and (rec := load_record(name)) is not None:
        return rec
    ref = resolve(name, log=log)
    base_model = ref.has_chat_template is False
    rec: dict[str, Any] = {"pack": name, "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    own = _llamacpp(ref.path, base_model)
    rec["llamacpp"] = own.to_dict()
    rec["llamacpp_gguf"], rec["ok"] = str(ref.path), own.passed
    log(f"[{name}] smoke test on llama.cpp ({ref.path.name}): {'pass' if own.passed else 'FAIL'}")
    if not own.passed:
        _repair(name, ref, base_model, rec, log)
    path = smoke_path(name)
    tmp = path.with_suffix(".partial")
    tmp.write_text(json.dumps(rec, indent=2, ensure_ascii=False))
    tmp.replace(path)
    return rec


def _repair(name: str, ref: Any, base_model: bool, rec: dict[str, Any], log: Callable[[str], None]) -> None:
    """The pack failed on llama.cpp: check transformers, then GGUFs written from its conversion."""
    from ownchat.engines.hf import HFEngine
    from ownchat.export.gguf import hf_to_gguf
    from ownchat.models.resolve import ensure_hf

    hf_dir = ensure_hf(ref, log=log)
    hf = HFEngine(hf_dir, batch_size=len(CHAT_CASES), log=lambda m: None)
    try:
        hf_res = run_smoke(hf, base_model=base_model, file=str(hf_dir))
    finally:
        hf.close()
    rec["hf"] = hf_res.to_dict()
    log(f"[{name}] smoke test on transformers (dequantised fp32): {'pass' if hf_res.passed else 'FAIL'}")
    if not hf_res.passed:
        return
    rec["repairs"] = []
    for outtype in REPAIR_TYPES:  # smallest first; a file that fails is deleted, not kept around
        path = ref.path.with_name(f"{ref.path.stem}.ownchat-{outtype}.gguf")
        if not path.exists():
            log(f"[{name}] writing a {outtype} GGUF from the transformers conversion for llama.cpp (once)")
            hf_to_gguf(hf_dir, path, outtype=outtype, log=log)
        res = _llamacpp(path, base_model)
        rec["repairs"].append({"outtype": outtype, **res.to_dict()})
        log(f"[{name}] smoke test on llama.cpp ({path.name}): {'pass' if res.passed else 'FAIL'}")
        if res.passed:
            rec["llamacpp_gguf"], rec["ok"] = str(path), True
            return
        path.unlink()


def llamacpp_file(name: str, log: Callable[[str], None] = print) -> Path:
    """The GGUF llama.cpp should load for a pack (running the smoke test the first time)."""
    rec = check_pack(name, log=log)
    path = Path(rec["llamacpp_gguf"])
    if not path.exists():  # the q8_0 was deleted: check again (and rebuild it)
        rec = check_pack(name, log=log, force=True)
        path = Path(rec["llamacpp_gguf"])
    if not rec.get("ok"):
        log(f"warning: pack {name!r} failed its known-answer smoke test on every engine tried; "
            f"answers may be wrong (see {smoke_path(name)})")
    return path
