"""A persistent response cache: a re-run never pays twice, a crash never corrupts it.

SQLite in WAL mode; each answer is committed as soon as it arrives, so ``kill -9`` loses at most
the requests in flight. The file holds every prompt and answer, so it is private (mode 600, and
SQLite gives its -wal and -shm files the same mode). Keys cover the model identity, the messages or prompt, every sampling
parameter and the sample index (so sample k of a temperature>0 request is replayed, not redrawn).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from ownchat.engines.base import ChatRequest, Completion, Engine
from ownchat.engines.logprobs import ChoiceLogprobs
from ownchat.paths import default_cache_db


def request_key(model_id: str, request: ChatRequest) -> str:
    payload = {
        "model": model_id,
        "messages": list(request.messages) if request.messages is not None else None,
        "prompt": request.prompt,
        "params": request.params.to_dict(),
        "sample": request.sample_index,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _private_file(path: Path) -> None:
    """Create ``path`` with mode 600 before SQLite does (it would use the umask); tighten an old one."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if p.exists() and p.stat().st_mode & 0o077:
                p.chmod(0o600)


class ResponseCache:
    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else default_cache_db()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _private_file(self.path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=60, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT, text TEXT,"
            " finish_reason TEXT, prompt_tokens INTEGER, completion_tokens INTEGER,"
            " created REAL DEFAULT (unixepoch('subsec')))"
        )

    def get(self, key: str) -> Completion | None:
        with self._lock:
            row = self._db.execute(
                "SELECT text, finish_reason, prompt_tokens, completion_tokens, model FROM responses WHERE key=?",
                (key,),
            ).fetchone()
        if row is None:
            return None
        return Completion(text=row[0], finish_reason=row[1], prompt_tokens=row[2], completion_tokens=row[3],
                          cached=True, model=row[4])

    def put(self, key: str, comp: Completion) -> None:
        if comp.error:  # errors are never cached: the next run tries again
            return
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, model, text, finish_reason, prompt_tokens,"
                " completion_tokens) VALUES (?,?,?,?,?,?)",
                (key, comp.model, comp.text, comp.finish_reason, comp.prompt_tokens, comp.completion_tokens),
            )

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class CachedEngine(Engine):
    """Wraps any engine; ``calls`` counts requests that actually reached the inner engine."""

    def __init__(self, inner: Engine, cache: ResponseCache | None = None) -> None:
        self.inner = inner
        self.cache = cache if cache is not None else ResponseCache()  # an empty cache is falsy (__len__)
        self.name = inner.name
        self.model_id = inner.model_id
        self.max_concurrency = inner.max_concurrency
        self.calls = 0
        self.hits = 0
        self._lock = threading.Lock()

    def __getattr__(self, item: str):  # engine-specific extras (tokenizer, server, meter...)
        return getattr(self.inner, item)

    def generate(self, request: ChatRequest) -> Completion:
        key = request_key(self.model_id, request)
        hit = self.cache.get(key)
        if hit is not None:
            with self._lock:
                self.hits += 1
            return hit
        with self._lock:
            self.calls += 1
        comp = self.inner.generate(request)
        self.cache.put(key, comp)
        return comp

    def generate_many(self, requests: Iterable[ChatRequest], concurrency: int | None = None,
                      on_done: Callable[[int, Completion], None] | None = None) -> Iterator[tuple[int, Completion]]:
        """Hits are answered at once; misses go to the inner engine's own ``generate_many``.

        Delegating keeps what the inner engine does best (real batches for transformers, parallel
        slots for llama.cpp, bounded HTTP concurrency) while the cache only fills the gaps.
        """
        ready: deque[tuple[int, Completion]] = deque()
        miss_index: list[int] = []  # position among misses -> position among requests
        miss_keys: list[str] = []

        def misses() -> Iterator[ChatRequest]:
            for i, req in enumerate(requests):
                key = request_key(self.model_id, req)
                hit = self.cache.get(key)
                if hit is not None:
                    with self._lock:
                        self.hits += 1
                    ready.append((i, hit))
                    continue
                with self._lock:
                    self.calls += 1
                miss_index.append(i)
                miss_keys.append(key)
                yield req

        def emit(i: int, comp: Completion) -> tuple[int, Completion]:
            if on_done:
                on_done(i, comp)
            return i, comp

        for j, comp in self.inner.generate_many(misses(), concurrency=concurrency):
            self.cache.put(miss_keys[j], comp)
            while ready:
                yield emit(*ready.popleft())
            yield emit(miss_index[j], comp)
        while ready:
            yield emit(*ready.popleft())

    def choice_logprobs(self, request: ChatRequest, choices: Sequence[str]) -> ChoiceLogprobs:
        """Cached like answers: the key adds the choices, the row's text holds the probabilities."""
        key = request_key(self.model_id, request) + ":choices:" + json.dumps(list(choices), ensure_ascii=False)
        hit = self.cache.get(key)
        if hit is not None:
            with self._lock:
                self.hits += 1
            return ChoiceLogprobs.from_dict(json.loads(hit.text))
        with self._lock:
            self.calls += 1
        res = self.inner.choice_logprobs(request, choices)
        self.cache.put(key, Completion(json.dumps(res.to_dict()), "logprobs", model=self.model_id))
        return res

    def stream(self, request: ChatRequest) -> Iterator[str]:
        key = request_key(self.model_id, request)
        hit = self.cache.get(key)
        if hit is not None:
            yield hit.text
            return
        # streamed answers are not cached: the caller sees tokens as they come and may stop early.
        yield from self.inner.stream(request)

    def close(self) -> None:
        self.inner.close()
