"""The judge-validation known-answer set: schema, counts, and the property each kind is built on.

`ownchat judge validate` trusts that `better` beats `worse` in every pair; these tests check the
constructions that make that true (a reference only the better side states, a truncation that is a
prefix cut mid-sentence, the user's language on the better side only, IFEval instructions that the
better side passes and the worse side breaks) and that length alone cannot tell the sides apart.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import ownchat

PAIRS = Path(ownchat.__file__).parent / "judge" / "validation" / "pairs.jsonl"

KEYS = {"id", "lang", "kind", "category", "question", "reference", "better", "worse", "why", "ifeval"}
CATEGORIES = {"writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities"}
# Minimum pairs per (kind, lang), from the set's specification.
MINIMUM = {
    ("wrong", "en"): 14, ("wrong", "zh-TW"): 6,
    ("off_topic", "en"): 10, ("off_topic", "zh-TW"): 6,
    ("truncated", "en"): 10, ("truncated", "zh-TW"): 6,
    ("language", "en"): 6, ("language", "zh-TW"): 6,
    ("instruction", "en"): 10, ("instruction", "zh-TW"): 6,
}
# Characters that exist only in Simplified Chinese (their Traditional forms are 這們說國時為會對沒個來過還).
SIMPLIFIED_ONLY = set("这们说国时为会对没个来过还")
# IFEval checkers that need nltk's punkt data or word_tokenize, which an offline machine may lack.
NEEDS_NLTK_DATA = {"length_constraints:number_sentences", "change_case:capital_word_frequency"}
SENTENCE_END = tuple(".!?。！？…")


def _load() -> list[dict]:
    rows = []
    with PAIRS.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            assert line.strip(), f"{PAIRS}:{n}: blank line"
            rows.append(json.loads(line))
    return rows


ROWS = _load()


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_schema_and_ids():
    ids = [r["id"] for r in ROWS]
    assert len(ids) == len(set(ids)), [i for i, c in Counter(ids).items() if c > 1]
    for r in ROWS:
        assert set(r) == KEYS, r["id"]
        assert r["lang"] in {"en", "zh-TW"} and r["category"] in CATEGORIES, r["id"]
        prefix = "en" if r["lang"] == "en" else "zh"
        assert re.fullmatch(rf"{prefix}-{r['kind']}-\d\d", r["id"]), r["id"]
        for key in ("question", "better", "worse", "why"):
            assert isinstance(r[key], str) and r[key].strip() == r[key] and r[key], (r["id"], key)
        assert r["better"] != r["worse"], r["id"]
        assert (r["reference"] is not None) == (r["kind"] == "wrong"), r["id"]
        assert (r["ifeval"] is not None) == (r["kind"] == "instruction"), r["id"]


def test_counts_per_kind_and_language_and_categories():
    counts = Counter((r["kind"], r["lang"]) for r in ROWS)
    assert set(counts) == set(MINIMUM)
    for key, least in MINIMUM.items():
        assert counts[key] >= least, (key, counts[key])
    assert len(ROWS) >= 80
    assert {r["category"] for r in ROWS} == CATEGORIES
    for lang in ("en", "zh-TW"):
        assert len({r["category"] for r in ROWS if r["lang"] == lang}) >= 7, lang


def test_zh_tw_pairs_are_traditional_chinese():
    for r in ROWS:
        if r["lang"] != "zh-TW":
            continue
        assert _has_cjk(r["question"]) and _has_cjk(r["better"]), r["id"]
        for key in ("question", "better", "worse", "why"):
            bad = SIMPLIFIED_ONLY & set(r[key])
            assert not bad, (r["id"], key, bad)


def test_wrong_pairs_only_the_better_side_states_the_reference():
    for r in (r for r in ROWS if r["kind"] == "wrong"):
        assert r["reference"] in r["better"], r["id"]
        assert r["reference"] not in r["worse"], r["id"]


def test_truncated_pairs_are_a_prefix_cut_mid_sentence():
    for r in (r for r in ROWS if r["kind"] == "truncated"):
        better, worse = r["better"], r["worse"]
        assert better.startswith(worse), r["id"]
        assert 0.25 <= len(worse) / len(better) <= 0.45, r["id"]
        assert not worse.endswith(SENTENCE_END) and not worse.endswith("..."), r["id"]
        assert worse[-1].isalnum() or _has_cjk(worse[-1]), r["id"]


def test_language_pairs_answer_in_the_users_language_only_on_the_better_side():
    import langdetect  # comes with if-verifiable, the IFEval checker library

    langdetect.DetectorFactory.seed = 0

    def detect(text: str) -> str:
        # langdetect mistakes short Chinese for Korean now and then; the script decides Chinese.
        letters = [ch for ch in text if ch.isalpha()]
        if sum(map(_has_cjk, letters)) > len(letters) / 2:
            return "zh"
        return langdetect.detect(text)

    def same(text: str, lang: str) -> bool:
        return detect(text) == ("en" if lang == "en" else "zh")

    for r in (r for r in ROWS if r["kind"] == "language"):
        assert same(r["better"], r["lang"]), r["id"]
        assert not same(r["worse"], r["lang"]), r["id"]


def test_instruction_pairs_follow_and_break_their_ifeval_instructions():
    # Not skipped when missing: this set is only as good as the checks below.
    import langdetect
    from if_verifiable.common import evaluate_instructions
    from if_verifiable.ifeval.instructions_registry import INSTRUCTION_DICT

    langdetect.DetectorFactory.seed = 0
    used: set[str] = set()
    for r in (r for r in ROWS if r["kind"] == "instruction"):
        ids, kwargs = r["ifeval"]["instruction_id_list"], r["ifeval"]["kwargs"]
        assert set(r["ifeval"]) == {"instruction_id_list", "kwargs"}, r["id"]
        assert ids and len(ids) == len(kwargs), r["id"]
        assert all(i in INSTRUCTION_DICT and i not in NEEDS_NLTK_DATA for i in ids), r["id"]
        used.update(ids)
        good, _ = evaluate_instructions(r["better"], ids, kwargs, r["question"], INSTRUCTION_DICT)
        bad, _ = evaluate_instructions(r["worse"], ids, kwargs, r["question"], INSTRUCTION_DICT)
        # The library skips unknown ids silently: make sure every instruction was really checked.
        assert len(good) == len(bad) == len(ids), r["id"]
        assert all(x.strict_pass for x in good), (r["id"], [x for x in good if not x.strict_pass])
        assert not all(x.strict_pass for x in bad), r["id"]
    assert len(used) >= 10, sorted(used)


def test_length_does_not_decide():
    """Over the kinds where length is free, `better` is the longer side in 30-70% of pairs."""
    rows = [r for r in ROWS if r["kind"] != "truncated"]
    score = sum(1.0 if len(r["better"]) > len(r["worse"]) else 0.5 if len(r["better"]) == len(r["worse"])
                else 0.0 for r in rows)
    share = score / len(rows)
    print(f"better is the longer side in {share:.1%} of {len(rows)} non-truncated pairs")
    assert 0.3 <= share <= 0.7
    # Within a language, the two sides of wrong/off_topic pairs have comparable length.
    for r in (r for r in rows if r["kind"] in {"wrong", "off_topic"}):
        ratio = len(r["better"]) / len(r["worse"])
        assert 0.6 <= ratio <= 1.6, (r["id"], round(ratio, 2))
