"""A LoRA training run on llama.cpp: the base GGUF plus the adapter converted to a GGUF LoRA.

A run whose base is a GGUF (every pack) was trained on the weights dequantised from that very file,
so applying the adapter to it at load time reproduces the trained model closely, at llama.cpp's speed
(SmolLM2: ~90-180 tok/s here against ~35 for transformers on the same CPU). The converted adapter is
kept in the run directory and remade only when the adapter changes (a resumed run trains further).
"""

from __future__ import annotations

from pathlib import Path

from ownchat.engines.base import EngineError
from ownchat.models.identity import file_identity
from ownchat.models.resolve import ModelRef, resolve

CONVERTED = "adapter.gguf"


def gguf_for_run(ref: ModelRef, log=print) -> tuple[Path, Path]:
    """(base GGUF, GGUF LoRA) for a training run resolved by ``resolve`` (base + PEFT adapter)."""
    run_dir = Path(ref.ref)
    base_ref = str(ref.meta.get("base", ""))
    if ref.adapter is None:
        raise EngineError(f"{run_dir} is a full fine-tune: llama.cpp needs it as one GGUF file — run "
                          f"`ownchat export {run_dir} --to gguf` and pass the exported model.gguf")
    base = resolve(base_ref, log=log)
    if base.kind != "gguf":
        raise EngineError(f"{run_dir} was trained on {base_ref!r}, which is not a GGUF model, so there is no "
                          f"llama.cpp base to put the adapter on: use --engine hf, or "
                          f"`ownchat export {run_dir} --to gguf` first")
    weights = next((p for p in (ref.adapter / "adapter_model.safetensors", ref.adapter / "adapter_model.bin")
                    if p.exists()), None)
    if weights is None:
        raise EngineError(f"{ref.adapter} has no adapter_model.safetensors: is the training run finished?")
    out, stamp = run_dir / CONVERTED, run_dir / (CONVERTED + ".source")
    source = file_identity(weights)
    if not (out.exists() and stamp.exists() and stamp.read_text() == source):
        from ownchat.export.gguf import lora_to_gguf

        log(f"converting the LoRA adapter of {run_dir} to GGUF for llama.cpp (once)")
        lora_to_gguf(ref.adapter, ref.path, out, log=log)
        stamp.write_text(source)
    if base.source == "pack":  # the same GGUF the pack itself runs on (see engines/smoke.py)
        from ownchat.engines.smoke import llamacpp_file

        return llamacpp_file(base.pack.name, log=log), out
    return base.path, out
