"""The runner with fake stages (no model): hashing, skipping, re-running downstream only, resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ownchat.recipe.plan import Estimate, Speeds, Stage, StageContext, StageResult, compute_keys, order
from ownchat.recipe.runner import execute, make_plan


class Fake(Stage):
    kind = "fake"

    def __init__(self, name, deps=(), setting=0, calls=None, files=(), fail=False):
        super().__init__(name, deps)
        self.setting, self.calls, self.files, self.fail = setting, calls if calls is not None else [], files, fail

    def settings(self):
        return {"setting": self.setting}

    def input_files(self):
        return [Path(f) for f in self.files]

    def estimate(self, speeds):
        return Estimate(seconds=10, tokens_out=100)

    def run(self, ctx: StageContext) -> StageResult:
        self.calls.append(self.name)
        upstream = "".join((ctx.run_dir / r.artifacts["out"]).read_text() for r in ctx.results.values())
        if self.fail:
            raise RuntimeError("boom")
        out = ctx.dir / "out.txt"
        out.write_text(upstream + f"{self.name}={self.setting};")
        return StageResult(summary={"n": self.setting}, artifacts={"out": ctx.rel(out)})


def chain(calls, a=0, b=0, c=0, files=()):
    return [Fake("a", (), a, calls, files), Fake("b", ("a",), b, calls), Fake("c", ("a",), c, calls)]


@pytest.fixture
def speeds(tmp_path):
    return Speeds(tmp_path / "speeds.json")


def test_second_run_skips_everything(tmp_path, speeds):
    calls = []
    execute(chain(calls), tmp_path / "run", log=lambda m: None, speeds=speeds)
    assert calls == ["a", "b", "c"]
    calls.clear()
    out = execute(chain(calls), tmp_path / "run", log=lambda m: None, speeds=speeds)
    assert calls == [] and out.skipped == ["a", "b", "c"]
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["status"] == "done" and info["attempt"] == 2
    assert [s["skipped"] for s in info["stages"]] == [True, True, True]
    assert "ownchat" in info["packages"] and info["python"]


def test_changing_one_setting_reruns_only_dependents(tmp_path, speeds):
    calls = []
    execute(chain(calls), tmp_path / "run", log=lambda m: None, speeds=speeds)
    calls.clear()
    execute(chain(calls, b=5), tmp_path / "run", log=lambda m: None, speeds=speeds)
    assert calls == ["b"]
    calls.clear()
    execute(chain(calls, a=1, b=5), tmp_path / "run", log=lambda m: None, speeds=speeds)
    assert calls == ["a", "b", "c"]
    assert (tmp_path / "run/stages/c/out.txt").read_text() == "a=1;c=0;"


def test_changing_back_restores_the_parked_result(tmp_path, speeds):
    calls = []
    run = tmp_path / "run"
    execute(chain(calls), run, log=lambda m: None, speeds=speeds)
    execute(chain(calls, b=5), run, log=lambda m: None, speeds=speeds)
    calls.clear()
    plan = make_plan(chain(calls), run, speeds)
    assert {r.stage.name: r.status for r in plan} == {"a": "skip", "b": "skip", "c": "skip"}
    execute(chain(calls), run, log=lambda m: None, speeds=speeds)
    assert calls == [] and (run / "stages/b/out.txt").read_text() == "a=0;b=0;"


def test_input_file_bytes_are_part_of_the_key(tmp_path, speeds):
    data = tmp_path / "data.jsonl"
    data.write_text('{"x": 1}\n')
    k1 = compute_keys(chain([], files=[data]))
    data.write_text('{"x": 2}\n')
    k2 = compute_keys(chain([], files=[data]))
    assert k1["a"] != k2["a"] and k1["b"] != k2["b"]


def test_failure_then_resume_runs_the_failed_stage_in_place(tmp_path, speeds):
    calls = []
    stages = chain(calls)
    stages[1].fail = True
    with pytest.raises(RuntimeError):
        execute(stages, tmp_path / "run", log=lambda m: None, speeds=speeds)
    info = json.loads((tmp_path / "run/run.json").read_text())
    assert info["status"] == "failed" and "boom" in info["error"]
    plan = make_plan(chain([]), tmp_path / "run", speeds)
    assert [r.status for r in plan] == ["skip", "resume", "run"]
    calls.clear()
    execute(chain(calls), tmp_path / "run", log=lambda m: None, speeds=speeds)
    assert calls == ["b", "c"]


def test_cycles_and_unknown_dependencies_are_rejected():
    with pytest.raises(ValueError, match="cycle"):
        order([Fake("a", ("b",)), Fake("b", ("a",))])
    with pytest.raises(ValueError, match="unknown stage"):
        order([Fake("a", ("zzz",))])


def test_kill_9_mid_stage_resumes(tmp_path):
    """A real child process is killed with SIGKILL inside stage b; the next run resumes b, skips a."""
    run = tmp_path / "run"
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_recipe_runner import Fake, chain
        from ownchat.recipe.plan import Speeds
        from ownchat.recipe.runner import execute
        calls = []
        stages = chain(calls)
        if sys.argv[1] == "kill":
            stages[1].run = lambda ctx: os.kill(os.getpid(), signal.SIGKILL)
        execute(stages, __import__("pathlib").Path({str(run)!r}), log=lambda m: None,
                speeds=Speeds(__import__("pathlib").Path({str(tmp_path / "s.json")!r})))
        print(",".join(calls))
    """))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    killed = subprocess.run([sys.executable, str(script), "kill"], capture_output=True, text=True, env=env)
    assert killed.returncode == -9
    assert json.loads((run / "stages/b/stage.json").read_text())["status"] == "running"
    again = subprocess.run([sys.executable, str(script), "go"], capture_output=True, text=True, env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "b,c"


def test_measured_speeds_are_blended_and_persisted(tmp_path):
    s = Speeds(tmp_path / "speeds.json")
    assert s.get("gen", "qwen2.5-coder-1.5b-instruct") == (35.0, False)
    s.record({"gen:qwen2.5-coder-1.5b-instruct": 45.0})
    s.record({"gen:qwen2.5-coder-1.5b-instruct": 55.0})
    again = Speeds(tmp_path / "speeds.json")
    assert again.get("gen", "qwen2.5-coder-1.5b-instruct") == (50.0, True)
    # unknown models scale from SmolLM2 by parameter count: a 7B trains ~50x slower
    fast, _ = again.get("train", "smollm2-135m-instruct")
    slow, _ = again.get("train", "meta-llama/Llama-3.1-8B")
    assert 50 < fast / slow < 70
