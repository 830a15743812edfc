"""Private chat history: one local SQLite file, rows owned by an API key, deletes that really delete.

``secure_delete`` makes SQLite overwrite deleted content with zeros, and deletes run in a transaction
of their own, so a deleted conversation is gone from the file the moment the call returns (the WAL
is not used for the same reason: it would keep old pages around until a checkpoint).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ownchat import paths
from ownchat.data.formats import from_messages
from ownchat.licensing import lookup

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    title TEXT NOT NULL,
    system_prompt TEXT NOT NULL DEFAULT '',
    settings TEXT NOT NULL DEFAULT '{}',
    model TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    updated REAL NOT NULL,
    license TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS conversations_owner ON conversations(owner, updated);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    created REAL NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS messages_conversation ON messages(conversation_id, id);
"""

ROLES = ("system", "user", "assistant")


def default_history_db() -> Path:
    return paths.home() / "history.sqlite"


class HistoryStore:
    """Thread-safe (one connection behind a lock: chats are small and writes are rare)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else default_history_db()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        if new:
            self.path.chmod(0o600)  # other users on the machine may not read your chats
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA secure_delete=ON")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA journal_mode=DELETE")
            self._db.executescript(SCHEMA)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- conversations ---------------------------------------------------------------------------
    def create(self, owner: str, title: str = "New chat", system_prompt: str = "",
               settings: dict[str, Any] | None = None, model: str = "", license: str = "") -> dict[str, Any]:
        cid = uuid.uuid4().hex
        now = time.time()
        with self._tx() as db:
            db.execute("INSERT INTO conversations VALUES (?,?,?,?,?,?,?,?,?)",
                       (cid, owner, title, system_prompt, json.dumps(settings or {}), model, now, now, license))
        return self.get(owner, cid)  # type: ignore[return-value]

    def list(self, owner: str | None) -> list[dict[str, Any]]:
        """Newest first. ``owner=None`` lists everyone's (the local CLI, which owns the file)."""
        sql = ("SELECT c.*, (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id) AS n_messages "
               "FROM conversations c")
        args: tuple = ()
        if owner is not None:
            sql += " WHERE c.owner = ?"
            args = (owner,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY c.updated DESC", args).fetchall()
        return [self._conv(r, with_count=True) for r in rows]

    def get(self, owner: str | None, cid: str, *, messages: bool = False) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM conversations WHERE id = ?", (cid,)).fetchone()
            if row is None or (owner is not None and row[1] != owner):
                return None  # someone else's conversation looks exactly like a missing one
            conv = self._conv(row)
            if messages:
                conv["messages"] = [
                    {"id": r[0], "role": r[1], "content": r[2], "created": r[3], "meta": json.loads(r[4])}
                    for r in self._db.execute(
                        "SELECT id, role, content, created, meta FROM messages "
                        "WHERE conversation_id = ? ORDER BY id", (cid,))
                ]
        return conv

    def update(self, owner: str | None, cid: str, *, title: str | None = None,
               system_prompt: str | None = None, settings: dict[str, Any] | None = None) -> dict[str, Any] | None:
        if self.get(owner, cid) is None:
            return None
        sets, args = ["updated = ?"], [time.time()]
        for col, val in (("title", title), ("system_prompt", system_prompt)):
            if val is not None:
                sets.append(f"{col} = ?")
                args.append(val)
        if settings is not None:
            sets.append("settings = ?")
            args.append(json.dumps(settings))
        with self._tx() as db:
            db.execute(f"UPDATE conversations SET {', '.join(sets)} WHERE id = ?", (*args, cid))
        return self.get(owner, cid)

    def add_message(self, owner: str | None, cid: str, role: str, content: str,
                    meta: dict[str, Any] | None = None) -> int | None:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        if self.get(owner, cid) is None:
            return None
        now = time.time()
        with self._tx() as db:
            cur = db.execute("INSERT INTO messages (conversation_id, role, content, created, meta) "
                             "VALUES (?,?,?,?,?)", (cid, role, content, now, json.dumps(meta or {})))
            db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (now, cid))
        return cur.lastrowid

    def delete(self, owner: str | None, cid: str) -> bool:
        with self._tx() as db:
            if owner is None:
                cur = db.execute("DELETE FROM conversations WHERE id = ?", (cid,))
            else:
                cur = db.execute("DELETE FROM conversations WHERE id = ? AND owner = ?", (cid, owner))
        return cur.rowcount > 0

    def delete_all(self, owner: str | None) -> int:
        with self._tx() as db:
            if owner is None:
                cur = db.execute("DELETE FROM conversations")
            else:
                cur = db.execute("DELETE FROM conversations WHERE owner = ?", (owner,))
        if owner is None:
            with self._lock:  # nothing left to keep: shrink the file so no free page lingers
                self._db.execute("VACUUM")
        return cur.rowcount

    def rename_owner(self, old: str, new: str) -> int:
        """Move every conversation of owner ``old`` to ``new`` (owner ids changed format)."""
        with self._tx() as db:
            cur = db.execute("UPDATE conversations SET owner = ? WHERE owner = ?", (new, old))
        return cur.rowcount

    def find(self, prefix: str) -> list[str]:
        """Conversation ids starting with ``prefix`` (the CLI accepts short ids, like git)."""
        with self._lock:
            rows = self._db.execute("SELECT id FROM conversations WHERE id LIKE ? ESCAPE '\\'",
                                    (prefix.replace("%", r"\%").replace("_", r"\_") + "%",)).fetchall()
        return [r[0] for r in rows]

    # -- export ----------------------------------------------------------------------------------
    def export_sharegpt(self, owner: str | None, cid: str) -> dict[str, Any] | None:
        """One conversation as a ShareGPT record (``ownchat data`` and ``train sft`` read it back)."""
        conv = self.get(owner, cid, messages=True)
        if conv is None:
            return None
        msgs = [{"role": "system", "content": conv["system_prompt"]}] if conv["system_prompt"] else []
        msgs += [{"role": m["role"], "content": m["content"]} for m in conv["messages"]]
        terms = lookup(conv["license"] or None)
        prov = {"stage": "chat", "model": conv["model"], "engine": "ownchat serve",
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(conv["created"])),
                "terms": {"key": terms.key, "commercial": terms.commercial, "note": terms.note}}
        return from_messages(msgs, "sharegpt", {"id": conv["id"], "title": conv["title"], "provenance": prov})

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @staticmethod
    def _conv(row: tuple, with_count: bool = False) -> dict[str, Any]:
        conv = {"id": row[0], "title": row[2], "system_prompt": row[3], "settings": json.loads(row[4]),
                "model": row[5], "created": row[6], "updated": row[7]}
        conv["license"] = row[8]
        if with_count:
            conv["n_messages"] = row[9]
        return conv
