"""Constraint rewrites: every variant passes IFEval's checker on all its constraints, old ones kept;
clashing or non-English records give none; the data stage rewrites training records only."""

from __future__ import annotations

import json
import random
import textwrap

from ownchat.judge.ifeval_check import check
from ownchat.recipe.load import load_recipe
from ownchat.recipe.plan import StageContext, StageResult
from ownchat.recipe.prepare import prepare_data
from ownchat.synth import constraints as cons
from ownchat.synth import rewrites as rw

ANSWER = ("Plants capture sunlight with chlorophyll in their leaves. They turn water and carbon dioxide into "
          "sugar and oxygen. The sugar feeds the plant as it grows. Oxygen leaves through tiny pores. "
          "Without sunlight the process stops.")
INSTRUCTION = "Explain how photosynthesis feeds a plant."


def _record(answer: str = ANSWER, old: list[cons.Constraint] | None = None, language: str = "en") -> dict:
    old = old or []
    prompt = cons.render(INSTRUCTION, old) if old else INSTRUCTION
    return {"id": "r1", "source": "synth",
            "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}],
            "provenance": {"teacher": "qwen", "language": language, "constraints": [c.to_dict() for c in old],
                           "terms": {"key": "apache-2.0"}}}


def test_every_variant_passes_all_its_constraints_and_keeps_the_old_ones():
    old = cons._keywords(random.Random(1), INSTRUCTION)
    assert old is not None and all(w in ANSWER.lower() for w in old.kwargs["keywords"])
    out = rw.rewrite_record(_record(old=[old]), random.Random(0), k=len(rw.REWRITES))
    added = {v["provenance"]["rewrite"]["added"] for v in out}
    # every rewrite that changes the text applies to a plain five-sentence answer
    assert {"lowercase", "quotes", "end_phrase", "postscript", "title", "json", "no_comma",
            "bullets", "parts", "highlights"} <= added
    assert "keywords" not in added  # the record already has that kind of constraint
    assert "uppercase" not in added  # clashes with keywords (constraints.CLASHES)
    for v in out:
        user, answer = v["messages"][0]["content"], v["messages"][1]["content"]
        every = v["provenance"]["constraints"]
        assert every[0] == old.to_dict() and len(every) == 2
        assert user.startswith(INSTRUCTION) and user.endswith(every[1]["text"])
        assert check(answer, user, [c["id"] for c in every], [c["kwargs"] for c in every]).prompt_strict
        assert v["provenance"]["rewrite"]["of"] == "r1" and v["provenance"]["teacher"] == "qwen"
    by = {v["provenance"]["rewrite"]["added"]: v["messages"][1]["content"] for v in out}
    assert by["lowercase"] == ANSWER.lower() and by["quotes"] == f'"{ANSWER}"'
    assert json.loads(by["json"]) == {"answer": ANSWER}
    assert by["bullets"].count("\n* ") == by["bullets"].count("\n")  # one sentence group per line


def test_rewrites_that_break_the_checker_or_clash_are_dropped(monkeypatch):
    upper = cons._upper(random.Random(0), INSTRUCTION)
    out = rw.rewrite_record(_record(ANSWER.upper(), [upper]), random.Random(0), k=len(rw.REWRITES))
    assert {v["provenance"]["rewrite"]["added"] for v in out}.isdisjoint({"lowercase", "title", "end_phrase"})
    # a rewrite whose text fails its own constraint is never kept: the checker decides, not the code
    monkeypatch.setitem(rw.REWRITES, "quotes", lambda a, *_: a)
    out = rw.rewrite_record(_record(), random.Random(0), k=len(rw.REWRITES))
    assert "quotes" not in {v["provenance"]["rewrite"]["added"] for v in out}


