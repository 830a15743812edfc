"""One reference string -> one local artifact.

A reference is an offline pack name, a local ``.gguf`` file, a local Hugging Face model directory,
or a hub id (``org/name``) downloaded with huggingface_hub when the network allows.
"""

from __future__ import annotations

import json
from pathlib import Path

from ownchat.errors import UserError
from ownchat.models.packs import PACKS
from ownchat.models.ref import ModelRef


class ModelNotFound(UserError):
    """A model reference that names no pack, file, folder or reachable hub repository."""


def ensure_hf(model: str | ModelRef, log=print) -> Path:
    """A local HF model directory for ``model`` (a GGUF is converted once and cached; see convert.py)."""
    from ownchat.models.convert import gguf_to_hf, hf_dir_for

    ref = resolve(model, log=log) if isinstance(model, str) else model
    if ref.kind == "hf":
        return ref.path
    out = hf_dir_for(ref)
    if (out / "ownchat.json").exists():
        return out
    return gguf_to_hf(ref, out, log=log)


def _help_text() -> str:
    packs = ", ".join(n for n, p in PACKS.items() if p.kind == "model")
    return (
        f"Offline packs: {packs} (install with `ownchat models pull NAME`); "
        "or pass a local .gguf file or a Hugging Face model directory (with config.json)."
    )


def resolve(ref: str, *, pull: bool = True, log=print) -> ModelRef:
    ref = str(ref)
    if ref in PACKS:
        pack = PACKS[ref]
        if pack.kind != "model":
            raise ModelNotFound(f"{ref!r} is a data pack, not a model. {_help_text()}")
        from ownchat.models.store import installed
        from ownchat.models.store import pull as pull_pack

        inst = installed(ref) or (pull_pack(ref, log=log) if pull else None)
        if inst is None:
            raise ModelNotFound(f"pack {ref!r} is not installed. Run: ownchat models pull {ref}")
        return ModelRef(ref, "gguf", inst.path, "pack", pack.license, pack, pack.chat_template)
    path = Path(ref).expanduser()
    if path.is_dir() and (path / RUN_FILE).exists():
        return _from_run_dir(path, log=log)
    if path.is_file() and path.suffix == ".gguf":
        return ModelRef(ref, "gguf", path, "local", _sidecar_license(path.parent))
    if path.is_dir():
        if (path / "config.json").exists():
            tpl = _dir_has_template(path)
            return ModelRef(ref, "hf", path, "local", _sidecar_license(path), has_chat_template=tpl)
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return ModelRef(ref, "gguf", ggufs[0], "local", _sidecar_license(path))
        raise ModelNotFound(f"{path} is a directory without config.json or a single .gguf file. {_help_text()}")
    if path.suffix == ".gguf" or ref.startswith((".", "/", "~")):
        raise ModelNotFound(f"no such file or directory: {ref}. {_help_text()}")
    if ref.count("/") == 1:
        return _from_hub(ref)
    raise ModelNotFound(f"unknown model {ref!r}. {_help_text()}")


RUN_FILE = "ownchat_run.json"


def _from_run_dir(path: Path, log=print) -> ModelRef:
    """A training run directory: ``ownchat_run.json`` names the base reference and the adapter folder.

    ``{"base": "<model ref>", "adapter": "adapter" | null, "merged": "merged" | null, "chat_template": ...}``
    A merged full model (``merged``) wins over base + adapter.
    """
    meta = json.loads((path / RUN_FILE).read_text())
    if meta.get("merged") and (path / meta["merged"] / "config.json").exists():
        inner = resolve(str(path / meta["merged"]), log=log)
        inner.chat_template = meta.get("chat_template")
        inner.meta = meta
        return inner
    base = resolve(meta["base"], log=log)
    base_dir = ensure_hf(base, log=log)
    adapter = path / meta["adapter"] if meta.get("adapter") else None
    return ModelRef(str(path), "hf", base_dir, "local", meta.get("license", base.license), base.pack,
                    has_chat_template=True, meta=meta, adapter=adapter, chat_template=meta.get("chat_template"))


def _from_hub(repo_id: str) -> ModelRef:
    try:
        from huggingface_hub import snapshot_download

        local = snapshot_download(repo_id, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"])
    except Exception as exc:  # noqa: BLE001 - offline, gated, or missing: all end in the same advice
        raise ModelNotFound(
            f"could not download {repo_id!r} from the Hugging Face hub ({type(exc).__name__}: {exc}). "
            f"If you are offline: {_help_text()}"
        ) from exc
    path = Path(local)
    return ModelRef(repo_id, "hf", path, "hub", _sidecar_license(path), has_chat_template=_dir_has_template(path))


def _dir_has_template(path: Path) -> bool:
    if (path / "chat_template.jinja").exists() or (path / "chat_template.json").exists():
        return True
    cfg = path / "tokenizer_config.json"
    return cfg.exists() and bool(json.loads(cfg.read_text()).get("chat_template"))


def _sidecar_license(path: Path) -> str:
    """Directories written by ownchat carry ``ownchat.json`` with the licence of what they derive from."""
    meta = path / "ownchat.json"
    if meta.exists():
        try:
            return json.loads(meta.read_text()).get("license", "unknown")
        except json.JSONDecodeError:
            return "unknown"
    return "unknown"
