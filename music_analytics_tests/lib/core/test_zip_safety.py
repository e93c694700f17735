"""ZIP safety: every hostile or broken archive is built here, in the test, and refused by name."""

from __future__ import annotations

import io
import pickle
import stat
import struct
import warnings
import zipfile
from pathlib import Path

import pytest

from music_analytics.lib.core.zip_safety import (
    DEFAULT_LIMITS,
    SPOTIFY_EXPORT_LIMITS,
    CountingReader,
    UnsafeZipError,
    ZipLimits,
    open_safe_zip,
)

EOCD = struct.Struct("<4s4H2LH")  # end of central directory record, without the comment


def build_zip(path: Path, members: dict[str, bytes], *, method: int = zipfile.ZIP_DEFLATED,
              modes: dict[str, int] | None = None) -> Path:  # fmt: skip
    """An archive with the members as given (names untouched, so hostile names stay hostile)."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2025, 3, 1, 0, 0, 0))
            info.compress_type = method
            info.external_attr = (modes or {}).get(name, 0o100644) << 16
            archive.writestr(info, data)
    return path


def central_entries(raw: bytes) -> tuple[int, int]:
    """Where the central directory starts and where the end record starts."""
    return raw.index(b"PK\x01\x02"), raw.rindex(b"PK\x05\x06")


def unsafe(path: Path, *fragments: str, **kwargs) -> UnsafeZipError:
    """open_safe_zip refuses the file, naming it and every fragment."""
    with pytest.raises(UnsafeZipError) as caught, open_safe_zip(path, **kwargs) as archive:
        for name in archive.members():
            archive.read_member(name)
    message = str(caught.value)
    assert path.name in message
    for fragment in fragments:
        assert fragment in message, message
    return caught.value


def test_a_sound_archive_lists_and_reads_its_members(tmp_path):
    data = b'{"rows": [1, 2, 3]}' * 100
    path = build_zip(tmp_path / "ok.zip", {"a.json": data, "b.txt": b"hello"})
    with open_safe_zip(path, expected_members=lambda name: name.endswith(".json")) as archive:
        assert archive.names() == ["a.json", "b.txt"]
        assert archive.members() == ["a.json"]
        assert archive.read_member("a.json") == data
        with archive.open_member("a.json") as reader:
            assert reader.read(10) == data[:10]
            assert reader.read() == data[10:]
            assert reader.bytes_read == len(data)
        with pytest.raises(KeyError, match="b.txt"):
            archive.read_member("b.txt")  # listed, not selected: never read
    with open_safe_zip(path, expected_members=["b.txt"]) as archive:
        assert archive.members() == ["b.txt"]
    # Nothing is ever extracted next to the archive.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.zip"]


def test_folders_only_when_allowed_and_never_members(tmp_path):
    path = build_zip(
        tmp_path / "export.zip",
        {"MyData/": b"", "MyData/endsong_0.json": b"[]"},
        modes={"MyData/": stat.S_IFDIR | 0o755},
    )
    with open_safe_zip(path, allow_folders=True) as archive:
        assert archive.members() == ["MyData/endsong_0.json"]
    unsafe(path, "member name 'MyData/' has path components")


@pytest.mark.parametrize(
    "name",
    ["../x.json", "/etc/x.json", "a/../../x.json", "C:x.json", "a\\..\\x.json", "x\x00.json"],
)
def test_traversal_is_refused(tmp_path, name):
    # zipfile would cut a name at NUL, so the stored name is patched in afterwards.
    placeholder = "n" * len(name)
    path = build_zip(tmp_path / "evil.zip", {placeholder: b"[]"})
    path.write_bytes(path.read_bytes().replace(placeholder.encode(), name.encode()))
    exc = unsafe(path, "absolute path or climbs out", allow_folders=True)
    assert exc.reason == "path" and exc.hostile
    unsafe(path, "has path components")


def test_symlink_is_refused(tmp_path):
    path = build_zip(tmp_path / "link.zip", {"x.json": b"/etc/passwd"},
                     modes={"x.json": stat.S_IFLNK | 0o777})  # fmt: skip
    exc = unsafe(path, "member 'x.json' is a symbolic link")
    assert exc.member == "x.json" and exc.reason == "symlink"


def test_symlink_is_refused_even_when_not_selected(tmp_path):
    path = build_zip(tmp_path / "link.zip", {"a.json": b"[]", "b": b"/etc"},
                     modes={"b": stat.S_IFLNK | 0o777})  # fmt: skip
    unsafe(path, "symbolic link", expected_members=["a.json"])


def test_duplicate_names_are_refused(tmp_path):
    path = tmp_path / "twice.zip"
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as archive:
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns, then writes it anyway
        archive.writestr("a.json", b"[1]")
        archive.writestr("a.json", b"[2]")
    assert unsafe(path, "member name 'a.json' appears more than once").reason == "duplicate"


def test_several_directory_entries_pointing_at_one_local_header_are_refused(tmp_path):
    """The CVE-2024-0450 shape: N central-directory entries share one local header and data."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.json", b"[" + b"0," * 5000 + b"0]")
    raw = buffer.getvalue()
    start, end = central_entries(raw)
    entry = raw[start:end]
    copies = [entry] + [entry.replace(b"a.json", f"{i}.json".encode()) for i in range(1, 4)]
    directory = b"".join(copies)
    record = EOCD.pack(b"PK\x05\x06", 0, 0, len(copies), len(copies), len(directory), start, 0)
    path = tmp_path / "overlap.zip"
    path.write_bytes(raw[:start] + directory + record)
    with zipfile.ZipFile(path) as plain:
        assert len(plain.infolist()) == 4  # Python's zipfile takes it as four members
    exc = unsafe(
        path,
        "4 central-directory entries ('a.json', '1.json', '2.json', ...) point at the one "
        "member at byte 0",
        "a crafted archive",
    )
    assert exc.reason == "overlap" and exc.hostile