def test_non_english_or_multi_turn_records_are_left_alone_and_reruns_repeat():
    assert rw.rewrite_record(_record(language="fr"), random.Random(0), 4) == []
    multi = _record()
    multi["messages"] += [{"role": "user", "content": "More?"}, {"role": "assistant", "content": "No."}]
    assert rw.rewrite_record(multi, random.Random(0), 4) == []
    assert rw.rewrite_all([_record()], 3, seed=5) == rw.rewrite_all([_record()], 3, seed=5)
    assert len(rw.rewrite_all([_record()], 3, seed=5)) == 3


def test_data_stage_rewrites_training_records_only(tmp_path):
    run = tmp_path / "run"
    (run / "stages/synth").mkdir(parents=True)
    topics = ["rain", "tides", "volcanoes", "glaciers", "deserts", "comets", "coral reefs", "thunder"]
    rows = []
    for i, t in enumerate(topics):
        rec = _record(ANSWER.replace("Plants", t.capitalize()))
        rows.append({"id": f"s{i}", "messages": [{"role": "user", "content": f"Explain how {t} form, step by step."},
                                                 rec["messages"][1]], "provenance": rec["provenance"]})
    (run / "stages/synth/data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    rp = tmp_path / "r.yaml"
    rp.write_text(textwrap.dedent("""\
        name: t
        teacher: {model: qwen2.5-coder-1.5b-instruct}
        students: [{name: a, base: smollm2-135m-instruct}]
        synth: {method: answer, constraints: true, rewrites: 2, n: 8, filters: {dedup: false}}
        eval: {heldout: 2, ifeval: null}
        """))
    r = load_recipe(rp)
    ctx = StageContext(run, run / "stages/data",
                       {"synth": StageResult(artifacts={"data": "stages/synth/data.jsonl"})}, log=lambda m: None)
    ctx.dir.mkdir(parents=True)
    res = prepare_data(r, ctx)
    held = {json.loads(x)["id"] for x in (run / res.artifacts["heldout"]).read_text().splitlines()}
    train = [json.loads(x) for x in (run / res.artifacts["train"]).read_text().splitlines()]
    variants = [t for t in train if "rewrite" in t["provenance"]]
    assert len(held) == 2 and res.summary["filters"]["added: constraint rewrites"] == len(variants) == 12
    assert {v["provenance"]["rewrite"]["of"] for v in variants} == {t["id"] for t in train} - held - {
        v["id"] for v in variants}
    assert res.summary["records"] == 6 + 12


def test_cli_writes_records_and_variants_and_never_overwrites_its_input(tmp_path):
    from typer.testing import CliRunner

    from ownchat.cli.main import app

    src = tmp_path / "answers.jsonl"
    src.write_text(json.dumps(_record()) + "\n")
    out = tmp_path / "more.jsonl"
    res = CliRunner().invoke(app, ["data", "rewrite", str(src), "-o", str(out), "--per-answer", "3", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output.strip().splitlines()[-1])["variants"] == 3
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 4 and rows[0]["messages"] == _record()["messages"]
    before = src.read_text()
    res = CliRunner().invoke(app, ["data", "rewrite", str(src), "-o", str(src)])
    assert res.exit_code == 2 and "is the input file" in res.output and src.read_text() == before


def test_changing_rewrites_reruns_the_data_stage_but_not_the_teacher(tmp_path):
    from ownchat.recipe.plan import compute_keys
    from ownchat.recipe.stages import build_stages

    def keys(extra: str) -> dict[str, str]:
        rp = tmp_path / "r.yaml"
        rp.write_text(textwrap.dedent(f"""\
            name: t
            teacher: {{model: qwen2.5-coder-1.5b-instruct}}
            students: [{{name: a, base: smollm2-135m-instruct}}]
            synth: {{method: answer, constraints: true, n: 8{extra}}}
            judge: null
            """))
        return compute_keys(build_stages(load_recipe(rp)))

    none, zero, three = keys(""), keys(", rewrites: 0"), keys(", rewrites: 3")
    assert none == zero  # leaving it out and 0 are the same run: earlier runs keep their keys
    assert three["synth"] == none["synth"] and three["data"] != none["data"]
