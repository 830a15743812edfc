"""GSM8K loading, the eval/pool split, Wilson intervals, evaluation files and resume (no model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from improve_fakes import QuestionEngine, write_gsm

from ownchat.errors import DataError, UserError
from ownchat.improve.evaluate import Accuracy, EvalConfig, evaluate_gsm8k
from ownchat.improve.gsm8k import Problem, check_disjoint, load_problems, select
from ownchat.improve.report import Row, write_report
from ownchat.stats import mcnemar_exact, paired_gain, wilson


def test_wilson_known_values() -> None:
    lo, hi = wilson(50, 100)
    assert round(lo, 4) == 0.4038 and round(hi, 4) == 0.5962
    assert wilson(0, 10)[0] == 0.0 and 0.25 < wilson(0, 10)[1] < 0.35
    assert wilson(0, 0) == (0.0, 1.0)


def test_load_problems_and_errors(tmp_path: Path) -> None:
    f = write_gsm(tmp_path / "g.jsonl", [("One?", "1,000"), ("Two?", "2")])
    probs = load_problems(f)
    assert [(p.index, p.gold) for p in probs] == [(0, "1000"), (1, "2")]
    assert all(p.gold is None for p in load_problems(f, labeled=False))  # labels dropped
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "x", "answer": "no hashes"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:1: .*####"):
        load_problems(bad)
    bad.write_text('{"answer": "#### 3"}\n')
    with pytest.raises(DataError, match="no 'question'"):
        load_problems(bad)
    with pytest.raises(UserError):
        select(probs, offset=5)


def test_pool_overlapping_eval_is_refused() -> None:
    evals = [Problem(0, "How many  apples?", "3")]
    pool = [Problem(0, "how many apples?", None), Problem(1, "Other?", None)]
    with pytest.raises(DataError, match="also in the evaluation subset"):
        check_disjoint(evals, pool, eval_source="t", pool_source="p.jsonl", eval_range=(0, 1))
    split = check_disjoint(evals, pool[1:], eval_source="t", pool_source="p", eval_range=(0, 1))
    assert split.to_dict()["disjoint"] is True and split.pool_size == 1


def test_evaluate_greedy_and_sc_writes_everything_and_resumes(tmp_path: Path) -> None:
    data = write_gsm(tmp_path / "g.jsonl", [("A?", "4"), ("B?", "7"), ("C?", "9")])
    # greedy answer first; SC samples cycle through the rest
    eng = QuestionEngine({"A?": ["5", "4", "4", "3"], "B?": ["7", "7", "1", "7"], "C?": ["9", "9", "2", "2"]})
    cfg = EvalConfig(model="fake", out=tmp_path / "ev", data=str(data), sc_k=3, max_tokens=16)
    res = evaluate_gsm8k(cfg, log=lambda *_: None, engine=eng)
    assert (res.greedy.correct, res.greedy.n) == (2, 3)  # B and C right greedily
    assert res.sc.correct == 2  # A: 4,4,3 right; B: 7,1,7 right; C: 9,2,2 wrong
    assert [a.correct for a in res.curve] == [3, 3, 2]  # C is right until its third sample
    for name in ("greedy.jsonl", "sc_samples.jsonl", "sc_votes.jsonl", "summary.json", "report.md",
                 "report.json", "report.png", "accuracy_vs_k.png"):
        assert (cfg.out / name).exists(), name
    summary = json.loads((cfg.out / "summary.json").read_text())
    assert summary["sc"]["ci95"][0] < summary["sc"]["accuracy"] < summary["sc"]["ci95"][1]
    # paired over the same questions: A right only with SC, C right only greedily
    assert res.per_question == {"greedy": [False, True, True], "sc": [True, True, False]}
    paired = summary["sc_vs_greedy"]
    assert (paired["only_after"], paired["only_before"], paired["gain"], paired["mcnemar_p"]) == (1, 1, 0.0, 1.0)
    assert "paired over the same 3 questions" in (cfg.out / "report.md").read_text()
    calls = eng.calls
    assert calls == 3 + 9
    again = evaluate_gsm8k(cfg, log=lambda *_: None, engine=eng)  # everything on disk: no requests
    assert eng.calls == calls and again.sc.correct == res.sc.correct
    with pytest.raises(UserError, match="different"):
        evaluate_gsm8k(EvalConfig(model="fake", out=cfg.out, data=str(data), shots=1), engine=eng)


def test_markdown_table_has_ci_and_n(tmp_path: Path) -> None:
    rows = [Row("Greedy CoT", "m", Accuracy(30, 100)), Row("Self-consistency", "m", Accuracy(40, 100), 5)]
    md = write_report(rows, tmp_path, title="t")["md"].read_text()
    assert "| Greedy CoT | m | 1 | 100 | 30.0% (30/100) | [21.9%, 39.6%] | +0.0% |" in md
    assert "+10.0%" in md


def test_sc_file_scores_gsm_records_and_accepts_chat_records(tmp_path: Path, monkeypatch) -> None:
    import ownchat.engines
    from ownchat.improve.sc_file import SCFileConfig, run_sc_file

    q = tmp_path / "q.jsonl"
    q.write_text(json.dumps({"question": "A?", "answer": "#### 4"}) + "\n"
                 + json.dumps({"messages": [{"role": "user", "content": "Question: B?"}]}) + "\n")
    eng = QuestionEngine({"A?": ["0", "4", "4", "3"], "B?": ["0", "7", "1", "7"]})
    monkeypatch.setattr(ownchat.engines, "load_engine", lambda *a, **k: eng)
    summary = run_sc_file(SCFileConfig(model="fake", questions=q, out=tmp_path / "o", k=3), log=lambda *_: None)
    rows = {r["index"]: r for r in map(json.loads, (tmp_path / "o" / "sc.jsonl").read_text().splitlines())}
    assert rows[0]["answer"] == "4" and rows[0]["correct"] is True and rows[0]["confidence"] == 0.6667
    assert rows[1]["answer"] == "7" and "gold" not in rows[1]
    assert summary["accuracy"]["n"] == 1
    calls = eng.calls
    run_sc_file(SCFileConfig(model="fake", questions=q, out=tmp_path / "o", k=3), log=lambda *_: None)
    assert eng.calls == calls  # finished questions are skipped on a re-run
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "assistant", "content": "hi"}]}) + "\n")
    with pytest.raises(DataError, match="bad.jsonl:1"):
        run_sc_file(SCFileConfig(model="fake", questions=bad, out=tmp_path / "b", k=1))


def test_finished_directory_is_rescored_without_loading_a_model(tmp_path: Path, monkeypatch) -> None:
    import ownchat.engines

    data = write_gsm(tmp_path / "g.jsonl", [("A?", "4"), ("B?", "7")])
    eng = QuestionEngine({"A?": ["4", "4", "1"], "B?": ["7", "2", "2"]})
    cfg = EvalConfig(model="fake", out=tmp_path / "ev", data=str(data), sc_k=2)
    first = evaluate_gsm8k(cfg, log=lambda *_: None, engine=eng)

    def no_model(*a, **k):
        raise AssertionError("a finished evaluation must not load the model")

    monkeypatch.setattr(ownchat.engines, "load_engine", no_model)
    again = evaluate_gsm8k(cfg, log=lambda *_: None)
    assert again.sc.correct == first.sc.correct and again.greedy.correct == first.greedy.correct
    summary = json.loads((cfg.out / "summary.json").read_text())
    assert summary["all_runs"]["invocations"] == 2 and summary["all_runs"]["generated_requests"] == 2 + 4
    with pytest.raises(AssertionError, match="must not load"):  # one more question: the model is needed
        evaluate_gsm8k(EvalConfig(model="fake", out=cfg.out, data=str(data), sc_k=3), log=lambda *_: None)


def test_paired_gain_and_mcnemar_known_values() -> None:
    # 29 discordant questions split 21/8: two-sided exact binomial p = 0.0241 (R: binom.test(8, 29))
    assert mcnemar_exact(8, 21) == pytest.approx(0.02412, abs=1e-5) == mcnemar_exact(21, 8)
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(5, 5) == 1.0
    before = [True] * 30 + [False] * 60 + [True] * 2 + [False] * 8
    after = [True] * 30 + [False] * 60 + [False] * 2 + [True] * 8
    p = paired_gain(before, after)
    assert p["gain"] == pytest.approx(0.06) and (p["only_after"], p["only_before"]) == (8, 2)
    assert p["ci"][0] < 0.06 < p["ci"][1] and p["mcnemar_p"] == pytest.approx(0.1094, abs=1e-4)
    with pytest.raises(ValueError, match="same items"):
        paired_gain([True], [True, False])
