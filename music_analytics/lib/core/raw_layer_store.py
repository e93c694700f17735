"""The raw Parquet layer's filesystem: a local folder or any pyarrow / fsspec filesystem URI.

`LayerStore.open(uri)` resolves MUSIC_ANALYTICS_RAW_LAYER_URI: a plain path is a local folder;
`file://`, `s3://`, `gs://`, `hdfs://`, `abfs://` are pyarrow filesystems (credentials from their
standard environment variables, e.g. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
AWS_ENDPOINT_URL, GOOGLE_APPLICATION_CREDENTIALS, never from our settings); any other scheme
fsspec knows (`memory://` in tests) goes through pyarrow's FSSpecHandler.

Each file is written under a temporary name starting with `_` in its own folder and then
renamed over its final name, so a reader (Spark, Hive, DuckDB globbing `[!_.]*.parquet`) never
sees half a file. Every filesystem error becomes one RawLayerError line naming the setting.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from music_analytics.lib.core.crash_points import crash_point
from music_analytics.lib.core.raw_layer_names import (
    TEMP_PREFIX,
    URI_SETTING,
    RawLayerError,
    redacted,
)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


@contextmanager
def _as_layer_error(what: str, uri: str) -> Iterator[None]:
    try:
        yield
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise RawLayerError(
            f"{URI_SETTING}={redacted(uri)}: cannot {redacted(what)} "
            f"({redacted(_first_line(exc))}); point it at "
            "a folder or bucket this process can write, with the filesystem's credentials in "
            "its standard environment variables"
        ) from None


def _filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    if "://" not in uri:
        return pafs.LocalFileSystem(), uri.rstrip("/") or "/"
    try:
        fs, path = pafs.FileSystem.from_uri(uri)
        return fs, path.rstrip("/")
    except pa.ArrowInvalid:
        import fsspec  # only for schemes pyarrow has no filesystem of its own for

        protocol, _, path = uri.partition("://")
        if protocol not in fsspec.available_protocols():
            raise
        handler = pafs.FSSpecHandler(fsspec.filesystem(protocol))
        return pafs.PyFileSystem(handler), f"/{path.strip('/')}"


def is_layer_file(name: str) -> bool:
    """A name the layer's readers read (not a temporary or hidden file)."""
    return name.endswith(".parquet") and not name.startswith(("_", "."))


@dataclass(frozen=True)
class LayerStore:
    """The layer's filesystem and root folder in it; `uri` as the user gave it."""

    fs: pafs.FileSystem
    base: str
    uri: str

    @classmethod
    def open(cls, uri: str) -> LayerStore:
        """The filesystem of `uri`, its root folder created when missing."""
        with _as_layer_error("open the layer's filesystem", uri):
            fs, base = _filesystem(uri)
            fs.create_dir(base, recursive=True)
        return cls(fs, base, uri)

    @property
    def root(self) -> str:
        """The root as recorded in the warehouse's files ledger (secrets redacted)."""
        return redacted(self.uri)

    def folder(self, *parts: str) -> str:
        """A path under the root."""
        return "/".join((self.base.rstrip("/"), *parts))

    def list_names(self, folder: str) -> list[str]:
        """The file names in `folder` (none when it does not exist)."""
        with _as_layer_error(f"list {folder}", self.uri):
            infos = self.fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.File)

    def list_tree(self, folder: str) -> dict[str, list[str]]:
        """Every file under `folder`, by the sub-folder (relative to `folder`) holding it."""
        with _as_layer_error(f"list {folder}", self.uri):
            infos = self.fs.get_file_info(
                pafs.FileSelector(folder, allow_not_found=True, recursive=True)
            )
        tree: dict[str, list[str]] = {}
        prefix = folder.rstrip("/") + "/"
        for info in infos:
            if info.type == pafs.FileType.File:
                sub, _, name = info.path.removeprefix(prefix).rpartition("/")
                tree.setdefault(sub, []).append(name)
        return tree

    def write_atomically(
        self, folder: str, name: str, rows: pa.Table | pa.RecordBatchReader
    ) -> int:
        """Write `rows` (a table, or batches streamed from a reader) as `folder/name`: to a
        temporary `_` name first, then renamed; the number of rows written."""
        temp = f"{folder}/{TEMP_PREFIX}{uuid.uuid4().hex}.parquet"
        batches = rows.to_batches() if isinstance(rows, pa.Table) else rows
        written = 0
        with _as_layer_error(f"write {folder}/{name}", self.uri):
            self.fs.create_dir(folder, recursive=True)
            with (
                self.fs.open_output_stream(temp) as out,
                pq.ParquetWriter(
                    out, rows.schema, compression="snappy", coerce_timestamps="us"
                ) as writer,
            ):
                for batch in batches:
                    writer.write_batch(batch)
                    written += batch.num_rows
            crash_point("raw_layer_temp")  # the crash tests: a temporary file left behind
            self.fs.move(temp, f"{folder}/{name}")
        return written

    def remove(self, folder: str, name: str) -> None:
        """Delete `folder/name`; one already gone is fine."""
        with _as_layer_error(f"remove {folder}/{name}", self.uri), suppress(FileNotFoundError):
            self.fs.delete_file(f"{folder}/{name}")

    def remove_folder_if_empty(self, folder: str) -> None:
        """Drop a partition folder left without files (object stores have no folders)."""
        if self.list_names(folder):
            return
        with _as_layer_error(f"remove {folder}", self.uri), suppress(FileNotFoundError):
            self.fs.delete_dir(folder)

    def write_marker(self, name: str, text: str) -> None:
        """A small `_`-prefixed file at the root (readers skip it), written atomically."""
        with _as_layer_error(f"write {name}", self.uri):
            temp = self.folder(f"{TEMP_PREFIX}{uuid.uuid4().hex}")
            with self.fs.open_output_stream(temp) as out:
                out.write(text.encode())
            self.fs.move(temp, self.folder(name))
