"""The one place that opens an untrusted ZIP (a DSP report, a Spotify export) and judges it.

A ZIP can come from anywhere (a hand drop in a landing folder), so before a byte is inflated:

- every entry: no absolute path, no `..`, no backslash or NUL (and no folder at all unless the
  caller allows folders), no symbolic link, no name twice, a local header that declares the
  same sizes, CRC and method as the central directory, and no entry whose bytes overlap the
  next entry or the central directory (several directory entries pointing at one local header
  is the CVE-2024-0450 bomb, which Python 3.11's zipfile does not refuse);
- the archive: at least one entry and at most `max_members`;
- the members the caller will read: unencrypted, stored or deflated, each declaring at most the
  member cap and a sane compression ratio, and in all under the total cap;

and since headers can lie, what a member inflates to is counted as it is read. Nothing is
extracted to disk. Every problem raises UnsafeZipError naming the file, the member and the
limit; each source wraps it into its own error (DspReportFileError, SpotifyHistoryError).
"""

from __future__ import annotations

import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

_READ_CHUNK = 1 << 20
# What a broken archive raises: zipfile's own errors (bad CRC, bad headers), zlib's for a
# corrupt deflate stream, EOFError for a truncated one, OSError for the file itself.
_ARCHIVE_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError)
_LOCAL_HEADER = struct.Struct(zipfile.structFileHeader)
_LOCAL_MAGIC = b"PK\x03\x04"
# Fields of the local header (zipfile.structFileHeader): method, CRC, sizes, name/extra lengths.
_METHOD, _CRC, _COMPRESSED, _UNCOMPRESSED, _NAME_LENGTH, _EXTRA_LENGTH = 4, 7, 8, 9, 10, 11
_ZIP64_SIZE = 0xFFFFFFFF  # a local size that the ZIP64 extra field carries instead
_DESCRIPTOR_MIN = 12  # CRC and two 4-byte sizes, when flag bit 3 says a data descriptor follows
_DRIVE_RE = re.compile(r"[A-Za-z]:")

# UnsafeZipError.reason values that mean a crafted archive rather than a damaged one.
HOSTILE_REASONS = frozenset(
    {"path", "symlink", "duplicate", "overlap", "mismatch", "size", "ratio", "inflates"}
)


@dataclass(frozen=True)
class ZipLimits:
    """Caps that keep a hostile or broken ZIP (a ZIP bomb) from exhausting memory.

    `max_uncompressed_bytes` caps what the members read declare in all, `max_member_bytes`
    (None: the same) each of them; `max_ratio` is uncompressed / compressed per member.
    """

    max_uncompressed_bytes: int = 1 << 30
    max_ratio: float = 100.0
    max_members: int = 10_000
    max_member_bytes: int | None = None

    @property
    def member_cap(self) -> int:
        """The most one member may declare or inflate to."""
        if self.max_member_bytes is None:
            return self.max_uncompressed_bytes
        return min(self.max_member_bytes, self.max_uncompressed_bytes)


# DSP reports (one member; DSP_REPORT_MAX_MB and DSP_REPORT_MAX_RATIO override via Settings).
DEFAULT_LIMITS = ZipLimits()
# Spotify's privacy export: many members of about 12 MB each.
SPOTIFY_EXPORT_LIMITS = ZipLimits(max_uncompressed_bytes=2 << 30, max_member_bytes=256 << 20)


class UnsafeZipError(ValueError):
    """A ZIP that must not be read; the message names the file, the member and the limit.

    `problem` is the message without the file; `reason` says which check failed (one of
    unreadable, corrupt, empty, members, path, symlink, duplicate, overlap, mismatch,
    encrypted, compression, size, ratio, inflates) so that a caller can pick the advice it
    gives.
    """

    def __init__(self, path: Path | str, member: str | None, problem: str, reason: str) -> None:
        self.path = Path(path)
        self.member = member
        self.problem = problem
        self.reason = reason
        super().__init__(f"ZIP {self.path}: {problem}")

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.path, self.member, self.problem, self.reason)

    @property
    def hostile(self) -> bool:
        """True when the archive looks crafted (a ZIP bomb, traversal), not merely damaged."""
        return self.reason in HOSTILE_REASONS


