"""Judging models rigorously: MT-bench-style answers, single grades, pairwise verdicts, reports.

    from ownchat.judge import resolve_questions, answer_questions, compare_answers, build_report
    qs = resolve_questions("ownchat")                      # or "mt-bench", or a JSONL path
    answer_questions("smollm2-135m-instruct", qs, "a.jsonl")
    answer_questions("run/sft", qs, "b.jsonl", model_id="sft")
    compare_answers(qs, "a.jsonl", "b.jsonl", judge="qwen2.5-coder-1.5b-instruct", out="v.jsonl")
    summary = build_report(["v.jsonl"], "report/")        # report.html, report.md, summary.json
"""

from ownchat.judge.answer import Answer, AnswerResult, answer_questions, load_answers
from ownchat.judge.compare import JudgeRunResult, compare_answers
from ownchat.judge.grade import grade_answers
from ownchat.judge.parse import parse_pair, parse_rating
from ownchat.judge.questions import Question, load_mt_bench, load_questions, resolve_questions, select
from ownchat.judge.report import build_report
from ownchat.judge.runner import JudgeSettings

__all__ = [
    "Answer", "AnswerResult", "JudgeRunResult", "JudgeSettings", "Question",
    "answer_questions", "build_report", "compare_answers", "grade_answers", "load_answers",
    "load_mt_bench", "load_questions", "parse_pair", "parse_rating", "resolve_questions", "select",
]

