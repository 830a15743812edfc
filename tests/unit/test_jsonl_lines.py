"""JSONL is split on "\\n" only. ``json.dumps(..., ensure_ascii=False)`` writes U+2028, U+2029 and U+0085
raw inside strings, and ``str.splitlines`` splits on them: a record cut in two, a wrong count, a
crash test that flaked. Records holding those characters go through read, count and resume here."""

from __future__ import annotations

import json

import pytest

from ownchat.data.jsonl import JsonlWriter, count_lines, read_jsonl, repair_tail, split_lines
from ownchat.errors import DataError

ODD = ["line\u2028separator", "para\u2029graph", "next\u0085line", "form\u000cfeed\u001dgroup", "plain"]


@pytest.fixture
def odd_file(tmp_path):
    path = tmp_path / "odd.jsonl"
    with JsonlWriter(path) as w:
        for i, text in enumerate(ODD):
            w.write({"id": i, "text": text})
    raw = path.read_text(encoding="utf-8")
    assert "\u2028" in raw and "\u0085" in raw  # written raw, so a splitlines reader would see 8+ lines
    assert len(raw.splitlines()) > len(ODD)
    return path


def test_read_and_count(odd_file):
    assert [r["text"] for r in read_jsonl(odd_file)] == ODD
    assert count_lines(odd_file) == len(ODD) == len(split_lines(odd_file.read_text(encoding="utf-8")))


def test_resume_after_a_cut_record(odd_file):
    data = odd_file.read_bytes()
    odd_file.write_bytes(data[: data.rfind(b"para")])  # killed in the middle of the record holding U+2029
    assert [r["id"] for r in read_jsonl(odd_file, allow_partial_last_line=True)] == [0]
    assert repair_tail(odd_file) == 1
    with JsonlWriter(odd_file) as w:  # the resumed run writes the rest again
        for i, text in enumerate(ODD[1:], start=1):
            w.write({"id": i, "text": text})
    assert [r["text"] for r in read_jsonl(odd_file)] == ODD and count_lines(odd_file) == len(ODD)


def test_feedback_counts_finished_lines_by_newline(odd_file):
    from ownchat.feedback.collect import _count_lines

    assert _count_lines(odd_file) == len(ODD)


def test_judge_questions_keep_true_line_numbers(tmp_path):
    from ownchat.judge.questions import load_questions

    path = tmp_path / "q.jsonl"
    rows = [{"question_id": 1, "turns": ["Explain\u2028this."]}, {"question_id": 2, "turns": ["ok\u0085"]},
            {"question_id": 3, "turns": []}]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(DataError, match=r"q\.jsonl:5:"):  # blank lines between: the bad one is line 5
        load_questions(path)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[:2]), encoding="utf-8")
    assert [q.turns[0] for q in load_questions(path)] == ["Explain\u2028this.", "ok\u0085"]


def test_crlf_files_and_blank_lines_still_read(tmp_path):
    path = tmp_path / "win.jsonl"
    path.write_bytes(b'{"a": 1}\r\n\r\n{"a": "x\xe2\x80\xa8y"}\r\n')
    assert [r["a"] for r in read_jsonl(path)] == [1, "x\u2028y"]
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"a": 1}\n{"a": "\xff"}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl:2: not UTF-8"):
        list(read_jsonl(bad))
