"""Resumable output folders: the same model file by another path resumes; another model is refused."""

from __future__ import annotations

import pytest

from ownchat.data.outdir import claim_out_dir
from ownchat.errors import UserError


def test_same_file_by_another_path_resumes_and_another_file_is_refused(tmp_path):
    (tmp_path / "a").mkdir()
    model = tmp_path / "a" / "m.gguf"
    model.write_bytes(b"GGUF" + bytes(range(200)))
    moved = tmp_path / "home2"
    moved.symlink_to(tmp_path / "a")  # e.g. the same packs under another OWNCHAT_HOME
    out = tmp_path / "run"
    claim_out_dir(out, {"model": str(model), "max_tokens": 8}, ("model", "max_tokens"), "a run")
    claim_out_dir(out, {"model": str(moved / "m.gguf"), "max_tokens": 8}, ("model", "max_tokens"), "a run")
    other = tmp_path / "other.gguf"
    other.write_bytes(b"GGUF" + bytes(range(100)))
    with pytest.raises(UserError, match="different model"):
        claim_out_dir(out, {"model": str(other), "max_tokens": 8}, ("model", "max_tokens"), "a run")
    with pytest.raises(UserError, match="different max_tokens"):
        claim_out_dir(out, {"model": str(model), "max_tokens": 9}, ("model", "max_tokens"), "a run")
    with pytest.raises(UserError, match="different model"):  # a name, not a file: compared as text
        claim_out_dir(out, {"model": "smollm2-135m-instruct", "max_tokens": 8}, ("model", "max_tokens"), "a run")
