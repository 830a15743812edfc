"""A synth run in a child process, for the kill -9 test (run as a script, not collected by pytest).

    python synth_child.py OUT CACHE_DB KEYLOG [PAUSE_AFTER]

Runs ``synth answer`` on the SmolLM2 pack over QUESTIONS and appends the cache key of every request
the model really answered to KEYLOG. With PAUSE_AFTER, once that many records are committed it writes OUT.paused and
parks the main thread right there (after the commit, at a record boundary) until it is killed.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

from ownchat.engines import CachedEngine, ResponseCache, load_engine
from ownchat.engines.base import Engine
from ownchat.engines.cache import request_key
from ownchat.synth import FilterConfig, SynthConfig, run_synth

SLOTS = 2
QUESTIONS = ["Name a fruit that is yellow.", "What colour is the sky on a clear day?", "Name a large animal.",
             "What is two plus two?", "Name a month of the year.", "Name a colour of a rose.",
             "What do bees make?", "Name a planet in our solar system."]


class Logged(Engine):
    """Delegates to the model; logs each answered request's key (what a rerun must not pay again)."""

    def __init__(self, inner: Engine, log: Path) -> None:
        self.inner, self.name, self.model_id = inner, inner.name, inner.model_id
        self.max_concurrency, self.license = inner.max_concurrency, inner.license
        self._log, self._lock = open(log, "a", encoding="utf-8"), threading.Lock()

    def generate(self, req):
        comp = self.inner.generate(req)
        with self._lock:
            self._log.write(request_key(self.model_id, req) + "\n")
            self._log.flush()
        return comp


def main() -> None:
    out, db, keylog = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    pause = int(sys.argv[4]) if len(sys.argv) > 4 else None
    model = load_engine("smollm2-135m-instruct", concurrency=SLOTS, log=lambda m: None)
    eng = CachedEngine(Logged(model, keylog), ResponseCache(db))

    def on_kept(kept: int, _n: int) -> None:
        if pause is not None and kept >= pause:
            out.with_name(out.name + ".paused").write_text(json.dumps({"kept": kept}))
            while True:  # parked at a record boundary until the parent sends SIGKILL
                time.sleep(1)

    src = out.with_name("questions.jsonl")
    src.write_text("".join(json.dumps({"id": f"q{i}", "instruction": q}) + "\n" for i, q in enumerate(QUESTIONS)))
    cfg = SynthConfig(mode="answer", out=out, teacher="smollm2-135m-instruct", n=len(QUESTIONS), inputs=src,
                      concurrency=SLOTS, gen_tokens=96, filters=FilterConfig(language="en"))
    res = run_synth(cfg, log=lambda m: None, engine=eng, on_kept=on_kept)
    print(json.dumps({"kept": res.kept, "stopped": res.stopped}))


if __name__ == "__main__":
    main()
