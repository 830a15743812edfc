"""SFTConfig: YAML + flags, FILE:WEIGHT parsing, every error listed at once."""

from __future__ import annotations

import pytest

from ownchat.errors import UserError
from ownchat.train.config import SFTConfig, load_config, parse_data_arg


def test_parse_data_arg(tmp_path):
    f = tmp_path / "a.jsonl"
    f.write_text("{}\n")
    assert parse_data_arg(f"{f}:2") == (f, 2.0)
    assert parse_data_arg(f"{f}:0.5") == (f, 0.5)
    assert parse_data_arg(str(f)) == (f, None)
    odd = tmp_path / "b:c.jsonl"  # an existing path with a colon is a path, not a weight
    odd.write_text("{}\n")
    assert parse_data_arg(str(odd)) == (odd, None)


def test_weights_from_data_args(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("{}\n")
    b.write_text("{}\n")
    cfg = SFTConfig(model="m", data=[f"{a}:2", str(b)], out=tmp_path / "o")
    assert cfg.data == [a, b] and cfg.data_weights == [2.0, 1.0]


def test_validate_lists_every_error(tmp_path):
    cfg = SFTConfig(model="m", data=[tmp_path / "missing.jsonl"], out=tmp_path / "o", method="lorra", lr=5,
                    batch_size=0, eval_fraction=0.9)
    with pytest.raises(UserError) as exc:
        cfg.validate()
    msg = str(exc.value)
    for needle in ("file not found", "method", "lr", "batch_size", "eval_fraction"):
        assert needle in msg


def test_yaml_then_flags(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text("{}\n")
    y = tmp_path / "c.yaml"
    y.write_text(f"model: smollm2-135m-instruct\ndata: [{data}]\nout: {tmp_path / 'o'}\nlr: 0.001\nepochs: 3\n")
    cfg = load_config(y, {"epochs": 2, "seq_len": None})
    assert cfg.lr == 0.001 and cfg.epochs == 2 and cfg.seq_len == 512


def test_unknown_yaml_key(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("model: m\ndata: [x]\nout: o\nlearning_rate: 0.1\n")
    with pytest.raises(UserError, match="learning_rate"):
        load_config(y, {})
