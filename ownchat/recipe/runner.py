"""Run a recipe's stages in one run directory: skip what is up to date, resume what was cut off.

Layout of a run directory::

    recipe.yaml            the recipe as it ran
    run.json               what ran, with which versions, stage keys, timings and results
    stages/<stage>/        each stage's files; stage.json holds its key and status
    stages/<stage>@<key>/  an earlier result kept when a setting changed (reused if it changes back)
    ledger.json            licence and privacy ledgers; MODEL_CARD.md states the verdict
    report.html            one self-contained page

A stage is skipped when its ``stage.json`` says ``done`` under the same key. A stage found ``running``
(the process was killed) runs again in the same folder, where the stage resumes from its own files,
the response cache and its checkpoints.
"""

from __future__ import annotations

import fcntl
import json
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from ownchat.errors import UserError
from ownchat.progress import Progress, silent
from ownchat.recipe.plan import Estimate, Speeds, Stage, StageContext, StageResult, compute_keys, order

STATE = "stage.json"
_PACKAGES = ("ownchat", "torch", "transformers", "peft", "trl", "accelerate", "datasets", "xllamacpp",
             "openai", "pydantic")


@dataclass
class PlanRow:
    stage: Stage
    key: str
    status: str  # "skip" (up to date) | "run" | "resume" (killed earlier) | "rerun" (settings changed)
    estimate: Estimate


@dataclass
class RunOutcome:
    run_dir: Path
    plan: list[PlanRow]
    results: dict[str, StageResult] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _read_state(d: Path) -> dict[str, Any]:
    try:
        return json.loads((d / STATE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=str))
    tmp.replace(path)


def make_plan(stages: list[Stage], run_dir: Path, speeds: Speeds | None = None) -> list[PlanRow]:
    speeds = speeds or Speeds()
    keys = compute_keys(stages)
    rows = []
    for s in order(stages):
        d = run_dir / "stages" / s.dirname
        st = _read_state(d)
        if st.get("key") == keys[s.name] and st.get("status") == "done":
            status = "skip"
        elif st.get("key") == keys[s.name]:
            status = "resume"
        elif st:
            archived = _read_state(run_dir / "stages" / f"{s.dirname}@{keys[s.name]}")
            status = "skip" if archived.get("status") == "done" else "rerun"
        else:
            status = "run"
        rows.append(PlanRow(s, keys[s.name], status, s.estimate(speeds)))
    return rows


class _RunLock:
    """One process per run directory: a second ``ownchat run`` on it fails fast instead of corrupting it."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / ".lock"

    def __enter__(self) -> _RunLock:
        self._f = open(self.path, "w")
        try:
            fcntl.flock(self._f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._f.close()
            raise UserError(f"{self.path.parent} is in use by another `ownchat run`; wait for it or "
                            "use another --out") from None
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._f, fcntl.LOCK_UN)
        self._f.close()


def versions() -> dict[str, Any]:
    pkgs = {}
    for name in _PACKAGES:
        try:
            pkgs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return {"python": sys.version.split()[0], "platform": platform.platform(), "packages": pkgs,
            "git": git_commit()}


def git_commit() -> str | None:
    src = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return head.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _activate(run_dir: Path, stage: Stage, key: str, log: Callable[[str], None]) -> Path:
    """Make ``stages/<stage>`` the folder for ``key``: park a different key's folder, restore a parked one."""
    stages = run_dir / "stages"
    d = stages / stage.dirname
    st = _read_state(d)
    if d.exists() and st.get("key") not in (None, key):
        parked = stages / f"{stage.dirname}@{st['key']}"
        if parked.exists():
            shutil.rmtree(parked)
        d.rename(parked)
        log(f"{stage.name}: settings or inputs changed; kept the earlier result in {parked.name}")
    elif d.exists() and not st:
        shutil.rmtree(d)  # a folder without state never got past its first line: start clean
    back = stages / f"{stage.dirname}@{key}"
    if not d.exists() and back.exists():
        back.rename(d)
        log(f"{stage.name}: restored the result made earlier with these same settings")
    d.mkdir(parents=True, exist_ok=True)
    return d


