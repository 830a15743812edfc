"""History store, keys, bind checks and the history CLI (no model)."""

from __future__ import annotations

import json
import sqlite3

import pytest
from typer.testing import CliRunner

from ownchat.data.formats import to_messages
from ownchat.errors import DataError, UserError
from ownchat.serve.auth import LOCAL_OWNER, KeyRing, check_bind, is_loopback, legacy_owner_id, owner_id
from ownchat.serve.history import HistoryStore


@pytest.fixture
def store(tmp_path):
    s = HistoryStore(tmp_path / "h.sqlite")
    yield s
    s.close()


def test_conversation_roundtrip_and_owner_isolation(store):
    conv = store.create("alice", system_prompt="Be kind.", settings={"temperature": 0.2}, model="m",
                        license="Apache-2.0")
    store.add_message("alice", conv["id"], "user", "hi")
    store.add_message("alice", conv["id"], "assistant", "hello")
    got = store.get("alice", conv["id"], messages=True)
    assert [m["content"] for m in got["messages"]] == ["hi", "hello"] and got["settings"] == {"temperature": 0.2}
    assert store.get("bob", conv["id"]) is None and store.list("bob") == []
    assert store.add_message("bob", conv["id"], "user", "sneaky") is None
    assert store.delete("bob", conv["id"]) is False
    assert store.list("alice")[0]["n_messages"] == 2
    assert store.update("alice", conv["id"], title="T")["title"] == "T"
    with pytest.raises(ValueError):
        store.add_message("alice", conv["id"], "wizard", "x")


def test_sharegpt_export_reads_back_as_training_data(store):
    conv = store.create(LOCAL_OWNER, system_prompt="S", license="Apache-2.0")
    store.add_message(LOCAL_OWNER, conv["id"], "user", "2+2?")
    store.add_message(LOCAL_OWNER, conv["id"], "assistant", "4")
    rec = store.export_sharegpt(LOCAL_OWNER, conv["id"])
    assert to_messages(rec) == [{"role": "system", "content": "S"}, {"role": "user", "content": "2+2?"},
                                {"role": "assistant", "content": "4"}]
    assert rec["provenance"]["terms"]["key"] == "apache-2.0"


def test_delete_removes_the_bytes_from_the_file(tmp_path):
    path = tmp_path / "h.sqlite"
    store = HistoryStore(path)
    secret = "my-very-private-phrase-" * 20
    keep = store.create("u")
    store.add_message("u", keep["id"], "user", "harmless")
    conv = store.create("u", title="secret chat")
    store.add_message("u", conv["id"], "user", secret)
    assert secret.encode() in path.read_bytes()
    assert store.delete("u", conv["id"])
    # secure_delete overwrites freed pages; no journal or WAL keeps a copy
    assert secret.encode() not in path.read_bytes()
    assert not list(tmp_path.glob("h.sqlite-*"))
    rows = sqlite3.connect(path).execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    assert rows == 1
    assert store.delete_all(None) == 1 and store.list(None) == []
    store.close()


def test_keyring(tmp_path, monkeypatch):
    monkeypatch.setenv("OWNCHAT_HOME", str(tmp_path / "home"))
    ring = KeyRing(["alpha-key-1", "beta-key-22"], secret=b"s" * 32)
    assert ring.check("Bearer alpha-key-1") == owner_id("alpha-key-1", b"s" * 32)
    assert ring.check(None, "beta-key-22") == owner_id("beta-key-22", b"s" * 32)
    assert ring.check("Bearer nope-nope-1") is None and ring.check(None) is None
    assert ring.check("Basic alpha-key-1") is None
    assert KeyRing().check(None) == LOCAL_OWNER
    f = tmp_path / "keys.txt"
    f.write_text("# team keys\nalpha-key-1\n\nbeta-key-22\n")
    assert len(KeyRing.load(["gamma-key-333"], f)) == 3
    f.write_text("short\n")
    with pytest.raises(UserError, match="too short"):
        KeyRing.load([], f)
    f.write_text("two words here\n")
    with pytest.raises(DataError, match=":1:"):
        KeyRing.load([], f)
    with pytest.raises(DataError, match="not found"):
        KeyRing.load([], tmp_path / "missing.txt")


