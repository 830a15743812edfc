"""IFEval's checkers, offline, on answers that must pass and answers that must fail.

One case for every instruction type the 541 prompts use. Run in a fresh ``OWNCHAT_HOME`` with
nltk's own data folders pointed at an empty directory: the sentence counter and word tokenizer must
work from the punkt tables ownchat writes, with no download.
"""

from __future__ import annotations

import pytest

LONG = " ".join(["word"] * 320)

# (instruction id, kwargs, an answer that follows it, an answer that does not)
CASES = [
    ("change_case:capital_word_frequency", {"capital_relation": "less than", "capital_frequency": 3},
     "Only ONE shouted word here.", "THIS HAS FAR TOO MANY SHOUTED WORDS."),
    ("change_case:english_capital", {}, "THIS ANSWER IS WRITTEN IN CAPITAL LETTERS ONLY.",
     "This answer is written in mixed case."),
    ("change_case:english_lowercase", {}, "this answer is written in lowercase letters only.",
     "This answer starts with a capital."),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Name a colour."},
     "Name a colour. Blue is a colour.", "Blue is a colour."),
    ("combination:two_responses", {}, "Tea is calming.\n******\nCoffee is energising.",
     "Tea is calming. Coffee is energising."),
    ("detectable_content:number_placeholders", {"num_placeholders": 2},
     "Send it to [name] at [address].", "Send it to Ana at home."),
    ("detectable_content:postscript", {"postscript_marker": "P.S."},
     "See you soon.\n\nP.S. Bring snacks.", "See you soon. Bring snacks."),
    ("detectable_format:constrained_response", {}, "My answer is yes.", "Probably, I think so."),
    ("detectable_format:json_format", {}, '{"city": "Taipei", "population": 2.5}', "city: Taipei"),
    ("detectable_format:multiple_sections", {"section_spliter": "SECTION", "num_sections": 2},
     "SECTION 1\nIntro text.\nSECTION 2\nMore text.", "Intro text.\nMore text."),
    ("detectable_format:number_bullet_lists", {"num_bullets": 3},
     "* apples\n* pears\n* plums", "* apples\n* pears"),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2},
     "Here is *one part* and *another part*.", "Here is *one part* only."),
    ("detectable_format:title", {}, "<<A Rainy Day>>\nIt rained all day.", "A Rainy Day\nIt rained all day."),
    ("keywords:existence", {"keywords": ["harbour", "lantern"]},
     "The lantern lit the harbour.", "The lamp lit the port."),
    ("keywords:forbidden_words", {"forbidden_words": ["rock"]}, "Stones and pebbles.", "A rock and a stone."),
    ("keywords:frequency", {"relation": "at least", "keyword": "story", "frequency": 2},
     "A story within a story.", "A story within a tale."),
    ("keywords:letter_frequency", {"let_relation": "at least", "letter": "z", "let_frequency": 3},
     "Zebras zigzag in a maze.", "Horses gallop in a field."),
    ("language:response_language", {"language": "de"},
     "Das Wetter ist heute sehr schön und wir gehen in den Park spazieren.",
     "The weather is very nice today and we are going for a walk in the park."),
    ("length_constraints:nth_paragraph_first_word", {"first_word": "weekend", "num_paragraphs": 2,
                                                     "nth_paragraph": 2},
     "Plans are set.\n\nWeekend trips are fun.", "Plans are set.\n\nTrips are fun on the weekend."),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "First part.\n***\nSecond part.",
     "First part.\n***\nSecond part.\n***\nThird part."),
    ("length_constraints:number_sentences", {"relation": "less than", "num_sentences": 3},
     "Dr. Smith arrived at 5 p.m. today. He left soon after.",
     "One sentence here. Another one there. A third one. And a fourth."),
    ("length_constraints:number_words", {"relation": "at least", "num_words": 300}, LONG, "Too short."),
    ("punctuation:no_comma", {}, "No commas in this line.", "Commas, however, appear here."),
    ("startend:end_checker", {"end_phrase": "Any other questions?"},
     "That is all. Any other questions?", "Any other questions? That is all."),
    ("startend:quotation", {}, '"The whole answer is quoted."', "The answer is not quoted."),
]


@pytest.fixture
def fresh_home(tmp_path, monkeypatch):
    monkeypatch.setenv("OWNCHAT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NLTK_DATA", str(tmp_path / "empty_nltk"))
    import nltk

    from ownchat.judge import ifeval_check

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "empty_nltk")])
    monkeypatch.setattr(ifeval_check, "_ready", False)
    return tmp_path / "home"


def test_every_instruction_type_of_ifeval_has_a_case():
    from ownchat.judge.ifeval_check import registry

    used_by_ifeval = {
        "change_case:capital_word_frequency", "change_case:english_capital", "change_case:english_lowercase",
        "combination:repeat_prompt", "combination:two_responses", "detectable_content:number_placeholders",
        "detectable_content:postscript", "detectable_format:constrained_response", "detectable_format:json_format",
        "detectable_format:multiple_sections", "detectable_format:number_bullet_lists",
        "detectable_format:number_highlighted_sections", "detectable_format:title", "keywords:existence",
        "keywords:forbidden_words", "keywords:frequency", "keywords:letter_frequency", "language:response_language",
        "length_constraints:nth_paragraph_first_word", "length_constraints:number_paragraphs",
        "length_constraints:number_sentences", "length_constraints:number_words", "punctuation:no_comma",
        "startend:end_checker", "startend:quotation"}
    assert {c[0] for c in CASES} == used_by_ifeval
    assert used_by_ifeval <= set(registry())


@pytest.mark.parametrize("iid,kwargs,good,bad", CASES, ids=[c[0] for c in CASES])
def test_checker_passes_and_fails(fresh_home, iid, kwargs, good, bad):
    from ownchat.judge.ifeval_check import check

    prompt = kwargs.get("prompt_to_repeat", "a prompt")
    assert check(good, prompt, [iid], [kwargs]).strict == (True,)
    assert check(bad, prompt, [iid], [kwargs]).strict == (False,)


def test_punkt_comes_from_ownchat_home_not_a_download(fresh_home):
    from ownchat.judge.ifeval_check import check

    check("One. Two.", "p", ["length_constraints:number_sentences"], [{"relation": "less than",
                                                                       "num_sentences": 3}])
    tables = fresh_home / "nltk_data" / "tokenizers" / "punkt_tab" / "english"
    assert sorted(p.name for p in tables.iterdir()) == ["abbrev_types.txt", "collocations.tab", "ortho_context.tab",
                                                       "sent_starters.txt"]
    import nltk

    # the abbreviation table is the real one: "Dr." and "p.m." do not end sentences
    assert len(nltk.sent_tokenize("Dr. Smith came at 5 p.m. today. He left.")) == 2


def test_loose_accepts_a_stray_first_line_and_empty_answers_fail_every_instruction():
    from ownchat.judge.ifeval_check import check

    c = check("Sure, here it is:\nno commas here", "p", ["punctuation:no_comma"], [{}])
    assert c.strict == (False,) and c.loose == (True,)
    empty = check("", "p", ["punctuation:no_comma", "startend:quotation"], [{}, {}])
    assert empty.strict == (False, False) and empty.loose == (False, False) and not empty.prompt_loose
