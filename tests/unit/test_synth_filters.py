"""Filters and language detection on their own."""

from ownchat.data.lang import detect, matches
from ownchat.synth.filters import FilterConfig, Filters, is_garbled


def test_instruction_filters_name_their_reason():
    f = Filters(FilterConfig(language="en"))
    assert f.check_instruction("Hi") == "too_short"
    assert f.check_instruction(" ".join(["word"] * 200)) == "too_long"
    assert f.check_instruction("Draw a picture of a cat sitting on a mat.") == "blacklist"
    assert f.check_instruction("Describe the profile of a successful founder.") is None  # 'file' inside a word
    assert f.check_instruction("- Write a poem about the sea.") == "punctuation_start"
    assert f.check_instruction("寫一首關於海洋的詩，描述海浪的聲音。") == "wrong_language"
    assert f.counts == {"too_short": 1, "too_long": 1, "blacklist": 1, "punctuation_start": 1, "wrong_language": 1}


def test_similarity_against_kept_and_pending():
    from ownchat.data.dedup import DedupIndex

    f = Filters(FilterConfig())
    f.keep("Write a poem about the sea.")
    assert f.check_similar("Write a short poem about the sea.") == "rouge_similar"
    pending = DedupIndex(0.7)
    pending.force_add("List three tips for better sleep at night.")
    assert f.check_similar("List three tips for a better sleep at night.", pending) == "rouge_similar"
    assert f.check_similar("Explain how vaccines train the immune system.", pending) is None
    assert f.counts["rouge_similar"] == 2


def test_output_filters():
    f = Filters(FilterConfig(language="zh-TW"))
    assert f.check_output("   ") == "empty_output"
    assert f.check_output("ha " * 80) == "garbled"
    assert f.check_output("This answer is entirely written in English, not Chinese.") == "wrong_language"
    assert f.check_output("这是一个用简体中文写的回答，我们说的是简体字。") == "wrong_language"
    assert f.check_output("這是一個用繁體中文寫的回答，內容完整。") is None
    assert f.check_output("```python\nprint('hi')\n```") is None  # code is not judged by language
    assert f.check_output("SELECT class, AVG(score)\nFROM students\nGROUP BY class;") is None
    assert f.check_output("same", "same") == "empty_output"
    assert f.check_output("", count=False) == "empty_output"
    assert f.counts["empty_output"] == 2


def test_garbled_detection():
    assert is_garbled("a" * 40)
    assert is_garbled("the cat sat on the mat " * 20)
    assert is_garbled("bad \ufffd bytes")
    assert not is_garbled("Plan meals ahead, buy store brands, and shop with a list to avoid impulse buys.")


def test_language_detection():
    assert detect("Hello there, how are you today?") == "en"
    assert detect("這個問題很好，我們來討論。") == "zh-TW"
    assert detect("这个问题很好，我们来讨论。") == "zh-CN"
    assert detect("これは日本語の文章です。") == "ja"
    assert detect("안녕하세요 반갑습니다 여러분") == "ko"
    assert detect("ok") is None
    assert matches("ok", "zh-TW")  # too short to tell
    assert matches("用 Python 寫一個排序函式，並說明時間複雜度。", "zh-TW")
    assert not matches("Write a sorting function in Python and explain it.", "zh-TW")


def test_refusals_are_dropped_and_apologies_are_not():
    from ownchat.data.quality import is_refusal

    refusals = [
        "I'm sorry, but I cannot summarize the article without its text.",  # from the Qwen pack's self-instruct run
        "I apologize, but I can't assist with that request.",
        "As an AI language model, I do not have personal opinions.",
        "I am unable to browse the internet.",
        "I can't help with that.",
        "抱歉，我無法提供這項資訊。",
        "作為一個AI，我沒有個人意見。",
    ]
    answers = [
        "I'm sorry for missing your birthday party; I hope we can celebrate together next week.",  # apology letter
        "Dear Sam, I am sorry I could not come. I can't wait to see you.",
        "The function returns None when the list is empty, so the caller can't index it.",
        "對不起，我來晚了。今天路上塞車。",
        "x" * 400 + " As an AI language model",  # only the opening is read
    ]
    assert [s for s in refusals if not is_refusal(s)] == []
    assert [s for s in answers if is_refusal(s)] == []
    f = Filters(FilterConfig(language="en"))
    assert f.check_output(refusals[0]) == "refusal" and f.counts["refusal"] == 1
    assert f.check_output("I'm sorry, but I don't have the receipt. Can I still return it?", assistant=False) is None
