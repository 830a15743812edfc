"""Fakes shared by the improve unit tests: a GSM8K file writer and an engine that answers by question."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from ownchat.engines.base import ChatRequest, Completion, Engine


def write_gsm(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"question": q, "answer": f"work\n#### {a}"}) + "\n" for q, a in rows))
    return path


class QuestionEngine(Engine):
    """Answers by looking up the question (the text after the prompt's last 'Question: ')."""

    name = "fake"
    model_id = "fake:1"
    max_concurrency = 4

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.calls = 0
        self._lock = threading.Lock()

    def generate(self, request: ChatRequest) -> Completion:
        with self._lock:
            self.calls += 1
        q = request.messages[-1]["content"].rsplit("Question: ", 1)[-1]
        options = self.answers[q]
        pick = 0 if request.params.temperature == 0 else 1 + request.sample_index % (len(options) - 1)
        return Completion(text=f"Some steps. The answer is {options[pick]}.", finish_reason="stop",
                          completion_tokens=5, model=self.model_id)