def execute(stages: list[Stage], run_dir: Path, *, recipe_text: str = "", log: Callable[[str], None] = print,
            on_stage: Callable[[int, int, PlanRow, float], None] | None = None,
            finish: Callable[[RunOutcome, dict[str, Any]], None] | None = None,
            speeds: Speeds | None = None, progress: Progress = silent) -> RunOutcome:
    """Run every stage that is not up to date, in dependency order, writing run.json after each.

    ``on_stage(i, n, row, eta_seconds)`` is called before each stage (the CLI prints a header);
    ``finish(outcome, run_json)`` runs at the end and after a failure (ledgers, report).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    speeds = speeds or Speeds()
    with _RunLock(run_dir):
        if recipe_text:
            (run_dir / "recipe.yaml").write_text(recipe_text, encoding="utf-8")
        plan = make_plan(stages, run_dir, speeds)
        outcome = RunOutcome(run_dir, plan)
        prev = _read_json(run_dir / "run.json")
        info: dict[str, Any] = {
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "first_started": prev.get("first_started") or prev.get("started")
            or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "attempt": int(prev.get("attempt", 0)) + 1,
            **versions(), "status": "running", "stages": [],
        }
        t_run = time.time()
        remaining = sum(r.estimate.seconds for r in plan if r.status != "skip")
        try:
            for i, row in enumerate(plan, start=1):
                s = row.stage
                if on_stage:
                    on_stage(i, len(plan), row, remaining)
                d = _activate(run_dir, s, row.key, log)
                st = _read_state(d)
                if st.get("status") == "done" and st.get("key") == row.key:
                    outcome.results[s.name] = StageResult.from_dict(st.get("result", {}))
                    outcome.skipped.append(s.name)
                    info["stages"].append(_stage_entry(s, row, st, skipped=True))
                    _write_json(run_dir / "run.json", info)
                    continue
                st = {"name": s.name, "kind": s.kind, "key": row.key, "status": "running",
                      "settings": s.settings(), "deps": list(s.deps),
                      "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                      "seconds_before": float(st.get("seconds", 0.0)) + float(st.get("seconds_before", 0.0))}
                _write_json(d / STATE, st)
                t0 = time.time()
                ctx = StageContext(run_dir, d, {n: outcome.results[n] for n in s.deps}, log, progress)
                try:
                    result = s.run(ctx)
                except BaseException as exc:
                    st.update(status="failed", error=f"{type(exc).__name__}: {exc}", seconds=time.time() - t0)
                    _write_json(d / STATE, st)
                    info["stages"].append(_stage_entry(s, row, st))
                    raise
                st.update(status="done", seconds=round(time.time() - t0, 2), result=result.to_dict(),
                          finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
                _write_json(d / STATE, st)
                if _machine_quiet():  # speeds measured beside other heavy jobs would mislead later plans
                    speeds.record(result.speeds)
                outcome.results[s.name] = result
                outcome.ran.append(s.name)
                info["stages"].append(_stage_entry(s, row, st))
                _write_json(run_dir / "run.json", info)
                remaining = max(0.0, remaining - row.estimate.seconds)
            info["status"] = "done"
        except BaseException as exc:
            info["status"] = "failed" if not isinstance(exc, KeyboardInterrupt) else "interrupted"
            info["error"] = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            outcome.seconds = time.time() - t_run
            info["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            info["seconds"] = round(outcome.seconds, 2)
            if finish:
                try:
                    finish(outcome, info)
                except Exception as exc:  # noqa: BLE001 - a report bug must not hide the stage's own error
                    log(f"could not write the report: {type(exc).__name__}: {exc}")
                    info["report_error"] = str(exc)
            _write_json(run_dir / "run.json", info)
        return outcome


def _machine_quiet() -> bool:
    """True unless the load average says other work shared the cores during this stage."""
    import os

    try:
        return os.getloadavg()[0] <= (os.cpu_count() or 1) + 1
    except OSError:
        return True


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _stage_entry(s: Stage, row: PlanRow, st: dict[str, Any], *, skipped: bool = False) -> dict[str, Any]:
    res = st.get("result") or {}
    return {"name": s.name, "kind": s.kind, "key": row.key, "status": st.get("status"), "skipped": skipped,
            "seconds": st.get("seconds"), "seconds_before_resume": st.get("seconds_before") or None,
            "estimate_seconds": round(row.estimate.seconds, 1), "started": st.get("started"),
            "finished": st.get("finished"), "error": st.get("error"), "summary": res.get("summary", {}),
            "usage": res.get("usage", {})}
