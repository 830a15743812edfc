"""ROUGE-L dedup: ownchat's exact fast filter against the straightforward rouge-score loop.

The reference is what Self-Instruct-style scripts do: for each new instruction, score it with
``RougeScorer(['rougeL'])`` against every instruction kept so far, sequentially, and drop it when any
F-measure exceeds the threshold. Both must make identical keep/drop decisions; the table shows the
time of each and the speed-up.

No internet here, so the instructions are synthesised (seeded) from a vocabulary of task verbs,
objects, topics and modifiers with skewed (Zipf-like) choices, which yields realistic clusters of
near-duplicates ("Write a short poem about the sea." / "Write a poem about the sea").

    python benchmarks/dedup.py                         # 2k (with reference), 10k, 52k
    python benchmarks/dedup.py --sizes 2000 10000 --ref-max 10000
"""

from __future__ import annotations

import argparse
import random
import time

VERBS = ["Write", "Explain", "Describe", "List", "Summarize", "Classify", "Translate", "Rewrite", "Generate",
         "Create", "Give", "Suggest", "Compare", "Identify", "Find", "Edit", "Convert", "Outline", "Design",
         "Analyze", "Evaluate", "Propose", "Compose", "Draft", "Brainstorm", "Correct", "Extract", "Sort",
         "Predict", "Recommend", "Calculate", "Define", "Name", "Plan", "Tell", "Answer", "Paraphrase"]
OBJECTS = ["a poem", "a short story", "an email", "a list of tips", "three reasons", "a paragraph", "a tweet",
           "a product description", "a recipe", "a haiku", "a summary", "a cover letter", "an essay outline",
           "five questions", "a slogan", "a dialogue", "a limerick", "a function", "a SQL query", "a joke",
           "the main idea", "the sentiment", "the key differences", "the steps", "a title", "an analogy",
           "a headline", "a riddle", "a lesson plan", "a workout plan", "a travel itinerary", "the pros and cons"]
TOPICS = ["the ocean", "climate change", "machine learning", "a rainy day", "friendship", "the moon", "coffee",
          "remote work", "healthy eating", "the French Revolution", "photosynthesis", "black holes", "cats",
          "time management", "public speaking", "renewable energy", "a job interview", "the stock market",
          "ancient Rome", "quantum computing", "gardening", "a birthday party", "social media", "electric cars",
          "sleep", "the water cycle", "volcanoes", "meditation", "chess", "the internet", "honeybees", "jazz",
          "a small business", "city life", "a mountain hike", "recycling", "vaccines", "the printing press"]
MODIFIERS = ["", "", "", "in simple terms", "for a five-year-old", "in under 100 words", "using bullet points",
             "in a formal tone", "in a humorous way", "for a beginner", "with examples", "step by step",
             "from the perspective of a teacher", "in the style of a news report", "as a numbered list",
             "without using technical jargon", "for a marketing team", "in two sentences"]
ADJ = ["", "", "short", "creative", "detailed", "brief", "funny", "persuasive", "clear", "simple", "formal"]


def _zipf(rng: random.Random, items: list[str], s: float = 1.1) -> str:
    weights = [1.0 / (i + 1) ** s for i in range(len(items))]
    return rng.choices(items, weights=weights)[0]


def make_instructions(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    verbs, objs, topics = VERBS[:], OBJECTS[:], TOPICS[:]
    rng.shuffle(verbs), rng.shuffle(objs), rng.shuffle(topics)
    out = []
    for _ in range(n):
        obj = _zipf(rng, objs)
        adj = rng.choice(ADJ)
        if adj and obj.startswith(("a ", "an ")):
            obj = ("an " if adj[0] in "aeiou" else "a ") + adj + " " + obj.split(" ", 1)[1]
        parts = [_zipf(rng, verbs), obj, rng.choice(["about", "on", "related to", "for", "regarding"]),
                 _zipf(rng, topics), rng.choice(MODIFIERS)]
        if rng.random() < 0.3:
            parts += ["and", rng.choice(["mention", "include", "avoid", "compare it with"]), _zipf(rng, topics)]
        if rng.random() < 0.15:
            parts.append(f"(case {rng.randint(1, 10**6)})")  # rare tokens, as real data has
        text = " ".join(p for p in parts if p) + rng.choice([".", ".", "?", "!", ""])
        out.append(text)
    return out


def reference(texts: list[str], threshold: float) -> list[bool]:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    kept: list[str] = []
    decisions = []
    for t in texts:
        ok = all(scorer.score(k, t)["rougeL"].fmeasure <= threshold for k in kept)
        decisions.append(ok)
        if ok:
            kept.append(t)
    return decisions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000, 52000])
    ap.add_argument("--ref-max", type=int, default=2000, help="largest size that also runs the reference")
    ap.add_argument("--threshold", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from ownchat.data.dedup import dedup_texts

    print(f"{'n':>7} {'kept':>7} {'ownchat s':>10} {'rouge-score s':>14} {'speed-up':>9} {'identical':>10}")
    for n in args.sizes:
        texts = make_instructions(n, args.seed)
        t0 = time.perf_counter()
        fast = dedup_texts(texts, args.threshold)
        t_fast = time.perf_counter() - t0
        ref_s, speed, same = "-", "-", "-"
        if n <= args.ref_max:
            t0 = time.perf_counter()
            ref = reference(texts, args.threshold)
            t_ref = time.perf_counter() - t0
            ref_s, speed, same = f"{t_ref:.1f}", f"{t_ref / t_fast:.0f}x", str(ref == fast)
            if ref != fast:
                bad = next(i for i, (a, b) in enumerate(zip(ref, fast, strict=True)) if a != b)
                print(f"MISMATCH at {bad}: {texts[bad]!r} reference={ref[bad]} ownchat={fast[bad]}")
        print(f"{n:>7} {sum(fast):>7} {t_fast:>10.2f} {ref_s:>14} {speed:>9} {same:>10}", flush=True)


if __name__ == "__main__":
    main()
