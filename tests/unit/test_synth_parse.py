"""Parsers on the kinds of messy output real teachers produce."""

from ownchat.synth.parse import (
    parse_alpaca_batch,
    parse_choice,
    parse_class_instances,
    parse_instance,
    parse_numbered_list,
    parse_user_turn,
)

PROPOSALS_MESSY = """Sure! Here are 8 new tasks for you:

Task 9: Write a short story about a robot who learns to paint.
**Task 10:** Summarize the plot of a movie in three sentences.
11. Convert the temperature from Celsius to Fahrenheit.
12) Suggest a name for a new coffee shop
that sells only iced drinks.
Task 13 - Explain recursion to a ten-year-old.
- Find the odd word out in a list of words.

I hope these tasks are helpful! Let me know if you need more."""


def test_numbered_list_tolerates_prose_bold_and_missing_numbers():
    items = parse_numbered_list(PROPOSALS_MESSY)
    assert items[0] == "Write a short story about a robot who learns to paint."
    assert items[1] == "Summarize the plot of a movie in three sentences."
    assert items[3] == "Suggest a name for a new coffee shop that sells only iced drinks."
    assert "Find the odd word out in a list of words." in items
    assert not any("helpful" in i or "Sure" in i for i in items)
    assert len(items) == 6


def test_numbered_list_drops_truncated_last_item():
    text = "Task 9: Write a haiku about rain.\nTask 10: Describe the water cy"
    assert parse_numbered_list(text, truncated=True) == ["Write a haiku about rain."]
    assert len(parse_numbered_list(text, truncated=False)) == 2


def test_numbered_list_chinese():
    text = "好的，以下是新的任務：\n任務 9：寫一首關於秋天的短詩。\n10. 解釋什麼是區塊鏈。"
    assert parse_numbered_list(text) == ["寫一首關於秋天的短詩。", "解釋什麼是區塊鏈。"]


ALPACA_MESSY = """Here are the tasks:

4. Instruction: Give three tips for saving money on groceries.
4. Input: <noinput>
4. Output: 1. Plan meals ahead. 2. Buy store brands. 3. Shop with a list.
###
**5. Instruction:** Rewrite the sentence in passive voice.
**5. Input:** The chef cooked the meal.
**5. Output:** The meal was cooked by the chef.
###
Instruction: Classify the animal as a mammal or a reptile.
Input: Turtle
Output: Reptile
6. Instruction: Translate "good morning" into French.
6. Input:
6. Output: Bonjour.
###
7. Instruction: What is the capital of Australia?
7. Input: <noinput>
###
8. Instruction: Write a limerick about a cat
8. Input: <noinput>
8. Output: There once was a cat from"""


def test_alpaca_batch_messy():
    triples, failed = parse_alpaca_batch(ALPACA_MESSY, truncated=True)
    insts = [t.instruction for t in triples]
    assert insts == ["Give three tips for saving money on groceries.", "Rewrite the sentence in passive voice.",
                     "Classify the animal as a mammal or a reptile.", 'Translate "good morning" into French.']
    assert triples[0].input == ""  # <noinput>
    assert triples[1].input == "The chef cooked the meal."
    assert triples[1].output == "The meal was cooked by the chef."
    assert triples[2].output == "Reptile"
    assert triples[3].input == "" and triples[3].output == "Bonjour."
    assert failed == 1  # task 7 has no output; task 8 was truncated and silently dropped


def test_alpaca_batch_not_truncated_keeps_last():
    triples, _ = parse_alpaca_batch(ALPACA_MESSY, truncated=False)
    assert triples[-1].instruction == "Write a limerick about a cat"


def test_alpaca_batch_garbage_never_raises():
    for text in ["", "###\n###", "Output: x", "I'm sorry, I can't help with that.", "1. Instruction:\n1. Output:"]:
        triples, failed = parse_alpaca_batch(text)
        assert all(t.instruction and t.output for t in triples)
        assert failed >= 0


def test_instance_input_first():
    text = "Input: The weather is lovely today.\nOutput: positive\n\nTask: Another task\nInput: x\nOutput: y"
    assert parse_instance(text) == ("The weather is lovely today.", "positive")
    assert parse_instance("Input: <noinput>\nOutput: 42") == ("", "42")
    assert parse_instance("Just prose, no fields.") is None
    assert parse_instance("輸入：無\n輸出：台北") == ("", "台北")


def test_class_instances_output_first():
    text = ("Class label: Positive\nInput: I loved the film.\n\n**Class label:** Negative\n**Input:** Waste of time."
            "\nClass label: Neutral")
    assert parse_class_instances(text) == [("Positive", "I loved the film."), ("Negative", "Waste of time.")]


def test_choice_and_user_turn():
    assert parse_choice("A") == "A"
    assert parse_choice("**B**") == "B"
    assert parse_choice("Answer: (A) one label picked from a few fixed options") == "A"
    assert parse_choice("b) free text") == "B"
    assert parse_choice("**Answer:** A") == "A" and parse_choice("The answer is B.") == "B"
    assert parse_choice("Both could apply") is None  # a word starting with B is not a choice
    assert parse_choice("C") is None
    assert parse_user_turn('User: "How do I boil an egg?"\nAssistant: Put it in water.') == "How do I boil an egg?"


def test_alpaca_batch_recorded_qwen_quirks():
    # Recorded from qwen2.5-coder-1.5b-instruct: '### ' inside the numbered field, wrong numbers,
    # and '<noinput>' written as the *output*.
    text = """1. ### Instruction: Convert the sentence into a question.
1. Input: "The dog barked at the moon."
1. Output: "What did the dog do? "
###
2. ### Instruction: Translate the given sentence from English to Spanish.
3. Input: "Hello, how are you?"
3. Output: "¡Hola, ¿cómo estás?"
###
6. Instruction: Extract the main idea of the given paragraph.
6. Input: <noinput>
6. Output: <noinput>"""
    triples, failed = parse_alpaca_batch(text)
    assert [t.instruction for t in triples] == ["Convert the sentence into a question.",
                                                "Translate the given sentence from English to Spanish."]
    assert triples[1].input == '"Hello, how are you?"'
    assert failed == 1  # the '<noinput>' answer is no answer


def test_alpaca_batch_hashes_before_the_number():
    # Recorded from the Qwen pack: '### N. Instruction:' on one line, blank lines instead of '###'
    # separators. Before this shape was read, such a reply (13 tasks) counted as one parse failure.
    text = """### 4. Instruction: Describe the process of boiling water on a stove.
4. Input: <noinput>
5. Output: Heat water in a pot until bubbles rise steadily.

### 5. Instruction: Correct the spelling mistakes in the text.
5. Input: This is a exaple.
6. Output: This is an example.

### 6. Instruction: Classify the sentence as fact or opinion.
6. Input: How is the weather today?
7. Output: neither"""
    triples, failed = parse_alpaca_batch(text, truncated=False)
    assert [t.instruction for t in triples] == ["Describe the process of boiling water on a stove.",
                                                "Correct the spelling mistakes in the text.",
                                                "Classify the sentence as fact or opinion."]
    assert triples[0].input == "" and triples[1].output == "This is an example." and failed == 0
