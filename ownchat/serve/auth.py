"""API keys: who may talk to the server, and whose history a request may see.

Keys come from ``--api-key`` or a keys file (one key per line, ``#`` comments). History rows carry an
owner id derived from the key, never the key: an HMAC-SHA256 under a random secret of this install
(``$OWNCHAT_HOME/serve-owner.secret``, mode 600), so a copy of the database alone does not let anyone
test guessed keys against it. Rows written under the older unsalted ids (a SHA-256 prefix) are moved
to the new ids when the server starts with their key. Without keys everything belongs to the single
local user.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import socket
from collections.abc import Iterable
from pathlib import Path

from fastapi import Request

from ownchat.errors import DataError, UserError

LOCAL_OWNER = "local"
MIN_KEY_LENGTH = 8
SECRET_FILE = "serve-owner.secret"


def legacy_owner_id(key: str) -> str:
    """The unsalted id of earlier versions: kept only to move old rows to the salted id."""
    return "key:" + hashlib.sha256(key.encode()).hexdigest()[:24]


def owner_id(key: str, secret: bytes) -> str:
    return "hkey:" + hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()[:32]


def install_secret(path: Path | None = None) -> bytes:
    """This install's owner-id secret, made on first use (32 random bytes, file mode 600)."""
    if path is None:
        from ownchat import paths

        path = paths.home() / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        data = path.read_bytes()
        if len(data) < 32:
            raise UserError(f"{path} is damaged ({len(data)} bytes): restore it from a backup; deleting it "
                            "makes every key's saved chats unreachable") from None
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        return data
    with os.fdopen(fd, "wb") as f:
        f.write(os.urandom(32))
        f.flush()
        os.fsync(f.fileno())
    return path.read_bytes()


class KeyRing:
    """The accepted keys. ``check(header)`` returns the caller's owner id or None when refused."""

    def __init__(self, keys: Iterable[str] = (), secret: bytes | None = None) -> None:
        self._keys = [k for k in keys if k]
        # Without a stored secret (tests, API-only use) ids hold for this process only.
        self._secret = secret if secret is not None else os.urandom(32)
        # Owner ids are computed once: requests compare keys in constant time, then look the id up.
        self._owners = {k: owner_id(k, self._secret) for k in self._keys}

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def owner_renames(self) -> list[tuple[str, str]]:
        """(unsalted id, salted id) for each key: history rows to move to the salted id."""
        return [(legacy_owner_id(k), self._owners[k]) for k in self._keys]

    def check(self, authorization: str | None, x_api_key: str | None = None) -> str | None:
        if not self._keys:
            return LOCAL_OWNER
        given = x_api_key or ""
        if authorization:
            scheme, _, value = authorization.partition(" ")
            given = value.strip() if scheme.lower() == "bearer" else ""
        if not given:
            return None
        match = None
        for key in self._keys:  # compare against every key so timing does not reveal which one matched
            if hmac.compare_digest(key.encode(), given.encode()):
                match = key
        return self._owners[match] if match is not None else None

    @classmethod
    def load(cls, api_keys: Iterable[str] = (), keys_file: str | Path | None = None,
             secret: bytes | None = None) -> KeyRing:
        """Keys from flags and a keys file; owner ids salted with this install's secret."""
        keys = [k.strip() for k in api_keys if k and k.strip()]
        if keys_file is not None:
            path = Path(keys_file).expanduser()
            if not path.exists():
                raise DataError(path, None, "keys file not found", "create it with one API key per line")
            for no, line in enumerate(path.read_text().split("\n"), 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                if " " in line or "\t" in line:
                    raise DataError(path, no, "a key may not contain spaces", "write one key per line")
                keys.append(line)
            if not keys:
                raise DataError(path, None, "keys file holds no keys", "write one API key per line")
        for k in keys:
            if len(k) < MIN_KEY_LENGTH:
                raise UserError(f"API key too short ({len(k)} characters): use at least {MIN_KEY_LENGTH}, "
                                "e.g. `python -c 'import secrets; print(secrets.token_urlsafe(24))'`")
        if keys and secret is None:
            secret = install_secret()
        return cls(dict.fromkeys(keys), secret)  # keep order, drop duplicates


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, 'localhost')."""
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:  # a host name: loopback only when every address it resolves to is
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def check_bind(host: str, keys: KeyRing) -> None:
    """Refuse to listen beyond loopback without API keys: chats are private by default."""
    if not is_loopback(host) and not keys.enabled:
        raise UserError(f"refusing to listen on {host} without API keys: anyone who can reach this "
                        "machine could read and write your chats. Pass --api-key KEY or --keys-file FILE, "
                        "or keep the default --host 127.0.0.1")


def authenticate(request: Request) -> str:
    """FastAPI dependency: the caller's owner id, or a 401 in OpenAI's error shape."""
    from ownchat.serve.limits import LimitError

    keys: KeyRing = request.app.state.keys
    owner = keys.check(request.headers.get("authorization"), request.headers.get("x-api-key"))
    if owner is None:
        raise LimitError(401, "Incorrect or missing API key: send `Authorization: Bearer <key>` "
                              "with a key this server was started with", code="invalid_api_key")
    request.state.owner = owner
    return owner
