"""Tables a person can pipe: full names when stdout is not a terminal, and --json for scripts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from ownchat.models.packs import PACKS


def ownchat(*args: str, home) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["OWNCHAT_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "ownchat.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=120)  # stdout is a pipe, as in `ownchat models list | cat`


def test_models_list_piped_shows_whole_names(tmp_path):
    res = ownchat("models", "list", home=tmp_path)
    assert res.returncode == 0, res.stderr
    long_names = [n for n in PACKS if len(n) > 14]
    assert long_names and all(n in res.stdout for n in long_names), res.stdout
    assert "…" not in res.stdout


def test_models_list_json(tmp_path):
    res = ownchat("models", "list", "--json", home=tmp_path)
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert [r["name"] for r in rows] == list(PACKS)
    assert {"name", "kind", "installed", "bytes", "license", "packages", "path"} <= set(rows[0])


def test_history_list_piped_shows_whole_titles(tmp_path):
    from ownchat.serve.auth import LOCAL_OWNER
    from ownchat.serve.history import HistoryStore

    title = "A rather long conversation title that would not fit in eighty columns of a table"
    store = HistoryStore(tmp_path / "history.sqlite")
    store.create(LOCAL_OWNER, title=title, model="qwen2.5-coder-1.5b-instruct")
    store.close()
    res = ownchat("history", "list", home=tmp_path)
    assert res.returncode == 0, res.stderr
    assert title in res.stdout and "qwen2.5-coder-1.5b-instruct" in res.stdout
