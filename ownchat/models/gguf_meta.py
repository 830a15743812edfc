"""One metadata string from a GGUF header, read without parsing the tensors.

``gguf.GGUFReader`` indexes every tensor and array element first: 23 s for gemma-3-270m's chat
template on 2 cores, against well under a second for this walk over the key/value section (the
header format is llama.cpp's ``docs/gguf.md``; arrays of strings are skipped, not decoded).
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

# GGUF value types -> fixed byte size (strings = 8, arrays = 9 are variable)
_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9


def gguf_string(path: str | Path, key: str) -> str | None:
    """The string value of ``key`` (e.g. ``tokenizer.chat_template``), or None if absent or unreadable."""
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            return _find(m, key.encode())
    except (OSError, ValueError, struct.error, IndexError):
        return None


def _find(m: mmap.mmap, want: bytes) -> str | None:
    if m[:4] != b"GGUF":
        return None
    (version,) = struct.unpack_from("<I", m, 4)
    if version < 2:
        return None
    (n_kv,) = struct.unpack_from("<Q", m, 16)
    pos = 24
    for _ in range(n_kv):
        (klen,) = struct.unpack_from("<Q", m, pos)
        k = m[pos + 8:pos + 8 + klen]
        pos += 8 + klen
        (vtype,) = struct.unpack_from("<I", m, pos)
        pos += 4
        if k == want:
            if vtype != _STRING:
                return None
            (vlen,) = struct.unpack_from("<Q", m, pos)
            return m[pos + 8:pos + 8 + vlen].decode("utf-8", errors="replace")
        pos = _skip(m, pos, vtype)
    return None


def _skip(m: mmap.mmap, pos: int, vtype: int) -> int:
    if vtype == _STRING:
        return pos + 8 + struct.unpack_from("<Q", m, pos)[0]
    if vtype == _ARRAY:
        etype, count = struct.unpack_from("<IQ", m, pos)
        pos += 12
        if etype in _SIZES:
            return pos + count * _SIZES[etype]
        for _ in range(count):
            pos = _skip(m, pos, etype)
        return pos
    return pos + _SIZES[vtype]
