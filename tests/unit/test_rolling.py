"""The rolling queue: a slow request never holds the others, slots stay full, results keep job order.

Deterministic: requests block on a condition the test controls; the test only ever waits for a
state (with a generous timeout that guards against a hang, never a threshold on speed).
"""

import json
import threading

import pytest

from ownchat.engines.base import ChatRequest, Completion, Engine
from ownchat.engines.rolling import batches_for_real, run_jobs
from ownchat.synth import SynthConfig, run_synth

HANG = 30  # seconds: only reached when the code under test deadlocks, never a speed threshold


class Gate(Engine):
    """Every request waits until the test releases it; the test sees which ones are in flight."""

    name = "gate"
    model_id = "gate:1"

    def __init__(self, slots: int = 4) -> None:
        self.max_concurrency = slots
        self.cv = threading.Condition()
        self.active: list[str] = []
        self.released: set[str] = set()
        self.finished: list[str] = []
        self.peak = 0

    def generate(self, req: ChatRequest) -> Completion:
        q = req.messages[-1]["content"]
        with self.cv:
            self.active.append(q)
            self.peak = max(self.peak, len(self.active))
            self.cv.notify_all()
            ok = self.cv.wait_for(lambda: q in self.released, timeout=HANG)
            self.active.remove(q)
            self.finished.append(q)
            self.cv.notify_all()
        if not ok:
            raise RuntimeError(f"{q!r} was never released")
        return Completion(f"Here is a careful, complete answer to the question about {q}.", "stop", 5, 12)

    def conduct(self, questions: list[str], slow: str, slots: int) -> list[int]:
        """Release every question but ``slow`` one at a time, checking the slots refill each time."""
        seen = []
        with self.cv:
            for _ in range(len(questions) - 1):
                want = min(slots, len(questions) - len(self.finished))
                assert self.cv.wait_for(lambda w=want: len(self.active) == w, timeout=HANG), \
                    f"slots not kept full: {len(self.active)} in flight, {want} expected ({self.active})"
                seen.append(len(self.active))
                assert slow in self.active  # the slow one is still running...
                victim = next(q for q in self.active if q != slow)  # ...and the others go past it
                self.released.add(victim)
                self.cv.notify_all()
                assert self.cv.wait_for(lambda v=victim: v in self.finished, timeout=HANG)
            assert self.active == [slow]
            self.released.add(slow)
            self.cv.notify_all()
        return seen


def _q(i: int) -> str:
    return f"Question number {i}: how do tides work on planet {chr(65 + i % 26)}{i}?"


def test_slow_request_does_not_hold_the_others_in_synth(tmp_path):
    questions = [_q(i) for i in range(30)]  # two old-style rounds (4 x concurrency), within the reorder bound
    src = tmp_path / "q.jsonl"
    src.write_text("".join(json.dumps({"id": f"q{i}", "instruction": q}) + "\n" for i, q in enumerate(questions)))
    gate = Gate(slots=4)
    cfg = SynthConfig(mode="answer", out=tmp_path / "a.jsonl", n=100, inputs=src, concurrency=4, cache=False)
    box = {}
    t = threading.Thread(target=lambda: box.update(res=run_synth(cfg, log=lambda m: None, engine=gate)))
    t.start()
    seen = gate.conduct(questions, slow=questions[1], slots=4)
    t.join(HANG)
    assert not t.is_alive()
    assert seen[:26] == [4] * 26 and gate.peak == 4  # full, never over-full
    recs = [json.loads(x) for x in cfg.out.read_text().splitlines()]
    # written in input order although question 1 finished last
    assert [r["source_id"] for r in recs] == [f"q{i}" for i in range(30)]
    assert gate.finished[-1] == questions[1]
    assert box["res"].kept == 30 and box["res"].stopped == "input_exhausted"


def _echo_jobs(n: int, log: list):
    for i in range(n):
        def job(i=i):
            log.append(("start", i))
            (c,) = yield [ChatRequest.chat([{"role": "user", "content": _q(i)}])]
            (d,) = yield [ChatRequest.chat([{"role": "user", "content": _q(i) + " again"}])]
            return i, c.text, d.text
        yield job()


def test_run_jobs_two_steps_in_job_order():
    gate = Gate(slots=3)
    qs = [_q(i) for i in range(6)]
    gate.released.update(qs + [q + " again" for q in qs if q != qs[0]])
    out, log = [], []

    def consume():
        out.extend(run_jobs(gate, _echo_jobs(6, log), slots=3))

    t = threading.Thread(target=consume)
    t.start()
    with gate.cv:  # job 0's second step is the slow one: everything else finishes first
        assert gate.cv.wait_for(lambda: len(gate.finished) == 11, timeout=HANG)
        assert gate.active == [qs[0] + " again"]
        gate.released.add(qs[0] + " again")
        gate.cv.notify_all()
    t.join(HANG)
    assert [i for i, _ in out] == list(range(6))
    assert [r[0] for _, r in out] == list(range(6))


def test_lag_holds_a_job_until_earlier_results_are_consumed():
    class Now(Engine):
        name, model_id, max_concurrency = "now", "now:1", 4

        def generate(self, req):
            return Completion("ok", "stop")

    log: list = []
    consumed = []
    for i, _ in run_jobs(Now(), _echo_jobs(8, log), slots=4, lag=1):
        consumed.append(i)
        log.append(("consumed", i))
    assert consumed == list(range(8))
    for i in range(2, 8):  # job i starts only once job i-2 was handed back and consumed
        assert log.index(("consumed", i - 2)) < log.index(("start", i))


def test_batching_engine_gets_batches_and_errors_stay_records():
    class Batcher(Engine):
        name, model_id, max_concurrency = "batcher", "batcher:1", 4

        def __init__(self):
            self.batches = []

        def generate_many(self, requests, concurrency=None, on_done=None):
            reqs = list(requests)
            self.batches.append(len(reqs))
            for i, r in enumerate(reqs):
                text = r.messages[-1]["content"]
                yield i, (Completion("", "error", error="bad") if "5" in text else Completion(text, "stop"))

    eng = Batcher()
    assert batches_for_real(eng)
    got = list(run_jobs(eng, _echo_jobs(8, []), slots=4))
    assert [i for i, _ in got] == list(range(8))
    assert max(eng.batches) > 1 and sum(eng.batches) == 16
    assert got[5][1][1] == ""  # job 5's error came back as an (empty) error completion


def test_a_kill_in_a_worker_reaches_the_caller():
    class Killed(BaseException):
        pass

    class Dies(Engine):
        name, model_id, max_concurrency = "dies", "dies:1", 2

        def generate(self, req):
            if "3" in req.messages[-1]["content"]:
                raise Killed()
            if "4" in req.messages[-1]["content"]:
                raise ValueError("an ordinary failure")
            return Completion("ok", "stop")

    with pytest.raises(Killed):
        list(run_jobs(Dies(), _echo_jobs(6, []), slots=2))
