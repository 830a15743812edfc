"""The data stage: merge teacher output with user files, filter, dedup, tally licences (no model)."""

from __future__ import annotations

import json
import textwrap

from ownchat.recipe.load import load_recipe
from ownchat.recipe.plan import StageContext, StageResult
from ownchat.recipe.prepare import _lang_ok, prepare_data


def _write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def test_merge_filter_dedup_and_licence_tally(tmp_path):
    run = tmp_path / "run"
    (run / "stages/synth").mkdir(parents=True)
    apache = {"key": "apache-2.0", "commercial": True, "note": "permissive"}
    synth = [
        {"instruction": "Name a fruit.", "output": "An apple is a fruit.", "provenance": {"teacher": "qwen", "terms": apache}},
        {"instruction": "name a fruit. ", "output": "A pear.", "provenance": {"teacher": "qwen", "terms": apache}},
        {"instruction": "Tell me a secret.", "output": "As an AI language model, I cannot.",
         "provenance": {"teacher": "qwen", "terms": apache}},
        {"instruction": "Say hi.", "output": "", "provenance": {"teacher": "qwen", "terms": apache}},
        {"instruction": "Explain rain.", "output": "Water vapour condenses into drops that fall.",
         "provenance": {"teacher": "qwen", "terms": apache}},
    ]
    _write(run / "stages/synth/data.jsonl", synth)
    _write(tmp_path / "dolly.jsonl", [{"instruction": "What is a river?", "context": "",
                                       "response": "A natural stream of water flowing to the sea."}])
    rp = tmp_path / "r.yaml"
    rp.write_text(textwrap.dedent("""\
        name: t
        teacher: {model: qwen2.5-coder-1.5b-instruct}
        students: [{name: a, base: smollm2-135m-instruct}]
        synth: {n: 5, filters: {min_chars: 5}}
        data: [{path: dolly.jsonl, license: cc-by-sa-3.0}]
        """))
    r = load_recipe(rp)
    ctx = StageContext(run, run / "stages/data",
                       {"synth": StageResult(artifacts={"data": "stages/synth/data.jsonl"})}, log=lambda m: None)
    ctx.dir.mkdir(parents=True)
    res = prepare_data(r, ctx)
    f = res.summary["filters"]
    assert f["input"] == 6 and f["kept"] == 3
    assert f["dropped: duplicate prompt"] == 1 and f["dropped: refusal"] == 1 and f["dropped: empty answer"] == 1
    assert res.summary["by_source"] == {"synth": 2, "dolly.jsonl": 1}
    train = [json.loads(x) for x in (run / res.artifacts["train"]).read_text().splitlines()]
    assert all(t["messages"][-1]["role"] == "assistant" and t["provenance"] for t in train)
    prompts = [json.loads(x) for x in (run / res.artifacts["prompts"]).read_text().splitlines()]
    assert all(p["messages"][-1]["role"] == "user" for p in prompts) and len(prompts) == 3
    tally = {i["what"]: i["terms"]["key"] for i in res.licences}
    assert tally == {"2 training records from qwen": "apache-2.0", "1 training records from dolly.jsonl": "cc-by-sa-3.0"}


def test_traditional_chinese_filter():
    assert _lang_ok("這是一個關於台灣的說明，我們會來看看。", "zh-TW")
    assert not _lang_ok("这是一个关于台湾的说明，我们会来看看。", "zh-TW")
    assert not _lang_ok("This answer is in English.", "zh-TW")
    assert _lang_ok("Anything goes", None) and _lang_ok("这是简体", "zh-CN")