def test_an_entry_whose_data_runs_into_the_next_is_refused(tmp_path):
    path = build_zip(tmp_path / "overlap.zip", {"a.json": b"[1]" * 50, "b.json": b"[2]"})
    raw = bytearray(path.read_bytes())
    start, _ = central_entries(bytes(raw))
    # The first entry claims 40 more compressed bytes than it has: into b.json's header.
    size = struct.unpack_from("<L", raw, start + 20)[0]
    struct.pack_into("<L", raw, start + 20, size + 40)
    path.write_bytes(bytes(raw))
    unsafe(path, "member 'a.json' overlaps member 'b.json'")


def test_an_entry_running_into_the_central_directory_is_refused(tmp_path):
    path = build_zip(tmp_path / "overlap.zip", {"a.json": b"[1]" * 50})
    raw = bytearray(path.read_bytes())
    start, _ = central_entries(bytes(raw))
    struct.pack_into("<L", raw, start + 20, start)
    path.write_bytes(bytes(raw))
    unsafe(path, "overlaps the central directory")


def test_an_entry_pointing_nowhere_is_refused(tmp_path):
    path = build_zip(tmp_path / "bad.zip", {"a.json": b"[1]" * 50})
    raw = bytearray(path.read_bytes())
    start, _ = central_entries(bytes(raw))
    struct.pack_into("<L", raw, start + 42, 7)  # the local header offset
    path.write_bytes(bytes(raw))
    assert unsafe(path, "no local header at byte 7").reason == "corrupt"


def test_a_size_lie_is_caught_while_reading(tmp_path):
    data = b'{"play": 1}' * 500
    path = build_zip(tmp_path / "liar.zip", {"a.json": data})
    raw = bytearray(path.read_bytes())
    start, _ = central_entries(bytes(raw))
    struct.pack_into("<L", raw, start + 24, 100)  # declares 100 uncompressed bytes
    struct.pack_into("<L", raw, raw.index(b"PK\x03\x04") + 22, 100)  # in both headers
    path.write_bytes(bytes(raw))
    # zipfile stops at the declared size and fails the CRC; the counter would stop it next.
    exc = unsafe(path, "'a.json'")
    assert exc.reason in ("corrupt", "inflates")


@pytest.mark.parametrize(
    ("offset", "label"),
    [(8, "compression method 0"), (14, "CRC 0"), (18, "compressed size 0"),
     (22, "uncompressed size 0")],
)  # fmt: skip
def test_a_local_header_that_disagrees_with_the_directory_is_refused(tmp_path, offset, label):
    path = build_zip(tmp_path / "two-faced.zip", {"a.json": b'{"play": 1}' * 50})
    raw = bytearray(path.read_bytes())
    struct.pack_into("<H" if offset == 8 else "<L", raw, raw.index(b"PK\x03\x04") + offset, 0)
    path.write_bytes(bytes(raw))
    exc = unsafe(path, f"member 'a.json': its local header declares {label}, the central")
    assert exc.reason == "mismatch" and exc.hostile


def test_the_counting_reader_stops_past_its_limit(tmp_path):
    reader = CountingReader(io.BytesIO(b"x" * 100), 60, tmp_path / "r.zip", "a.json")
    assert reader.read(0) == b""
    assert reader.read(50) == b"x" * 50
    with pytest.raises(UnsafeZipError, match="'a.json' inflates to more than 60 bytes") as caught:
        reader.read(50)
    assert caught.value.reason == "inflates" and "r.zip" in str(caught.value)
    with pytest.raises(UnsafeZipError, match="inflates to more than 60"):
        CountingReader(io.BytesIO(b"x" * 100), 60, tmp_path / "r.zip", "a.json").read()


