"""The fast ROUGE-L filter must make exactly rouge-score's decisions."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from rouge_score import rouge_scorer
from rouge_score import tokenize as rs_tokenize

from ownchat.data.dedup import DedupIndex, dedup_texts, lcs_length, rouge_l, tokenize

SCORER = rouge_scorer.RougeScorer(["rougeL"])

# Few distinct words, so that random texts overlap a lot and land near the threshold.
WORDS = ["write", "a", "poem", "about", "the", "sea", "list", "three", "tips", "for", "sleep", "Sea!", "x1",
         "ABOUT", "of", "&", "-", "it's"]
ascii_text = st.lists(st.sampled_from(WORDS), min_size=0, max_size=18).map(" ".join)
cjk_text = st.lists(st.sampled_from(list("寫一首關於海的詩列出三個睡眠建議") + ["AI", "，", "。"]), max_size=20).map("".join)


class OurTokenizer:
    """rouge-score with our tokenizer: the reference for CJK text (its default drops CJK entirely)."""

    def tokenize(self, text):
        return tokenize(text)


CJK_SCORER = rouge_scorer.RougeScorer(["rougeL"], tokenizer=OurTokenizer())


def reference(texts, threshold=0.7, scorer=SCORER):
    kept, out = [], []
    for t in texts:
        ok = all(scorer.score(k, t)["rougeL"].fmeasure <= threshold for k in kept)
        out.append(ok)
        if ok:
            kept.append(t)
    return out


any_ascii = st.text(alphabet=st.characters(max_codepoint=127), max_size=80)


@given(st.one_of(ascii_text, any_ascii))
def test_tokenize_matches_rouge_score_on_ascii(text):
    assert tokenize(text) == rs_tokenize.tokenize(text, None)


@given(st.one_of(ascii_text, any_ascii), ascii_text)
def test_pair_score_identical(a, b):
    assert rouge_l(a, b) == SCORER.score(a, b)["rougeL"].fmeasure
    assert rouge_l(a, b) == rouge_l(b, a)


@settings(max_examples=60, deadline=None)
@given(st.lists(ascii_text, min_size=1, max_size=40), st.sampled_from([0.0, 0.3, 0.5, 0.7, 0.9, 1.0]))
def test_dedup_decisions_identical_ascii(texts, threshold):
    assert dedup_texts(texts, threshold) == reference(texts, threshold)


@settings(max_examples=60, deadline=None)
@given(st.lists(cjk_text, min_size=1, max_size=30))
def test_dedup_decisions_identical_cjk(texts):
    assert dedup_texts(texts) == reference(texts, scorer=CJK_SCORER)


def test_cjk_is_tokenized_per_character_not_dropped():
    assert tokenize("寫一首詩 about AI") == ["寫", "一", "首", "詩", "about", "ai"]
    assert rs_tokenize.tokenize("寫一首詩", None) == []  # why the default rouge-score turns dedup off
    assert dedup_texts(["寫一首關於海的詩", "寫一首關於海的短詩"]) == [True, False]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=150),
       st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=150))
def test_lcs_long_sequences(a, b):
    # DP reference; > 64 tokens exercises the Python big-int path of the index
    dp = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            dp[i][j] = dp[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(dp[i - 1][j], dp[i][j - 1])
    assert lcs_length(a, b) == dp[-1][-1]
    ta, tb = " ".join(a), " ".join(b)
    idx = DedupIndex(0.0)
    idx.force_add(ta)
    assert idx.best_match(tb)[0] == SCORER.score(ta, tb)["rougeL"].fmeasure  # 0.0 when nothing matches


def test_ties_at_threshold_are_kept():
    # LCS 7 of 10+10 tokens: F is 0.7 up to float rounding; "> 0.7" must fall exactly as rouge-score's
    a = "a b c d e f g h i j"
    b = "a b c d e f g x y z"
    f = SCORER.score(a, b)["rougeL"].fmeasure
    assert dedup_texts([a, b]) == [True, not f > 0.7]


def test_empty_texts_score_zero_and_are_kept():
    assert dedup_texts(["", "!!!", "", "hello world"]) == [True, True, True, True]


def test_preloaded_seeds_count_as_kept():
    assert dedup_texts(["Write a poem about the sea."], preloaded=["write a poem about the sea"]) == [False]


def test_data_dedup_cli(tmp_path):
    from typer.testing import CliRunner

    from ownchat.cli.main import app

    src = tmp_path / "d.jsonl"
    rows = [{"instruction": "Write a poem about the sea.", "output": "1"},
            {"instruction": "Write a short poem about the sea.", "output": "2"},
            {"instruction": "List three tips for better sleep.", "output": "3"}]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "kept.jsonl"
    res = CliRunner().invoke(app, ["data", "dedup", str(src), "--out", str(out)])
    assert res.exit_code == 0, res.output
    kept = [json.loads(line)["output"] for line in out.read_text().splitlines()]
    assert kept == ["1", "3"]
    assert "kept 2, dropped 1" in res.output
    bad = CliRunner().invoke(app, ["data", "dedup", str(src), "--out", str(out), "--field", "nope"])
    assert bad.exit_code == 2 and "no field 'nope'" in bad.output


def test_best_match_upto_sees_the_index_as_it_was():
    """``upto=k`` answers as an index holding only the first k texts would (short and long texts)."""
    import random

    rng = random.Random(0)
    words = [f"w{i}" for i in range(30)]
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 90))) for _ in range(260)]
    full = DedupIndex(0.5)
    for t in texts[:200]:
        full.force_add(t)
    for upto in (0, 1, 37, 120, 200):
        ref = DedupIndex(0.5)
        for t in texts[:upto]:
            ref.force_add(t)
        for q in texts[200:]:
            assert full.best_match(q, upto) == ref.best_match(q)
    assert full.best_match(texts[150])[1] == 150  # itself...
    assert full.best_match(texts[150], upto=150)[1] != 150  # ...unless the view predates it
