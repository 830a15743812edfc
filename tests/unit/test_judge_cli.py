"""`ownchat judge` commands that need no model: questions, report, argument errors."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from ownchat.cli.judge_cmd import app

runner = CliRunner()


def _verdicts(path, a, b, wins_a, wins_b, ties=0):
    with open(path, "a", encoding="utf-8") as f:
        q = 0
        for winner, n in (("model_a", wins_a), ("model_b", wins_b), ("tie", ties)):
            for _ in range(n):
                f.write(json.dumps({"question_id": q, "turn": 1, "category": "math", "model_a": a, "model_b": b,
                                    "winner": winner, "status": "ok", "g1": winner, "g2": winner,
                                    "consistent": True, "len_a": 50 + q, "len_b": 60, "judgments": []}) + "\n")
                q += 1


def test_questions_command_counts_the_bench(tmp_path):
    res = runner.invoke(app, ["questions", "--limit", "8", "--turns", "1", "--out", str(tmp_path / "q.jsonl")])
    assert res.exit_code == 0, res.output
    counts = json.loads(res.output[res.output.index("{"): res.output.rindex("}") + 1])
    assert counts["questions"] == 8 and counts["turns"] == 8
    assert len((tmp_path / "q.jsonl").read_text().splitlines()) == 8


def test_report_command_with_three_models_ranks_them(tmp_path):
    v = tmp_path / "v.jsonl"
    _verdicts(v, "big", "mid", 20, 6, 4)
    _verdicts(v, "mid", "small", 18, 8, 4)
    _verdicts(v, "big", "small", 25, 3, 2)
    res = runner.invoke(app, ["report", str(v), "--out", str(tmp_path / "r"), "--bootstrap", "300"])
    assert res.exit_code == 0, res.output
    assert "big vs mid: win rate" in res.output
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert list(s["elo"]) == ["big", "mid", "small"]
    assert {"model_a", "model_b", "wins_a", "wins_b", "ties", "win_rate_a", "ci95_a", "inconsistency"} <= set(s["pairs"][0])
    html = (tmp_path / "r" / "report.html").read_text()
    assert "Bradley" in html and html.count("data:image/png;base64,") >= 5


def test_bad_inputs_are_user_errors(tmp_path):
    bad = tmp_path / "v.jsonl"
    bad.write_text('{"question_id": 1}\n')
    res = runner.invoke(app, ["report", str(bad), "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "missing" in res.output
    one = tmp_path / "a.jsonl"
    one.write_text("")
    res = runner.invoke(app, ["compare", "-a", str(one), "--out", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 2 and "exactly two" in res.output
