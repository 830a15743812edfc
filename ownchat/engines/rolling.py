"""Keep every slot busy: a rolling request pool, and jobs that feed it step by step.

A *round* (ask N things, wait for all N, ask the next N) leaves slots idle while its slowest answer
finishes. Here work is split into **jobs** (one instruction to answer, one conversation, one Alpaca
batch...). A job is a generator: it yields a list of requests, receives their completions (in the
same order), yields the next list, and finally returns its result. ``run_jobs`` keeps ``slots``
requests in flight at all times, starting new jobs whenever a slot would otherwise idle, and hands
results back **in job order** (a reorder buffer), so output stays deterministic however the
answers interleave.

Two knobs bound how far work may run past an unfinished job:

- ``ahead``: jobs started but not yet handed back (the reorder buffer's size);
- ``lag``: job ``p`` starts only after jobs ``< p - lag`` were handed back *and the caller came
  back for more* (i.e. committed). A job may therefore read state that depends on jobs
  ``<= p - lag - 1`` and nothing later: the dependency window of modes whose requests depend on
  what was kept (Self-Instruct's task pool). ``lag=None``: jobs are independent.

Engines that batch for real (transformers: one ``model.generate`` per batch) get their requests
grouped: whatever is waiting when a batch starts goes in it. Engines that take concurrent calls
(llama.cpp slots, HTTP) get one thread per slot, exactly like ``Engine.generate_many``.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ownchat.engines.base import ChatRequest, Completion, Engine

DEFAULT = "default"
#: what a job yields: requests for the default engine, or (engine key, requests)
Step = Sequence[ChatRequest] | tuple[str, Sequence[ChatRequest]]
Job = Generator[Step, list[Completion], Any]


def batches_for_real(engine: Engine) -> bool:
    """Whether the engine (under its cache) runs one batch at a time rather than concurrent calls."""
    inner = getattr(engine, "inner", engine)
    return type(inner).generate_many is not Engine.generate_many


class RollingPool:
    """At most ``slots`` requests on one engine at once; finished ones land on a shared queue.

    ``submit`` never blocks (callers check ``free()``); completions arrive as ``(key, tag, completion)``
    on ``results``. A request that raises an ordinary exception becomes an error completion (one bad
    request never sinks the run); anything harsher (KeyboardInterrupt, a test's simulated kill) is
    re-raised by ``run_jobs`` in the caller's thread.
    """

    def __init__(self, engine: Engine, slots: int | None, results: queue.Queue, key: str = DEFAULT) -> None:
        self.engine, self.key, self.results = engine, key, results
        self.slots = max(1, slots or engine.max_concurrency)
        self.in_flight = 0
        self.batching = batches_for_real(engine)
        self._waiting: list[tuple[Any, ChatRequest]] = []
        self._cv = threading.Condition()
        self._closed = False
        if self.batching:
            self._worker = threading.Thread(target=self._batch_loop, daemon=True, name=f"{engine.name}-batches")
            self._worker.start()
        else:
            self._pool = ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix=f"{engine.name}-slot")

    def free(self) -> int:
        return self.slots - self.in_flight

    def submit(self, tag: Any, request: ChatRequest) -> None:
        self.in_flight += 1
        if self.batching:
            with self._cv:
                self._waiting.append((tag, request))
                self._cv.notify()
        else:
            self._pool.submit(self._one, tag, request)

    def finished(self) -> None:
        """Called by the consumer for each result it took off the queue."""
        self.in_flight -= 1

    def _one(self, tag: Any, request: ChatRequest) -> None:
        try:
            comp = self.engine.generate(request)
        except Exception as exc:  # noqa: BLE001 - a visible error record, never a lost request
            comp = Completion("", "error", error=f"{type(exc).__name__}: {exc}", model=self.engine.model_id)
        except BaseException as exc:  # re-raised in the consumer: a worker must not swallow it
            self.results.put((self.key, tag, exc))
            return
        self.results.put((self.key, tag, comp))

    def _batch_loop(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._waiting or self._closed)
                if not self._waiting:
                    return
                batch, self._waiting = self._waiting, []
            try:
                for i, comp in self.engine.generate_many([r for _, r in batch], concurrency=len(batch)):
                    self.results.put((self.key, batch[i][0], comp))
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
                for tag, _ in batch:
                    self.results.put((self.key, tag, exc))

    def close(self, wait: bool = True) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify()
        if not self.batching:
            self._pool.shutdown(wait=wait, cancel_futures=not wait)


@dataclass
class _Live:
    index: int
    gen: Job
    key: str = DEFAULT
    comps: list[Completion | None] = field(default_factory=list)
    missing: int = 0


def run_jobs(engines: Engine | dict[str, tuple[Engine, int | None]], jobs: Iterable[Job], *,
             slots: int | None = None, ahead: int | None = None, lag: int | None = None,
             may_start: Callable[[], bool] | None = None,
             on_completion: Callable[[int, str, Completion], None] | None = None) -> Iterator[tuple[int, Any]]:
    """Run ``jobs`` (started lazily, in order) and yield ``(job index, result)`` in job order.

    ``engines`` is one engine (with ``slots``) or ``{key: (engine, slots)}`` for jobs that talk to
    several (a student samples, a teacher grades). ``may_start()`` is asked before each new job
    (budgets); ``on_completion(job, key, completion)`` sees every completion as it arrives. Stop
    early by closing the iterator (``break``): requests in flight are waited for and dropped (the
    response cache keeps them), unstarted jobs are never started.
    """
    results: queue.Queue = queue.Queue()
    specs = {DEFAULT: (engines, slots)} if isinstance(engines, Engine) else engines
    pools = {k: RollingPool(eng, n, results, k) for k, (eng, n) in specs.items()}
    capacity = sum(p.slots for p in pools.values())
    ahead = max(1, ahead or 4 * capacity)
    waiting: dict[str, list] = {k: [] for k in pools}  # heap of (job index, seq, position, request)
    live: dict[int, _Live] = {}
    done: dict[int, Any] = {}
    seq = itertools.count()
    source = iter(jobs)
    started = emitted = 0
    exhausted = False
    ready: list[_Live] = []  # answered steps not yet sent into their jobs

    def advance(job: _Live, value: list[Completion] | None) -> None:
        while True:
            try:
                step = job.gen.send(value)
            except StopIteration as stop:
                del live[job.index]
                done[job.index] = stop.value
                return
            key, reqs = step if isinstance(step, tuple) else (DEFAULT, step)
            if not reqs:
                value = []
                continue
            job.key, job.comps, job.missing = key, [None] * len(reqs), len(reqs)
            for pos, req in enumerate(reqs):
                heapq.heappush(waiting[key], (job.index, next(seq), pos, req))
            return

    def queued() -> int:
        return sum(len(w) for w in waiting.values()) + sum(p.in_flight for p in pools.values())

    abandon = False  # on an error or interrupt, do not wait for requests still running
    try:
        while True:
            while (not exhausted and started - emitted < ahead and (lag is None or started - lag <= emitted)
                   and queued() < capacity and (may_start is None or may_start())):
                try:
                    gen = next(source)
                except StopIteration:
                    exhausted = True
                    break
                job = live[started] = _Live(started, gen)
                started += 1
                advance(job, None)
            # refill free slots before handing results back: the caller's commit (an fsync, a stats
            # file) then overlaps with generation instead of leaving a slot idle.
            # Older jobs first: they finish, and can be handed back, sooner.
            for key, pool in pools.items():
                heap = waiting[key]
                while heap and pool.free() > 0:
                    idx, _, pos, req = heapq.heappop(heap)
                    pool.submit((idx, pos), req)
            if ready:  # jobs whose step is answered: their own work runs while the refilled slots decode
                for job in ready:
                    advance(job, job.comps)  # type: ignore[arg-type]
                ready.clear()
                continue
            if emitted in done:
                while emitted in done:
                    result = done.pop(emitted)
                    emitted += 1
                    yield emitted - 1, result
                continue  # the caller may have changed what may start (lag, budgets)
            if not any(p.in_flight for p in pools.values()):
                if live:  # a job waits on nothing: a bug in the job, not a reason to hang
                    raise RuntimeError(f"job {min(live)} is waiting with no request in flight")
                return  # input exhausted, or may_start() said stop
            key, (idx, pos), comp = results.get()
            pools[key].finished()
            if isinstance(comp, BaseException):
                raise comp
            if on_completion:
                on_completion(idx, key, comp)
            job = live[idx]
            job.comps[pos] = comp
            job.missing -= 1
            if job.missing == 0:
                ready.append(job)
    except GeneratorExit:
        raise
    except BaseException:
        abandon = True
        raise
    finally:
        for job in list(live.values()):
            job.gen.close()
        _drain(pools, results, wait=not abandon)


def _drain(pools: dict[str, RollingPool], results: queue.Queue, wait: bool) -> None:
    """Wait for requests still in flight (their answers reach the response cache), then shut down."""
    try:
        while wait and any(p.in_flight > 0 for p in pools.values()):
            key, _, _ = results.get()
            pools[key].finished()
    finally:
        for p in pools.values():
            p.close(wait=wait)