class CountingReader:
    """A member's inflated bytes that fail once more come out than `limit` (headers can lie).

    zipfile trusts the central directory, and a crafted archive can declare a small size and
    inflate to far more; counting what actually comes out is the last line of defence.
    Archive errors while reading (bad CRC, truncated deflate stream) become UnsafeZipError.
    """

    def __init__(self, stream: IO[bytes], limit: int, path: Path, member: str) -> None:
        self._stream = stream
        self._limit = limit
        self._path = path
        self._member = member
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        """Up to `size` bytes (all that is left for a negative size; never more than limit + 1)."""
        if size is None or size < 0:
            chunks = []
            while chunk := self.read(_READ_CHUNK):
                chunks.append(chunk)
            return b"".join(chunks)
        try:
            data = self._stream.read(min(size, self._limit - self.bytes_read + 1))
        except _ARCHIVE_ERRORS as exc:
            raise UnsafeZipError(
                self._path,
                self._member,
                f"member {self._member!r}: the archive is corrupt or truncated ({exc})",
                "corrupt",
            ) from None
        self.bytes_read += len(data)
        if self.bytes_read > self._limit:
            raise UnsafeZipError(
                self._path,
                self._member,
                f"member {self._member!r} inflates to more than {self._limit} bytes, more than "
                "its header declares or the size cap allows (a ZIP bomb or a corrupt archive)",
                "inflates",
            )
        return data


class SafeZip:
    """An archive that passed every check: its entries, the members to read, counted reads."""

    def __init__(
        self,
        path: Path,
        archive: zipfile.ZipFile,
        members: list[zipfile.ZipInfo],
        limits: ZipLimits,
    ) -> None:
        self.path = path
        self._archive = archive
        self._members = {info.filename: info for info in members}
        self._limits = limits

    def names(self) -> list[str]:
        """Every entry's name, in archive order (folders and unselected entries included)."""
        return [info.filename for info in self._archive.infolist()]

    def members(self) -> list[str]:
        """The checked members that may be read, in archive order."""
        return list(self._members)

    @contextmanager
    def open_member(self, name: str) -> Iterator[CountingReader]:
        """The member's inflated bytes behind a counter capped at its declared size."""
        info = self._members.get(name)
        if info is None:
            raise KeyError(f"{name!r} is not a checked member of {self.path.name}")
        limit = min(info.file_size, self._limits.member_cap)
        try:
            stream = self._archive.open(info)
        except _ARCHIVE_ERRORS as exc:
            raise UnsafeZipError(
                self.path, name, f"member {name!r}: the archive is corrupt ({exc})", "corrupt"
            ) from None
        with stream:
            yield CountingReader(stream, limit, self.path, name)

    def read_member(self, name: str) -> bytes:
        """The member's bytes, read whole (at most its declared size, itself under the cap)."""
        with self.open_member(name) as reader:
            return reader.read()


@contextmanager
def open_safe_zip(
    path: Path | str,
    limits: ZipLimits = DEFAULT_LIMITS,
    *,
    expected_members: Callable[[str], bool] | Collection[str] | None = None,
    allow_folders: bool = False,
) -> Iterator[SafeZip]:
    """Open `path`, check it (see the module docstring) and yield it as a SafeZip.

    `expected_members` picks the members that will be read, by name (a predicate or a
    collection of names; None: every file entry); only those get the size, ratio, encryption
    and compression checks, the others are only listed. Folders are never members. With
    `allow_folders`, names may sit in folders (`MyData/x.json`), else only bare names pass.
    Raises UnsafeZipError.
    """
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except _ARCHIVE_ERRORS as exc:
        raise UnsafeZipError(path, None, f"not a readable ZIP file ({exc})", "unreadable") from None
    with archive:
        entries = archive.infolist()
        _check_entries(path, entries, limits, allow_folders)
        # No member is open yet, so the archive's own file handle is free to seek.
        _check_layout(path, archive.fp, entries, archive.start_dir)
        wanted = _selector(expected_members)
        members = [i for i in entries if not _is_folder(i) and wanted(i.filename)]
        _check_members(path, members, limits)
        yield SafeZip(path, archive, members, limits)


