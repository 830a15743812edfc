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


def test_problems_name_the_flag_or_the_yaml_line(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text("{}\n")
    y = tmp_path / "c.yaml"
    y.write_text(f"model: m\ndata: [{data}]\nout: {tmp_path / 'o'}\nwarmup_ratio: 2\n")
    with pytest.raises(UserError) as exc:
        load_config(y, {"lr": 7.0, "batch_size": 0})
    msg = str(exc.value)
    assert f"{y}:4 warmup_ratio: must be in [0, 1)" in msg
    assert "--lr: must be in (0, 1), got 7.0" in msg and "--batch-size: must be a positive integer" in msg


def test_preference_configs_list_every_problem_by_flag(tmp_path):
    from ownchat.train.dpo import DPOConfig
    from ownchat.train.rm import RMConfig

    cfg = DPOConfig(model="m", data=tmp_path / "missing.jsonl", out=tmp_path / "o", beta=0, loss_type="kto",
                    label_smoothing=0.7, seq_len=8, grad_accum=0)
    with pytest.raises(UserError) as exc:
        cfg.from_flags(["data", "beta", "loss_type", "label_smoothing", "seq_len", "grad_accum"]).validate()
    msg = str(exc.value)
    for needle in ("--data: file not found", "--beta: must be > 0", "--loss: 'kto' is not one of",
                   "--label-smoothing: must be in [0, 0.5)", "--seq-len: must be at least 16",
                   "--grad-accum: must be a positive integer"):
        assert needle in msg, msg
    # from Python (or a recipe that names its fields) the same problem names the field
    with pytest.raises(UserError) as exc:
        DPOConfig(model="m", data=tmp_path / "missing.jsonl", out=tmp_path / "o", beta=-1).validate()
    assert "beta: must be > 0" in str(exc.value) and "--beta" not in str(exc.value)
    with pytest.raises(UserError) as exc:
        RMConfig(model="m", data=tmp_path / "missing.jsonl", out=tmp_path / "o", center_coef=-1, lr=3
                 ).from_flags(["center_coef"]).validate()
    assert "--center: must be a number >= 0" in str(exc.value) and "lr: must be in (0, 1)" in str(exc.value)


def test_recipe_values_are_named_as_the_recipe_names_them(tmp_path):
    from ownchat.recipe.stages.common import recipe_labels as _recipe_labels
    from ownchat.train.dpo import DPOConfig

    pairs = tmp_path / "p.jsonl"
    pairs.write_text("{}\n")
    cfg = DPOConfig(model="m", data=pairs, out=tmp_path / "o", beta=0.1, label_smoothing=0.9, lr=2)
    _recipe_labels(cfg, "dpo", {"label_smoothing": 0.9})
    with pytest.raises(UserError) as exc:
        cfg.validate()
    assert "recipe dpo.options.label_smoothing: must be in [0, 0.5)" in str(exc.value)
    assert "recipe dpo.lr: must be in (0, 1)" in str(exc.value)