def test_owner_ids_are_salted_per_install_and_old_rows_move(tmp_path, monkeypatch):
    import hashlib
    import stat

    from fastapi.testclient import TestClient

    from ownchat.engines.base import Engine
    from ownchat.serve.app import ServeSettings, create_app

    monkeypatch.setenv("OWNCHAT_HOME", str(tmp_path / "home"))
    key = "alpha-key-1"
    ring = KeyRing.load([key])
    secret_file = tmp_path / "home" / "serve-owner.secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600 and len(secret_file.read_bytes()) == 32
    oid = ring.check(f"Bearer {key}")
    unsalted = hashlib.sha256(key.encode()).hexdigest()
    assert unsalted[:24] not in oid and oid == KeyRing.load([key]).check(f"Bearer {key}")  # stable per install
    assert oid != KeyRing([key]).check(f"Bearer {key}")  # another secret, another id
    # a history written by an earlier version, under the unsalted id, stays readable with the key
    store = HistoryStore(tmp_path / "h.sqlite")
    cid = store.create(legacy_owner_id(key), title="from before")["id"]
    store.close()
    settings = ServeSettings(model_name="m", history_path=tmp_path / "h.sqlite", keys=KeyRing.load([key]))
    with TestClient(create_app(Engine(), settings), base_url="http://127.0.0.1") as c:
        listed = c.get("/api/conversations", headers={"Authorization": f"Bearer {key}"}).json()
        assert [x["id"] for x in listed] == [cid]
    rows = sqlite3.connect(tmp_path / "h.sqlite").execute("SELECT owner FROM conversations").fetchall()
    assert rows == [(oid,)]


def test_binding_beyond_loopback_needs_keys():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    check_bind("127.0.0.1", KeyRing())
    with pytest.raises(UserError, match="API keys"):
        check_bind("0.0.0.0", KeyRing())
    check_bind("0.0.0.0", KeyRing(["a-long-key-1"]))


def test_serve_cli_refuses_public_bind_without_keys():
    from ownchat.cli.main import app

    res = CliRunner().invoke(app, ["serve", "smollm2-135m-instruct", "--host", "0.0.0.0"])
    assert res.exit_code == 2 and "--api-key" in res.output


def test_history_cli_list_export_delete(tmp_path):
    from ownchat.cli.main import app

    path = tmp_path / "h.sqlite"
    store = HistoryStore(path)
    ids = []
    for q in ("one", "two"):
        c = store.create(LOCAL_OWNER, title=q)
        store.add_message(LOCAL_OWNER, c["id"], "user", q)
        store.add_message(LOCAL_OWNER, c["id"], "assistant", q.upper())
        ids.append(c["id"])
    store.close()
    run = CliRunner().invoke
    res = run(app, ["history", "list", "--history", str(path), "--json"])
    assert res.exit_code == 0 and {c["title"] for c in json.loads(res.output)} == {"one", "two"}
    out = tmp_path / "chats.jsonl"
    res = run(app, ["history", "export", "--history", str(path), "-o", str(out)])
    assert res.exit_code == 0
    assert oct(out.stat().st_mode & 0o777) == oct(path.stat().st_mode & 0o777) == "0o600"  # chats stay private
    recs = [json.loads(x) for x in out.read_text().split("\n") if x]
    assert [to_messages(r)[1]["content"] for r in recs] == ["ONE", "TWO"]
    res = run(app, ["history", "delete", ids[0][:8], "--history", str(path)])
    assert res.exit_code == 0
    res = run(app, ["history", "delete", "zzzz", "--history", str(path)])
    assert res.exit_code == 2 and "no conversation" in res.output
    res = run(app, ["history", "delete", "--all", "--yes", "--history", str(path)])
    assert res.exit_code == 0 and "deleted 1" in res.output
    assert HistoryStore(path).list(None) == []
    res = run(app, ["history", "list", "--history", str(tmp_path / "none.sqlite")])
    assert res.exit_code == 2 and "no chat history" in res.output


def test_open_sockets_sees_this_process_sockets():
    import os
    import socket

    from ownchat.serve.process import free_port, open_sockets

    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        found = open_sockets(os.getpid())
    assert {"proto": "tcp", "local": ("127.0.0.1", port), "remote": ("0.0.0.0", 0), "state": "0A"} in found
