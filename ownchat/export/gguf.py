"""HF directory -> GGUF with llama.cpp's own converter, fetched once into the ownchat cache.

llama.cpp's ``convert_hf_to_gguf.py`` (with its ``gguf-py`` package and helper modules) ships in
the ``llama-cpp-python`` *source* archive. Pure Python, nothing to compile: we download that
archive with pip, keep only the converter files under ``$OWNCHAT_HOME/tools/``, and run it with
this interpreter. Re-implementing the tensor-name mapping of every architecture ourselves would be
a worse copy of it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from ownchat.errors import UserError
from ownchat.paths import home

LLAMA_CPP_PYTHON = "llama-cpp-python==0.3.36"
_VENDOR = "vendor/llama.cpp/"
_KEEP = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "gguf-py/", "conversion/")


def tools_dir() -> Path:
    return home() / "tools" / "llama.cpp-0.3.36"


def ensure_converter(log=print) -> Path:
    """The folder holding ``convert_hf_to_gguf.py`` and ``gguf-py``, downloading it the first time."""
    dest = tools_dir()
    if (dest / "convert_hf_to_gguf.py").exists() and (dest / "gguf-py").is_dir():
        return dest
    log(f"fetching llama.cpp's converter (from the {LLAMA_CPP_PYTHON} source archive, once) ...")
    with tempfile.TemporaryDirectory() as td:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q",
               LLAMA_CPP_PYTHON, "-d", td]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        archives = list(Path(td).glob("*.tar.gz"))
        if proc.returncode != 0 or not archives:
            raise UserError(f"could not download {LLAMA_CPP_PYTHON} sources for the GGUF converter "
                            f"({proc.stderr.strip()[-300:]}). Export --to hf works offline.")
        tmp = dest.with_name(dest.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        with tarfile.open(archives[0]) as tar:
            for member in tar.getmembers():
                top, _, rest = member.name.partition("/")
                if not rest.startswith(_VENDOR):
                    continue
                rel = rest[len(_VENDOR):]
                if rel and any(rel == k or rel.startswith(k) for k in _KEEP) and (member.isfile() or member.isdir()):
                    member.name = rel
                    tar.extract(member, tmp, filter="data")
        if not (tmp / "convert_hf_to_gguf.py").exists():
            raise UserError(f"{LLAMA_CPP_PYTHON} archive has no {_VENDOR}convert_hf_to_gguf.py")
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
    return dest


def _run(script: str, args: list[str], log=print) -> None:
    tools = ensure_converter(log=log)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tools / "gguf-py"), str(tools)]))
    proc = subprocess.run([sys.executable, str(tools / script), *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise UserError(f"{script} failed: {proc.stderr.strip()[-1500:]}")


def hf_to_gguf(hf_dir: Path, out_file: Path, *, outtype: str = "f16", log=print) -> Path:
    """Convert a HF model directory to one GGUF file (``f32``, ``f16``, ``bf16`` or ``q8_0``)."""
    out_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_file.with_name(out_file.name + ".partial")
    _run("convert_hf_to_gguf.py", [str(hf_dir), "--outfile", str(tmp), "--outtype", outtype], log=log)
    tmp.replace(out_file)
    return out_file


def lora_to_gguf(adapter_dir: Path, base_hf_dir: Path, out_file: Path, log=print) -> Path:
    """A LoRA adapter as GGUF (for llama.cpp's ``--lora``), leaving the base file untouched."""
    tmp = out_file.with_name(out_file.name + ".partial")
    _run("convert_lora_to_gguf.py", [str(adapter_dir), "--base", str(base_hf_dir), "--outfile", str(tmp),
                                     "--outtype", "f32"], log=log)
    tmp.replace(out_file)
    return out_file