def _selector(expected: Callable[[str], bool] | Collection[str] | None) -> Callable[[str], bool]:
    if expected is None:
        return lambda name: True
    if callable(expected):
        return expected
    names = frozenset(expected)
    return names.__contains__


def _is_folder(info: zipfile.ZipInfo) -> bool:
    return info.is_dir() or stat.S_ISDIR(info.external_attr >> 16)


def _path_problem(name: str, allow_folders: bool) -> str | None:
    """Why a stored member name is refused, or None."""
    climbs = (
        "\x00" in name
        or "\\" in name
        or name.startswith("/")
        or _DRIVE_RE.match(name) is not None
        or ".." in PurePosixPath(name).parts
    )
    if not allow_folders and (climbs or "/" in name or ".." in name):
        return f"member name {name!r} has path components; only a bare file name is accepted"
    if climbs:
        return f"member name {name!r} is an absolute path or climbs out with `..`"
    return None


def _check_entries(
    path: Path, entries: list[zipfile.ZipInfo], limits: ZipLimits, allow_folders: bool
) -> None:
    """Count, names, links and duplicates of every entry, read or not."""
    if not entries:
        raise UnsafeZipError(path, None, "the archive has no members", "empty")
    if len(entries) > limits.max_members:
        raise UnsafeZipError(
            path, None, f"{len(entries)} members, over the cap of {limits.max_members}", "members"
        )
    seen: set[str] = set()
    for info in entries:
        # orig_filename is the name as stored (zipfile cuts `filename` at a NUL byte).
        for name in {info.filename, info.orig_filename}:
            problem = _path_problem(name, allow_folders)
            if problem:
                raise UnsafeZipError(path, name, problem, "path")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise UnsafeZipError(
                path, info.filename, f"member {info.filename!r} is a symbolic link", "symlink"
            )
        if info.filename in seen:
            raise UnsafeZipError(
                path,
                info.filename,
                f"member name {info.filename!r} appears more than once",
                "duplicate",
            )
        seen.add(info.filename)


