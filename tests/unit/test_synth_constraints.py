"""Constraint templates: each one's IFEval checker on a passing and a failing answer; no IFEval overlap;
answer --constraints keeps only answers that pass, retrying with sample indices."""

from __future__ import annotations

import json
import random

import pytest

from ownchat.data.formats import to_messages
from ownchat.engines.base import Completion, Engine
from ownchat.engines.cache import CachedEngine, ResponseCache
from ownchat.judge.ifeval_check import check
from ownchat.synth import SynthConfig, run_synth
from ownchat.synth import constraints as cons
from ownchat.synth.seedtasks import load_seeds

INSTRUCTION = "Explain how photosynthesis turns sunlight into chemical energy in plants."
_LANG_TEXT = {
    "fr": "La photosynthèse permet aux plantes de transformer la lumière du soleil en énergie chimique utile.",
    "de": "Die Photosynthese erlaubt den Pflanzen, das Sonnenlicht in nutzbare chemische Energie umzuwandeln.",
    "es": "La fotosíntesis permite a las plantas transformar la luz del sol en energía química útil para vivir.",
    "it": "La fotosintesi permette alle piante di trasformare la luce del sole in energia chimica utile.",
    "pt": "A fotossíntese permite que as plantas transformem a luz do sol em energia química útil para viver.",
}
_EN = "Plants capture sunlight with chlorophyll and store its energy as sugar for later use."


def answers(c: cons.Constraint) -> tuple[str, str]:
    """(an answer that follows ``c``, one that does not), written from its IFEval arguments."""
    k, iid = c.kwargs, c.instruction_id
    if iid == "length_constraints:number_words":
        n = k["num_words"]
        many = " ".join(f"word{i}" for i in range(n + 5))
        return ("Plants make sugar.", many) if k["relation"] == "less than" else (many, "Plants make sugar.")
    if iid == "detectable_format:number_bullet_lists":
        n = k["num_bullets"]
        return "\n".join(f"* point {i}" for i in range(n)), "\n".join(f"* point {i}" for i in range(n + 1))
    if iid == "detectable_format:multiple_sections":
        s, n = k["section_spliter"], k["num_sections"]
        return "\n".join(f"{s} {i}\nSome text." for i in range(1, n + 1)), f"{s} 1\nOnly one part here."
    if iid == "detectable_format:number_highlighted_sections":
        return " ".join("*a key phrase*" for _ in range(k["num_highlights"])), "Nothing is emphasised here."
    if iid == "keywords:existence":
        return "Here: " + " ".join(k["keywords"]) + ".", "Plants are green."
    if iid == "keywords:forbidden_words":
        return "Plants are green.", f"Plants are {k['forbidden_words'][0]} green."
    if iid == "change_case:english_lowercase":
        return _EN.lower(), _EN
    if iid == "change_case:english_capital":
        return _EN.upper(), _EN
    if iid == "detectable_format:json_format":
        return '{"answer": "plants store energy as sugar"}', "plants store energy as sugar"
    if iid == "startend:end_checker":
        return f"{_EN} {k['end_phrase']}", f"{k['end_phrase']} {_EN}"
    if iid == "startend:quotation":
        return f'"{_EN}"', _EN
    if iid == "detectable_format:title":
        return f"<<How Plants Eat>>\n{_EN}", f"How Plants Eat\n{_EN}"
    if iid == "detectable_content:postscript":
        return f"{_EN}\n\n{k['postscript_marker']} Water them often.", _EN
    if iid == "punctuation:no_comma":
        return _EN, "Plants, in short, store energy."
    if iid == "language:response_language":
        return _LANG_TEXT[k["language"]], _EN
    raise AssertionError(f"no test answers for {iid}")


@pytest.mark.parametrize("name", sorted(cons.TEMPLATES))
def test_every_template_checker_passes_and_fails(name):
    for seed in range(6):  # several draws: every wording and argument range
        c = cons.TEMPLATES[name](random.Random(seed), INSTRUCTION)
        assert c is not None and c.text and c.instruction_id
        good, bad = answers(c)
        prompt = cons.render(INSTRUCTION, [c])
        assert check(good, prompt, [c.instruction_id], [c.kwargs]).prompt_strict, (name, c, good)
        assert not check(bad, prompt, [c.instruction_id], [c.kwargs]).prompt_strict, (name, c, bad)


def test_pick_draws_compatible_pairs_deterministically():
    for seed in range(300):
        a = cons.pick(random.Random(seed), INSTRUCTION)
        b = cons.pick(random.Random(seed), INSTRUCTION)
        assert a == b and 1 <= len(a) <= 2
        names = {x.instruction_id for x in a}
        assert len(names) == len(a)  # never the same check twice
        assert not {"change_case:english_lowercase", "change_case:english_capital"} <= names
        if "detectable_format:json_format" in names:
            assert len(a) == 1 or names & {"keywords:existence", "keywords:forbidden_words",
                                           "length_constraints:number_words"}


@pytest.fixture(scope="module")
def guard():
    from ownchat.models.store import installed

    if installed("ifeval") is None:
        pytest.skip("needs the ifeval pack: ownchat models pull ifeval")
    return cons.IFEvalGuard.from_pack()


