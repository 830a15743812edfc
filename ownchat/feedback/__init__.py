"""Teacher feedback instead of human RLHF: sample k answers, score them with a rubric, pair them.

    from ownchat.feedback import FeedbackConfig, collect_feedback
    res = collect_feedback(FeedbackConfig(student="run/sft", teacher="qwen2.5-coder-1.5b-instruct",
                                          prompts=Path("prompts.jsonl"), out=Path("prefs.jsonl"), k=4))

The pairs train ``ownchat.train.dpo.train_dpo`` or a reward model (``ownchat.train.rm.train_rm``),
which ``BestOfNEngine`` uses to rerank samples at inference time.
"""

from ownchat.feedback.bestof import BestOfNEngine, with_best_of
from ownchat.feedback.collect import FeedbackConfig, FeedbackResult, collect_feedback, load_prompts
from ownchat.feedback.pairs import PAIR_MODES, Candidate, Pair, make_pairs
from ownchat.feedback.prompts import RUBRIC_VERSION, scoring_messages
from ownchat.feedback.score import ScoreItem, score_answers

__all__ = [
    "BestOfNEngine", "with_best_of", "FeedbackConfig", "FeedbackResult", "collect_feedback", "load_prompts",
    "PAIR_MODES", "Candidate", "Pair", "make_pairs", "RUBRIC_VERSION", "scoring_messages", "ScoreItem",
    "score_answers",
]