def test_a_ratio_bomb_is_refused_before_inflating(tmp_path):
    path = build_zip(tmp_path / "bomb.zip", {"a.json": b"\x00" * (4 << 20)})
    exc = unsafe(path, "member 'a.json' declares a compression ratio of", "over the cap of 100:1")
    assert exc.reason == "ratio"
    with open_safe_zip(path, ZipLimits(max_ratio=1e6)) as archive:
        assert len(archive.read_member("a.json")) == 4 << 20


def test_size_caps_per_member_and_in_all(tmp_path):
    members = {f"{i}.json": bytes(range(256)) * 40 for i in range(3)}  # 10240 bytes each
    path = build_zip(tmp_path / "big.zip", members, method=zipfile.ZIP_STORED)
    unsafe(path, "member '0.json' declares 10240 uncompressed bytes, over the cap of 10000",
           limits=ZipLimits(max_uncompressed_bytes=10_000))  # fmt: skip
    capped = ZipLimits(max_uncompressed_bytes=30_000, max_member_bytes=20_000)
    exc = unsafe(path, "'2.json' brings", "30720 bytes, over the cap of 30000", limits=capped)
    assert exc.reason == "size"
    unsafe(path, "over the cap of 9000", limits=ZipLimits(max_member_bytes=9000))
    # Members that will not be read are not counted.
    with open_safe_zip(path, ZipLimits(10_240), expected_members=["1.json"]) as archive:
        assert len(archive.read_member("1.json")) == 10_240


def test_too_many_members(tmp_path):
    path = build_zip(tmp_path / "many.zip", {f"{i}.json": b"[]" for i in range(5)})
    exc = unsafe(path, "5 members, over the cap of 4", limits=ZipLimits(max_members=4))
    assert exc.reason == "members"


def test_an_empty_archive_is_refused(tmp_path):
    path = tmp_path / "empty.zip"
    zipfile.ZipFile(path, "w").close()
    assert unsafe(path, "no members").reason == "empty"


def test_a_truncated_archive_is_refused(tmp_path):
    path = build_zip(tmp_path / "cut.zip", {"a.json": b"[1, 2, 3]" * 100})
    path.write_bytes(path.read_bytes()[:-30])
    assert unsafe(path, "not a readable ZIP file").reason == "unreadable"


def test_not_a_zip_and_no_file(tmp_path):
    path = tmp_path / "fake.zip"
    path.write_bytes(b"PK\x03\x04 not really")
    unsafe(path, "not a readable ZIP file")
    unsafe(tmp_path / "absent.zip", "not a readable ZIP file")


def test_a_corrupt_member_fails_on_its_crc(tmp_path):
    path = build_zip(tmp_path / "crc.zip", {"a.json": b'{"n": 12345}'}, method=zipfile.ZIP_STORED)
    raw = path.read_bytes().replace(b"12345", b"54321")
    path.write_bytes(raw)
    exc = unsafe(path, "member 'a.json': the archive is corrupt or truncated", "CRC")
    assert exc.reason == "corrupt" and not exc.hostile


def test_encrypted_and_odd_compression_are_refused(tmp_path):
    path = build_zip(tmp_path / "enc.zip", {"a.json": b"[]"})
    raw = bytearray(path.read_bytes())
    raw[raw.index(b"PK\x03\x04") + 6] |= 0x1
    raw[raw.index(b"PK\x01\x02") + 8] |= 0x1
    path.write_bytes(bytes(raw))
    assert unsafe(path, "member 'a.json' is encrypted").reason == "encrypted"
    path = build_zip(tmp_path / "bz.zip", {"a.json": b"[]"}, method=zipfile.ZIP_BZIP2)
    unsafe(path, "compression method 12; only stored (0) and deflated (8)")
    with open_safe_zip(path, expected_members=[]) as archive:  # not read, so not judged
        assert archive.names() == ["a.json"]


def test_the_error_is_a_value_error_that_survives_pickling(tmp_path):
    exc = UnsafeZipError(tmp_path / "x.zip", "a.json", "member 'a.json' is encrypted", "encrypted")
    assert isinstance(exc, ValueError)
    copy = pickle.loads(pickle.dumps(exc))
    assert (str(copy), copy.member, copy.reason) == (str(exc), "a.json", "encrypted")


def test_the_default_limits():
    assert (DEFAULT_LIMITS.member_cap, DEFAULT_LIMITS.max_ratio) == (1 << 30, 100.0)
    assert SPOTIFY_EXPORT_LIMITS.member_cap == 256 << 20
    assert SPOTIFY_EXPORT_LIMITS.max_uncompressed_bytes == 2 << 30
    assert SPOTIFY_EXPORT_LIMITS.max_members == DEFAULT_LIMITS.max_members == 10_000