def test_constraint_prompts_never_overlap_ifeval(guard):
    assert len(guard.prompts) == 541
    seeds = [to_messages(t, require_answer=False)[0]["content"] for t in load_seeds(None, "en")]  # with inputs
    texts = set()
    for i, inst in enumerate(seeds):
        for s in range(4):
            chosen = cons.pick(random.Random(f"{i}-{s}"), inst)
            texts.add(cons.render(inst, chosen))
            texts.update(c.text for c in chosen)
    for make in cons.TEMPLATES.values():  # every wording of every template on its own
        for s in range(40):
            c = make(random.Random(s), INSTRUCTION)
            texts.add(c.text)
    bad = [t for t in sorted(texts) if guard.overlaps(t)]
    assert not bad, bad[:5]


def test_guard_catches_ifeval_prompts_and_near_copies(guard):
    rng = random.Random(0)
    for p in rng.sample(guard.prompts, 40):
        assert guard.overlaps(p)
        words = p.split()
        words[len(words) // 2] = "banana"  # one word changed is still a copy
        assert guard.overlaps(" ".join(words))
    # a sentence of IFEval's own constraint wording is caught on its own too
    assert guard.overlaps("Your entire response should be in English, and in all capital letters.")


class OneConstraintTeacher(Engine):
    """Uses commas in sample 0; sample 1 follows the rule unless the question says 'stubborn'."""

    name, model_id, max_concurrency = "commas", "commas:1", 2

    def generate(self, req):
        q = req.messages[-1]["content"]
        if req.sample_index == 0 or "stubborn" in q:
            return Completion("Well, yes, plants, as you know, store energy as sugar.", "stop", 5, 9)
        return Completion("Plants store the energy of sunlight as sugar in their leaves.", "stop", 5, 9)


def test_answer_constraints_keeps_only_passing_answers(tmp_path, monkeypatch, guard):
    no_comma = cons.Constraint("punctuation:no_comma", {}, "Commas are banned: write every sentence without one.")
    monkeypatch.setattr(cons, "pick", lambda rng, inst, max_constraints=2: [no_comma])
    src = tmp_path / "q.jsonl"
    rows = [{"id": "a", "instruction": "Tell me how plants store the energy of sunlight."},
            {"id": "b", "instruction": "Tell me, stubborn as I am, how leaves work in autumn."},
            {"id": "c", "instruction": guard.prompts[7]}]  # an IFEval prompt: never used
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    eng = CachedEngine(OneConstraintTeacher(), ResponseCache(tmp_path / "c.sqlite"))
    cfg = SynthConfig(mode="answer", out=tmp_path / "o.jsonl", n=10, inputs=src, constraints=True,
                      constraint_samples=2, concurrency=2)
    res = run_synth(cfg, log=lambda m: None, engine=eng)
    recs = [json.loads(x) for x in cfg.out.read_text().splitlines()]
    assert [r["source_id"] for r in recs] == ["a"] and res.kept == 1
    assert recs[0]["instruction"].endswith(no_comma.text) and "," not in recs[0]["output"]
    assert recs[0]["instruction_id_list"] == ["punctuation:no_comma"]
    assert recs[0]["provenance"]["sample_index"] == 1
    assert recs[0]["provenance"]["constraints"][0]["id"] == "punctuation:no_comma"
    assert res.filtered == {"constraint_failed:punctuation:no_comma": 1, "ifeval_overlap": 1}
    assert res.checks == {"punctuation:no_comma:fail": 3, "punctuation:no_comma:pass": 1}
    calls = eng.calls
    again = run_synth(cfg, log=lambda m: None, engine=eng)  # finished: nothing asked again
    assert again.kept == 1 and eng.calls == calls


class RecordingTeacher(Engine):
    """Answers every request with one plain sentence and keeps the user turns it was sent."""

    name, model_id, max_concurrency = "rec", "rec:1", 2

    def __init__(self) -> None:
        self.seen: list[str] = []

    def generate(self, req):
        self.seen.append(req.messages[-1]["content"])
        return Completion("Plants store the energy of sunlight as sugar in their leaves", "stop", 5, 9)


@pytest.mark.parametrize("constraints", [True, False])
def test_answer_mode_sends_a_seed_task_with_its_input(tmp_path, monkeypatch, guard, constraints):
    # the shipped seeds keep their input in ``instances``: it was dropped before 2026-12-02
    no_comma = cons.Constraint("punctuation:no_comma", {}, "Commas are banned: write every sentence without one.")
    monkeypatch.setattr(cons, "pick", lambda rng, inst, max_constraints=2: [no_comma])
    src = tmp_path / "seeds.jsonl"
    seed = {"id": "s1", "instruction": "Summarise the note below in one sentence.",
            "instances": [{"input": "Photosynthesis turns light into sugar.", "output": "Leaves make sugar."}]}
    src.write_text(json.dumps(seed) + "\n")
    teacher = RecordingTeacher()
    cfg = SynthConfig(mode="answer", out=tmp_path / "o.jsonl", n=1, inputs=src, constraints=constraints,
                      constraint_samples=1, concurrency=1)
    run_synth(cfg, log=lambda m: None, engine=teacher)
    assert len(teacher.seen) == 1 and "Photosynthesis turns light into sugar." in teacher.seen[0]
    (rec,) = [json.loads(x) for x in cfg.out.read_text().splitlines()]
    assert "Photosynthesis turns light into sugar." in to_messages(rec)[0]["content"]
