"""The GGUF header walk finds a string value past arrays of strings and numbers, as gguf's reader does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGUFWriter

from ownchat.models.gguf_meta import gguf_string


def test_reads_a_string_after_arrays_and_numbers(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    w = GGUFWriter(str(path), "llama")
    w.add_token_list(["<s>", "héllo", "<|im_end|>"] * 50)
    w.add_token_scores([0.5] * 150)
    w.add_uint32("llama.context_length", 64)
    w.add_chat_template("{{ '<|im_start|>' + m + '<|im_end|>' }}")
    w.add_tensor("t", np.zeros((2, 2), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    assert gguf_string(path, "tokenizer.chat_template") == "{{ '<|im_start|>' + m + '<|im_end|>' }}"
    assert gguf_string(path, "general.architecture") == "llama"
    assert gguf_string(path, "llama.context_length") is None  # not a string
    assert gguf_string(path, "missing.key") is None
    (tmp_path / "bad.gguf").write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 20)
    assert gguf_string(tmp_path / "bad.gguf", "x") is None
    assert gguf_string(tmp_path / "none.gguf", "x") is None
