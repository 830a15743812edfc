"""The response cache: keys, persistence, no cached errors, and batching kept through CachedEngine."""

from __future__ import annotations

import threading

from ownchat.engines.base import ChatRequest, Completion, Engine, SamplingParams
from ownchat.engines.cache import CachedEngine, ResponseCache, request_key


class Echo(Engine):
    """Answers with the last message; records every call and every generate_many batch it was given."""

    name = "echo"
    model_id = "echo:1"
    max_concurrency = 4

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[ChatRequest] = []
        self.many_calls: list[list[ChatRequest]] = []
        self.fail_on = fail_on
        self.lock = threading.Lock()

    def generate(self, request: ChatRequest) -> Completion:
        with self.lock:
            self.calls.append(request)
        text = request.messages[-1]["content"] if request.messages else request.prompt
        if text == self.fail_on:
            raise RuntimeError("boom")
        return Completion(text=f"echo {text} #{request.sample_index}", finish_reason="stop", prompt_tokens=3,
                          completion_tokens=2, model=self.model_id)

    def generate_many(self, requests, concurrency=None, on_done=None):
        batch = list(requests)
        self.many_calls.append(batch)
        yield from super().generate_many(batch, concurrency, on_done)


def chat(text: str, **params) -> ChatRequest:
    return ChatRequest.chat([{"role": "user", "content": text}], SamplingParams(**params))


def test_keys_cover_model_messages_params_and_sample_index():
    base = request_key("m", chat("hi"))
    assert base == request_key("m", chat("hi"))
    assert base != request_key("m2", chat("hi"))
    assert base != request_key("m", chat("hello"))
    assert base != request_key("m", chat("hi", temperature=0.7))
    assert base != request_key("m", chat("hi", max_tokens=12))
    assert base != request_key("m", chat("hi", stop=("x",)))
    assert base != request_key("m", ChatRequest.chat([{"role": "user", "content": "hi"}], sample_index=1))
    assert base != request_key("m", ChatRequest.completion("hi"))


def test_cache_persists_and_skips_errors(cache_db):
    cache = ResponseCache(cache_db)
    cache.put("k", Completion("answer", "stop", 3, 2, model="m"))
    cache.put("bad", Completion("", "error", error="boom"))
    cache.close()
    again = ResponseCache(cache_db)
    hit = again.get("k")
    assert hit.text == "answer" and hit.cached and hit.completion_tokens == 2
    assert again.get("bad") is None and len(again) == 1


def test_second_run_makes_zero_engine_calls(cache_db):
    reqs = [chat(f"q{i}") for i in range(10)]
    first = CachedEngine(Echo(), ResponseCache(cache_db))
    out1 = dict(first.generate_many(reqs))
    assert first.calls == 10 and first.hits == 0

    inner = Echo()
    second = CachedEngine(inner, ResponseCache(cache_db))
    out2 = dict(second.generate_many(reqs))
    assert second.calls == 0 and second.hits == 10 and inner.calls == []
    assert {i: c.text for i, c in out1.items()} == {i: c.text for i, c in out2.items()}
    assert all(c.cached for c in out2.values())


def test_misses_are_delegated_to_inner_generate_many(cache_db):
    """Only the misses reach the inner engine, in one generate_many call (so HF keeps batching)."""
    eng = CachedEngine(Echo(), ResponseCache(cache_db))
    list(eng.generate_many([chat("a"), chat("c")]))
    inner = Echo()
    eng2 = CachedEngine(inner, ResponseCache(cache_db))
    seen = []
    out = dict(eng2.generate_many([chat("a"), chat("b"), chat("c"), chat("d")],
                                  on_done=lambda i, c: seen.append(i)))
    assert [[r.messages[-1]["content"] for r in batch] for batch in inner.many_calls] == [["b", "d"]]
    assert sorted(out) == [0, 1, 2, 3] and sorted(seen) == [0, 1, 2, 3]
    assert out[0].cached and out[2].cached and not out[1].cached
    assert out[3].text == "echo d #0"
    assert eng2.calls == 2 and eng2.hits == 2


def test_errors_are_not_cached_and_retried_next_time(cache_db):
    eng = CachedEngine(Echo(fail_on="x"), ResponseCache(cache_db))
    out = dict(eng.generate_many([chat("x"), chat("y")]))
    assert out[0].finish_reason == "error" and "boom" in out[0].error and out[1].ok
    eng2 = CachedEngine(Echo(), ResponseCache(cache_db))
    out2 = dict(eng2.generate_many([chat("x"), chat("y")]))
    assert eng2.calls == 1 and out2[0].ok and out2[1].cached


def test_samples_are_replayed_not_redrawn(cache_db):
    reqs = [ChatRequest.chat([{"role": "user", "content": "q"}], SamplingParams(temperature=1.0), sample_index=k)
            for k in range(3)]
    eng = CachedEngine(Echo(), ResponseCache(cache_db))
    first = [eng.generate(r).text for r in reqs]
    assert first == ["echo q #0", "echo q #1", "echo q #2"]
    assert [eng.generate(r).text for r in reqs] == first and eng.calls == 3 and eng.hits == 3


def test_concurrent_writers_share_one_db(cache_db):
    eng = CachedEngine(Echo(), ResponseCache(cache_db))
    out = dict(eng.generate_many([chat(f"q{i}") for i in range(40)], concurrency=8))
    assert len(out) == 40 and len(eng.cache) == 40


def test_stream_replays_a_hit(cache_db):
    eng = CachedEngine(Echo(), ResponseCache(cache_db))
    eng.generate(chat("s"))
    assert list(eng.stream(chat("s"))) == ["echo s #0"] and eng.calls == 1


def test_cache_files_are_private(tmp_path):
    """Every prompt and answer lives here: mode 600 like the chat history, -wal included."""
    import sqlite3
    import stat

    db = tmp_path / "responses.sqlite"
    cache = ResponseCache(db)
    cache.put("k", Completion(text="secret answer", finish_reason="stop"))
    files = [db, tmp_path / "responses.sqlite-wal"]
    assert all(f.exists() for f in files)
    assert [oct(stat.S_IMODE(f.stat().st_mode)) for f in files] == ["0o600", "0o600"]
    cache.close()
    old = tmp_path / "old.sqlite"  # made by an earlier version with the umask's 644
    sqlite3.connect(old).close()
    old.chmod(0o644)
    ResponseCache(old).close()
    assert stat.S_IMODE(old.stat().st_mode) == 0o600