def _check_layout(
    path: Path, handle: IO[bytes], entries: list[zipfile.ZipInfo], central_start: int
) -> None:
    """Each entry's local header + data must end before the next entry and the directory,
    and its local header must agree with the central directory (`_check_local_header`).

    The size of the local header is read from the file (its name and extra field can differ
    from the central directory's); the compressed size is the central directory's.
    """
    by_offset: dict[int, list[str]] = {}
    for info in entries:
        by_offset.setdefault(info.header_offset, []).append(info.filename)
    for offset, names in by_offset.items():
        if len(names) > 1:
            listed = ", ".join(repr(n) for n in names[:3]) + (", ..." if len(names) > 3 else "")
            raise UnsafeZipError(
                path,
                names[0],
                f"{len(names)} central-directory entries ({listed}) point at the one member "
                f"at byte {offset}, so its data overlaps itself {len(names)} times: a crafted "
                "archive (a ZIP bomb)",
                "overlap",
            )
    spans = []
    headers = []
    for info in entries:
        handle.seek(info.header_offset)
        header = handle.read(_LOCAL_HEADER.size)
        if len(header) < _LOCAL_HEADER.size or header[:4] != _LOCAL_MAGIC:
            raise UnsafeZipError(
                path,
                info.filename,
                f"member {info.filename!r} has no local header at byte {info.header_offset} "
                "(a corrupt or truncated archive)",
                "corrupt",
            )
        fields = _LOCAL_HEADER.unpack(header)
        headers.append((info, fields))
        end = (
            info.header_offset
            + _LOCAL_HEADER.size
            + fields[_NAME_LENGTH]
            + fields[_EXTRA_LENGTH]
            + info.compress_size
            + (_DESCRIPTOR_MIN if info.flag_bits & 0x08 else 0)
        )
        spans.append((info.header_offset, end, info.filename))
    spans.sort()
    for (_, end, name), (start, _, following) in zip(spans, spans[1:], strict=False):
        if end > start:
            raise UnsafeZipError(
                path,
                name,
                f"member {name!r} overlaps member {following!r} (its data ends at byte {end}, "
                f"the next entry starts at byte {start}): a crafted archive",
                "overlap",
            )
    _, end, name = spans[-1]
    if end > central_start:
        raise UnsafeZipError(
            path,
            name,
            f"member {name!r} overlaps the central directory (its data ends at byte {end}, "
            f"the directory starts at byte {central_start}): a crafted or truncated archive",
            "overlap",
        )
    for info, fields in headers:
        _check_local_header(path, info, fields)


def _check_local_header(path: Path, info: zipfile.ZipInfo, fields: tuple) -> None:
    """The local header must agree with the central directory on method, CRC and sizes.

    zipfile reads the central directory's; a local header that says otherwise is a crafted
    archive (readers that stream local headers would see other data). With flag bit 3 the local
    CRC and sizes are zero (a data descriptor follows), and ZIP64 sizes sit in the extra field.
    """
    checks = [("compression method", fields[_METHOD], info.compress_type)]
    if not info.flag_bits & 0x08:
        checks.append(("CRC", fields[_CRC], info.CRC))
        for label, index, central in (
            ("compressed size", _COMPRESSED, info.compress_size),
            ("uncompressed size", _UNCOMPRESSED, info.file_size),
        ):
            if fields[index] != _ZIP64_SIZE:
                checks.append((label, fields[index], central))
    for label, local, central in checks:
        if local != central:
            raise UnsafeZipError(
                path,
                info.filename,
                f"member {info.filename!r}: its local header declares {label} {local}, the "
                f"central directory {central}: a crafted or damaged archive",
                "mismatch",
            )


def _check_members(path: Path, members: list[zipfile.ZipInfo], limits: ZipLimits) -> None:
    """Encryption, compression, declared size and ratio of each member to read; their total.

    No separate ratio of the total to the archive's size: with no overlapping entries, the
    archive holds every member's compressed bytes, so that ratio never exceeds the largest
    member's."""
    total = 0
    for info in members:
        name = info.filename
        if info.flag_bits & 0x1:
            raise UnsafeZipError(path, name, f"member {name!r} is encrypted", "encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise UnsafeZipError(
                path,
                name,
                f"member {name!r} uses compression method {info.compress_type}; only stored "
                "(0) and deflated (8) are accepted",
                "compression",
            )
        if info.file_size > limits.member_cap:
            raise UnsafeZipError(
                path,
                name,
                f"member {name!r} declares {info.file_size} uncompressed bytes, over the cap "
                f"of {limits.member_cap}",
                "size",
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > limits.max_ratio:
            raise UnsafeZipError(
                path,
                name,
                f"member {name!r} declares a compression ratio of {ratio:.0f}:1, over the cap "
                f"of {limits.max_ratio:g}:1 (a ZIP bomb?)",
                "ratio",
            )
        total += info.file_size
        if total > limits.max_uncompressed_bytes:
            raise UnsafeZipError(
                path,
                name,
                f"member {name!r} brings the members' declared size to {total} bytes, over the "
                f"cap of {limits.max_uncompressed_bytes} in all",
                "size",
            )
