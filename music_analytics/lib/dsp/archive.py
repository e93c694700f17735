"""The archive of report ZIPs: every report that is loaded is kept, named by its checksum.

Layout: `archive/dsp/<dsp>/<date>/<dsp>-<date>-<sha12>.zip`, plus `current.json` naming the
ZIP that the partition's raw tables are (to be) loaded from. The download step writes here and
the load step reads `current.json`, so the two can run as separate Dagster steps in separate
pools (API calls in parallel, warehouse writes one at a time).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from music_analytics.lib.core.raw_writer import file_sha256


@dataclass(frozen=True)
class ArchivedReport:
    """One archived report ZIP and where it came from."""

    dsp: str
    report_date: str  # YYYY-MM-DD
    path: str
    sha256: str
    size_bytes: int
    source: str  # api | landing
    report_id: int | None
    total_records: int
    archived_at: str


INCOMING = ".incoming"  # downloads in progress, moved into the archive once validated


def incoming_path(archive: Path, dsp: str, day: date) -> Path:
    """Where a report being downloaded from the API is written (its folder is created)."""
    folder = archive / INCOMING
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{dsp}-{day.isoformat()}.zip"


def partition_folder(archive: Path, dsp: str, day: date) -> Path:
    """The archive folder of one (dsp, date) partition."""
    return archive / dsp / day.isoformat()


def archive_report(
    zip_path: Path,
    archive: Path,
    *,
    dsp: str,
    day: date,
    source: str,
    total_records: int,
    report_id: int | None = None,
    move: bool = False,
) -> ArchivedReport:
    """Copy (or move) a validated report ZIP into the archive and make it the partition's current.

    A ZIP whose checksum is already archived is not stored twice.
    """
    sha256 = file_sha256(zip_path)
    folder = partition_folder(archive, dsp, day)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{dsp}-{day.isoformat()}-{sha256[:12]}.zip"
    if target.exists():
        if move:
            zip_path.unlink()
    elif move:
        shutil.move(zip_path, target)
    else:
        shutil.copyfile(zip_path, target)
    archived = ArchivedReport(
        dsp=dsp,
        report_date=day.isoformat(),
        path=str(target),
        sha256=sha256,
        size_bytes=target.stat().st_size,
        source=source,
        report_id=report_id,
        total_records=total_records,
        archived_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    _write_json_atomically(folder / "current.json", asdict(archived))
    return archived


def current_report(archive: Path, dsp: str, day: date) -> ArchivedReport | None:
    """The partition's current archived ZIP, or None when nothing was archived for it."""
    pointer = partition_folder(archive, dsp, day) / "current.json"
    if not pointer.exists():
        return None
    return ArchivedReport(**json.loads(pointer.read_text()))


def _write_json_atomically(path: Path, payload: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".current-", suffix=".json")
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle, indent=2)
    os.replace(tmp, path)
