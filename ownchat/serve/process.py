"""Run ``ownchat serve`` as a child process on a free loopback port (tests, benchmarks, notebooks).

A separate process is what users run, and it lets a test look at exactly which sockets the server
opened (``/proc/<pid>``) without the test's own connections getting in the way.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServerProcess:
    """``with ServerProcess("smollm2-135m-instruct", "--parallel", "2") as srv: srv.base_url``."""

    def __init__(self, model: str, *args: str, port: int | None = None, env: dict[str, str] | None = None,
                 log_path: str | Path | None = None, ready_timeout: float = 120.0) -> None:
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.cmd = [sys.executable, "-m", "ownchat.cli.main", "serve", model, "--port", str(self.port), *args]
        self.env = {**os.environ, **(env or {})}
        self.log_path = Path(log_path) if log_path else None
        self.ready_timeout = ready_timeout
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> ServerProcess:
        out = open(self.log_path, "w") if self.log_path else subprocess.DEVNULL  # noqa: SIM115 - closed in stop()
        self._out = out
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ownchat serve exited with status {self.proc.returncode}: {self.log_tail()}")
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"ownchat serve did not answer within {self.ready_timeout:.0f}s: {self.log_tail()}")

    def log_tail(self, n: int = 2000) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")[-n:]
        return "(no log)"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log_path:
            self._out.close()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def open_sockets(pid: int) -> list[dict]:
    """Every TCP/UDP socket process ``pid`` holds, with local and remote addresses (Linux ``/proc``)."""
    inodes = _socket_inodes(pid)
    found = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        table = Path(f"/proc/{pid}/net/{proto}")
        if not table.exists():
            continue
        for line in table.read_text().split("\n")[1:]:
            cols = line.split()
            if len(cols) > 9 and cols[9] in inodes:
                found.append({"proto": proto, "local": _addr(cols[1]), "remote": _addr(cols[2]), "state": cols[3]})
    return found


def unix_listeners(pid: int) -> list[dict]:
    """The AF_UNIX sockets process ``pid`` listens on: ``path`` is None for a nameless one, an
    ``@name`` for Linux's abstract namespace (reachable by any local process), else a file path."""
    inodes = _socket_inodes(pid)
    found = []
    for line in Path(f"/proc/{pid}/net/unix").read_text().split("\n")[1:]:
        cols = line.split()
        if len(cols) < 7 or cols[6] not in inodes:
            continue
        if int(cols[3], 16) & 0x10000:  # __SO_ACCEPTCON: listen() was called
            found.append({"inode": cols[6], "path": cols[7] if len(cols) > 7 else None})
    return found


def reachable_listeners(pid: int) -> list[str]:
    """Every listening socket of ``pid`` another local process could connect to, as text:
    ``tcp 127.0.0.1:8000``, ``unix /path`` (a socket file that exists) or ``unix @name`` (abstract)."""
    out = [f"{s['proto']} {s['local'][0]}:{s['local'][1]}" for s in open_sockets(pid)
           if s["state"] == "0A" or s["proto"].startswith("udp")]
    for u in unix_listeners(pid):
        path = u["path"]
        if path and (path.startswith("@") or os.path.exists(path)):
            out.append(f"unix {path}")
    return out


def _addr(hex_addr: str) -> tuple[str, int]:
    """``0100007F:1F90`` -> ("127.0.0.1", 8080); IPv6 in the kernel's four little-endian words."""
    host, port = hex_addr.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        ip = socket.inet_ntop(socket.AF_INET, raw[::-1])
    else:
        words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
        ip = socket.inet_ntop(socket.AF_INET6, words)
    return ip, int(port, 16)
