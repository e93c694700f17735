"""Hostile and broken ZIPs, built by the tests from one good member (no binary blob is kept).

`hostile_zip(kind, path, name, data)` writes the archive of one class around the member
`name` with bytes `data`; `HOSTILE_KINDS` lists the classes. Each is the smallest archive
that shows its problem, as a crafted or damaged upload would.
"""

from __future__ import annotations

import io
import stat
import struct
import warnings
import zipfile
from pathlib import Path

EOCD = struct.Struct("<4s4H2LH")  # end of central directory record, without the comment
_CENTRAL = b"PK\x01\x02"
_LOCAL = b"PK\x03\x04"

HOSTILE_KINDS = (
    "overlap",  # 50 central-directory entries pointing at one member (CVE-2024-0450)
    "duplicate",  # the member's name twice
    "empty",  # no entry at all
    "link",  # the member is a symbolic link
    "path",  # the member climbs out with ../
    "size_lie",  # both headers declare 100 uncompressed bytes: caught while inflating
    "local_header_lie",  # the local header declares other sizes than the central directory
    "ratio_bomb",  # a member that inflates over 100:1
    "unexpected",  # an extra member no reader expects beside (or instead of) the real one
)


def _info(name: str, mode: int = 0o100644) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(2025, 3, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = mode << 16
    return info


def zip_bytes(members: list[tuple[str, bytes]], modes: dict[str, int] | None = None) -> bytes:
    """A deflated archive with the members in order (names as given, duplicates allowed)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w") as archive:
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns on a duplicate name
        for name, data in members:
            archive.writestr(_info(name, (modes or {}).get(name, 0o100644)), data)
    return buffer.getvalue()


def overlapping(name: str, data: bytes, copies: int = 50) -> bytes:
    """`copies` central-directory entries (`name`, then `0-name`, `1-name`, ...) that all point
    at the one local header and data of `name`: Python 3.11's zipfile reads each in full."""
    raw = zip_bytes([(name, data)])
    start, end = raw.index(_CENTRAL), raw.rindex(b"PK\x05\x06")
    entry = raw[start:end]
    entries = [entry]
    for i in range(1, copies):
        folder, _, base = name.rpartition("/")
        other = f"{folder}/{i}-{base}" if folder else f"{i}-{base}"
        patched = bytearray(entry)
        struct.pack_into("<H", patched, 28, len(other.encode()))  # the name length
        entries.append(bytes(patched[:46]) + other.encode() + bytes(patched[46 + len(name) :]))
    directory = b"".join(entries)
    record = EOCD.pack(b"PK\x05\x06", 0, 0, copies, copies, len(directory), start, 0)
    return raw[:start] + directory + record


def hostile_zip(kind: str, path: Path, name: str, data: bytes) -> Path:
    """Write the archive of class `kind` (HOSTILE_KINDS) around the member `name`."""
    if kind == "overlap":
        raw = overlapping(name, data)
    elif kind == "duplicate":
        raw = zip_bytes([(name, data), (name, data)])
    elif kind == "empty":
        raw = zip_bytes([])
    elif kind == "link":
        raw = zip_bytes([(name, b"/etc/passwd")], {name: stat.S_IFLNK | 0o777})
    elif kind == "path":
        raw = zip_bytes([(f"../{name}", data)])
    elif kind == "size_lie":
        raw = bytearray(zip_bytes([(name, data)]))
        struct.pack_into("<L", raw, raw.index(_CENTRAL) + 24, 100)
        struct.pack_into("<L", raw, raw.index(_LOCAL) + 22, 100)  # both headers tell one lie
        raw = bytes(raw)
    elif kind == "local_header_lie":
        raw = bytearray(zip_bytes([(name, data)]))
        local = raw.index(_LOCAL)
        size = struct.unpack_from("<L", raw, local + 22)[0]
        struct.pack_into("<L", raw, local + 22, size * 200)  # local uncompressed size
        raw = bytes(raw)
    elif kind == "ratio_bomb":
        raw = zip_bytes([(name, data[:-1] + b" " * (8 << 20) + data[-1:])])
    elif kind == "unexpected":
        raw = zip_bytes([(name, data), ("payload.exe", b"MZ" + bytes(64))])
    else:
        raise ValueError(f"unknown kind {kind!r}; one of {HOSTILE_KINDS}")
    path = Path(path)
    path.write_bytes(raw)
    return path
