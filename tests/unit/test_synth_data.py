"""Seed tasks, `ownchat data convert` and `ownchat data stats`."""

import json

from typer.testing import CliRunner

from ownchat.cli.main import app
from ownchat.data.dedup import dedup_texts
from ownchat.data.lang import detect
from ownchat.data.stats import dataset_stats, verb_noun
from ownchat.synth.seedtasks import DEFAULT_SEEDS, load_seeds


def test_shipped_seeds_are_valid_diverse_and_bilingual():
    tasks = load_seeds()
    assert len(tasks) >= 120
    assert len({t["id"] for t in tasks}) == len(tasks)
    zh = [t for t in tasks if t["language"] == "zh-TW"]
    assert len(zh) >= 30
    assert all(detect(t["instruction"]) in ("zh-TW", "zh") for t in zh)
    assert sum(t["is_classification"] for t in tasks) >= 15
    assert all(dedup_texts([t["instruction"] for t in tasks]))  # no near-duplicate seeds
    assert len(load_seeds(None, "zh-TW")) == len(zh)
    raw = [json.loads(x) for x in DEFAULT_SEEDS.read_text().splitlines()]
    assert set(raw[0]) >= {"id", "name", "instruction", "instances", "is_classification"}


def test_verb_noun():
    assert verb_noun("Write a short poem about the sea.") == ("write", "poem")
    assert verb_noun("寫一首關於海的詩") == ("寫一", None)


def _write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def test_convert_expands_self_instruct_instances(tmp_path):
    src = tmp_path / "si.jsonl"
    _write(src, [{"id": "si-1", "instruction": "Classify the sentiment.", "input": "good", "output": "positive",
                  "instances": [{"input": "good", "output": "positive"}, {"input": "bad", "output": "negative"}],
                  "provenance": {"stage": "synth"}},
                 {"id": "c-1", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}])
    r = CliRunner()
    out = tmp_path / "o.jsonl"
    res = r.invoke(app, ["data", "convert", str(src), "--to", "openai", "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["id"] for x in rows] == ["si-1-0", "si-1-1", "c-1"]
    assert rows[1]["messages"] == [{"role": "user", "content": "Classify the sentiment.\n\nbad"},
                                   {"role": "assistant", "content": "negative"}]
    assert rows[0]["provenance"] == {"stage": "synth"}
    res = r.invoke(app, ["data", "convert", str(out), "--to", "sharegpt", "--out", str(tmp_path / "s.jsonl")])
    assert res.exit_code == 0
    assert json.loads((tmp_path / "s.jsonl").read_text().splitlines()[2])["conversations"][1]["from"] == "gpt"
    bad = r.invoke(app, ["data", "convert", str(src), "--to", "yaml", "--out", str(out)])
    assert bad.exit_code == 2


def test_convert_reports_bad_line(tmp_path):
    src = tmp_path / "bad.jsonl"
    src.write_text('{"instruction": "x", "output": "y"}\n{"foo": 1}\n')
    res = CliRunner().invoke(app, ["data", "convert", str(src), "--to", "alpaca", "--out", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 2 and "bad.jsonl:2" in res.output


def test_stats_and_png(tmp_path):
    src = tmp_path / "d.jsonl"
    _write(src, [{"instruction": "Write a poem about the sea.", "input": "", "output": "Waves roll in and out."},
                 {"instruction": "Write a story about a dragon.", "input": "", "output": "Once upon a time there was."},
                 {"instruction": "寫一首關於海的詩。", "input": "", "output": "海浪輕輕拍打著沙灘。"}])
    st = dataset_stats(src)
    assert st["records"] == 3 and st["leading_verbs"][0] == ("write", 2)
    assert st["languages"] == {"en": 2, "zh-TW": 1}
    png = tmp_path / "s.png"
    res = CliRunner().invoke(app, ["data", "stats", str(src), "--png", str(png), "--json"])
    assert res.exit_code == 0, res.output
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
