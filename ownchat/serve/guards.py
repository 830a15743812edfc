"""Request guards in front of every route: the Host check, security headers, and text that is not Unicode.

* **Host check (DNS rebinding).** A web page on ``attacker.example`` can make its name resolve to
  127.0.0.1 and then read a keyless loopback server as if it were its own origin. Browsers always
  send the name they connected to, so requests whose ``Host`` is not a name this server listens on
  get 421 before any route runs.
* **Headers.** Every response carries the page's Content-Security-Policy (with ``frame-ancestors
  'none'``), ``nosniff`` and no referrer, whichever route or static file produced it.
* **Lone surrogates.** JSON may spell ``"\\ud800"``, which Python decodes to a string that cannot be
  encoded as UTF-8; it would fail deep inside the engine or SQLite. It is a 400 naming the field.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# The page and its scripts come from this server only; nothing may be fetched from elsewhere.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
WILDCARDS = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class HostPolicy:
    names: frozenset[str]
    any_ip: bool  # bound to every address: any IP literal reaches us legitimately (and cannot be rebound)

    def allows(self, host: str) -> bool:
        name = host_name(host)
        if name in self.names:
            return True
        if self.any_ip:
            try:
                ipaddress.ip_address(name)
                return True
            except ValueError:
                return False
        return False


def host_name(header: str) -> str:
    """``[::1]:8000`` -> ``::1``; ``LocalHost.:80`` -> ``localhost``."""
    h = header.strip().lower()
    if h.startswith("["):
        return h[1:h.find("]")] if "]" in h else h
    if h.count(":") == 1:
        h = h.split(":", 1)[0]
    return h.rstrip(".")


def host_policy(bind: str, extra: Iterable[str] = ()) -> HostPolicy:
    """The names a server bound to ``bind`` answers to: loopback names, the bind address, ``extra``
    (``--allow-host``), and for a wildcard bind this machine's own names and any IP literal."""
    names = {*LOOPBACK_NAMES, host_name(bind), *(host_name(e) for e in extra if e)}
    wildcard = host_name(bind) in WILDCARDS
    if wildcard:  # the machine's own name (no DNS lookup: this may be an offline machine)
        names.add(socket.gethostname().lower())
    names.discard("")
    return HostPolicy(frozenset(names), wildcard)


async def _send_error(send: Any, status: int, message: str, code: str) -> None:
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None,
                                 "code": code}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})


class HostCheck:
    """ASGI middleware: 421 for a ``Host`` this server does not answer to; security headers on the rest."""

    def __init__(self, app: Any, policy: HostPolicy) -> None:
        self.app, self.policy = app, policy

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"), None)
        if host is not None and not self.policy.allows(host):
            shown = host_name(host)[:80]
            await _send_error(send, 421, f"this server does not answer to the host name {shown!r} (a web page may be "
                                         "trying DNS rebinding); use the address it listens on, or start it with "
                                         "--allow-host NAME", "host_not_allowed")
            return

        async def with_headers(msg: dict) -> None:
            if msg["type"] == "http.response.start":
                have = {k.lower() for k, _ in msg.get("headers", [])}
                msg = {**msg, "headers": [*msg.get("headers", []),
                                          *((k, v) for k, v in SECURITY_HEADERS if k not in have)]}
            await send(msg)

        await self.app(scope, receive, with_headers)


# -- text that is not Unicode ------------------------------------------------------------------------
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_LONE = re.compile("[\ud800-\udfff]")


def lone_surrogate_at(body: bytes) -> str | None:
    """The JSON path (``messages[0].content``) of the first string holding a lone surrogate, else None.

    Cheap for ordinary bodies: only a body that spells a surrogate escape is parsed here.
    """
    if not _SURROGATE_ESCAPE.search(body):
        return None
    try:
        obj = json.loads(body)
    except ValueError:
        return None  # not JSON: the route's own parser reports it
    return _find(obj, "")


def _find(obj: Any, path: str) -> str | None:
    if isinstance(obj, str):
        return (path or "body") if _LONE.search(obj) else None
    if isinstance(obj, dict):
        for k, v in obj.items():
            where = f"{path}.{k}" if path else str(k)
            if isinstance(k, str) and _LONE.search(k):
                return where
            found = _find(v, where)
            if found:
                return found
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            found = _find(v, f"{path}[{i}]")
            if found:
                return found
    return None
