"""Majority voting and self-consistency over a scripted engine (no model)."""

from __future__ import annotations

import threading

from ownchat.engines.base import ChatRequest, Completion, Engine
from ownchat.engines.cache import CachedEngine, ResponseCache
from ownchat.improve.extract import answers_match
from ownchat.improve.sc import SCConfig, SelfConsistencyEngine, self_consistency
from ownchat.improve.vote import majority_vote, vote_curve


def test_majority_and_share_over_all_samples() -> None:
    v = majority_vote(["12", None, "12", "15", None])
    assert v.answer == "12" and v.count == 2 and v.total == 5 and v.valid == 3
    assert v.share == 0.4  # the two samples without an answer count against confidence
    assert v.counts == {"12": 2, "15": 1}


def test_tie_goes_to_first_seen() -> None:
    assert majority_vote(["7", "9", "9", "7"]).answer == "7"
    assert majority_vote(["9", "7", "7", "9"]).answer == "9"


def test_no_answers() -> None:
    v = majority_vote([None, None])
    assert v.answer is None and v.share == 0.0 and v.to_dict()["share"] == 0.0


def test_vote_curve() -> None:
    # k=1: "3" wrong; k=2: tie, first seen "3" wrong; k=3: "5" wins
    assert vote_curve(["3", "5", "5"], "5", answers_match) == [False, False, True]


class ScriptedEngine(Engine):
    """Answers from a table keyed by (question text, sample_index); records what it was asked."""

    name = "scripted"
    model_id = "scripted:v1"
    max_concurrency = 3

    def __init__(self, table: dict[tuple[str, int], str]) -> None:
        self.table = table
        self.seen: list[ChatRequest] = []
        self._lock = threading.Lock()

    def generate(self, request: ChatRequest) -> Completion:
        with self._lock:
            self.seen.append(request)
        q = request.messages[-1]["content"]
        text = self.table[(q, request.sample_index)]
        if text == "BOOM":
            raise RuntimeError("engine failure")
        finish = "length" if text.endswith("…") else "stop"  # "…" marks a reply cut at the token cap
        return Completion(text=text, finish_reason=finish, completion_tokens=len(text.split()), model=self.model_id)


def _prompt(q: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": q}]


TABLE = {
    ("a", 0): "so 4. The answer is 4.", ("a", 1): "The answer is 5.", ("a", 2): "The answer is 4.",
    ("b", 0): "The answer is 10.", ("b", 1): "no idea", ("b", 2): "The answer is 11.",
}


def test_self_consistency_votes_per_question_with_distinct_samples() -> None:
    eng = ScriptedEngine(TABLE)
    cfg = SCConfig(k=3, temperature=0.8, max_tokens=32, seed=7)
    out = dict(self_consistency(eng, [_prompt("a"), _prompt("b")], cfg))
    assert out[0].answer == "4" and round(out[0].share, 3) == 0.667
    assert [s.k for s in out[0].agreeing()] == [0, 2]
    assert out[1].answer == "10" and out[1].vote.valid == 2
    # every sample was its own request: sample_index 0..K-1, sampling params from the config
    assert sorted((r.messages[-1]["content"], r.sample_index) for r in eng.seen) == sorted(TABLE)
    assert {r.params.temperature for r in eng.seen} == {0.8}
    assert {r.effective_seed() for r in eng.seen} == {7, 8, 9}


def test_samples_cut_at_the_cap_do_not_vote_for_their_last_number() -> None:
    table = {("c", 0): "3 + 3 = 6. The answer is 6.", ("c", 1): "First 7 + 2 = 9…", ("c", 2): "So 4 + 5 = 9…"}
    [(_, res)] = list(self_consistency(ScriptedEngine(table), [_prompt("c")], SCConfig(k=3, max_tokens=8)))
    assert res.answer == "6" and res.vote.valid == 1
    assert [s.answer for s in res.samples] == ["6", None, None]


def test_self_consistency_resumes_from_done_samples() -> None:
    eng = ScriptedEngine(TABLE)
    cfg = SCConfig(k=3)
    first = dict(self_consistency(eng, [_prompt("a"), _prompt("b")], cfg))
    done = {(0, s.k): s for s in first[0].samples} | {(1, 0): first[1].samples[0]}
    eng2 = ScriptedEngine(TABLE)
    again = dict(self_consistency(eng2, [_prompt("a"), _prompt("b")], cfg, done=done))
    assert len(eng2.seen) == 2  # only the two missing samples of question b
    assert again[0].answer == first[0].answer and again[1].answer == first[1].answer


def test_failed_sample_is_a_record_not_a_crash() -> None:
    table = dict(TABLE) | {("b", 1): "BOOM"}
    out = dict(self_consistency(ScriptedEngine(table), [_prompt("a"), _prompt("b")], SCConfig(k=3)))
    assert out[1].samples[1].error and out[1].samples[1].answer is None


def test_cached_samples_are_replayed(tmp_path) -> None:
    inner = ScriptedEngine(TABLE)
    eng = CachedEngine(inner, ResponseCache(tmp_path / "c.sqlite"))
    cfg = SCConfig(k=3)
    list(self_consistency(eng, [_prompt("a")], cfg))
    list(self_consistency(eng, [_prompt("a")], cfg))
    assert eng.calls == 3 and eng.hits == 3


def test_engine_wrapper_answers_with_majority_rationale() -> None:
    eng = SelfConsistencyEngine(ScriptedEngine(TABLE), SCConfig(k=3))
    comp = eng.generate(ChatRequest.chat(_prompt("a")))
    assert comp.text in (TABLE[("a", 0)], TABLE[("a", 2)])
    assert comp.extra["sc"]["answer"] == "4" and comp.extra["sc"]["answers"] == ["4", "5", "4"]
    assert comp.completion_tokens == sum(len(TABLE[("a", k)].split()) for k in range(3))
    assert eng.model_id != "scripted:v1"  # cache entries of the wrapper never collide with the inner's
