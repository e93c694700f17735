"""Sample DSP analytics reports as the API delivers them: ZIPs with one JSON member.

What the reports hold is in `sample_report`. Reports are written to the ZIP a record at a
time, so generating a 100,000-record report never holds the whole JSON.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from music_analytics.lib.dsp.catalog import DSP_KEYS
from music_analytics.lib.dsp.sample_report import catalog_size_for, iter_records, report_meta

_WRITE_CHUNK = 1 << 20
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a ZIP can hold


def _zip_info(member_name: str, day: date | None) -> zipfile.ZipInfo:
    """A regular file member with a fixed time, so the same report gives the same bytes."""
    stamp = (day.year, day.month, day.day, 0, 0, 0) if day and day.year >= 1980 else _EPOCH
    info = zipfile.ZipInfo(member_name, date_time=stamp)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def _write_streaming(
    path: Path, member_name: str, day: date | None, meta: Any, records: Iterable[Any]
) -> None:
    """`{"meta": ..., "data": [...]}` into the ZIP, buffered a megabyte at a time."""
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    with (
        zipfile.ZipFile(path, "w", compresslevel=6) as archive,
        archive.open(_zip_info(member_name, day), "w", force_zip64=True) as member,
    ):
        parts = ['{"meta":', dumps(meta), ',"data":[']
        size = 0
        first = True
        for record in records:
            text = dumps(record)
            parts.append(text if first else "," + text)
            first = False
            size += len(text)
            if size >= _WRITE_CHUNK:
                member.write("".join(parts).encode())
                parts, size = [], 0
        parts.append("]}")
        member.write("".join(parts).encode())


def _member_name(day: date | str) -> str:
    return f"analytics-report-{day}.json"


def write_report_zip(
    path: Path, report: dict[str, Any] | bytes, *, member_name: str | None = None
) -> Path:
    """Write a report as the API delivers it: a deflated ZIP with one JSON member.

    The member is `analytics-report-{meta.date}.json` unless `member_name` is given. Bytes are
    written verbatim (for tests that need broken JSON) and then `member_name` is required.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(report, bytes):
        if member_name is None:
            raise ValueError("write_report_zip: pass member_name when the report is bytes")
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(_zip_info(member_name, None), report)
        return path
    meta = report.get("meta")
    day_text = meta.get("date") if isinstance(meta, dict) else None
    try:
        day = date.fromisoformat(day_text) if isinstance(day_text, str) else None
    except ValueError:
        day = None
    if member_name is None:
        if day_text is None:
            raise ValueError("write_report_zip: the report has no meta.date; pass member_name")
        member_name = _member_name(day_text)
    if set(report) == {"meta", "data"} and isinstance(report["data"], list):
        _write_streaming(path, member_name, day, meta, report["data"])
    else:  # an unusual shape a test asked for: written as it is
        text = json.dumps(report, ensure_ascii=False, separators=(",", ":"))
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(_zip_info(member_name, day), text.encode())
    return path


def generate_dsp_reports(
    out_dir: Path,
    *,
    start: date,
    days: int,
    records_per_report: int,
    seed: int,
    dsps: Iterable[str] = DSP_KEYS,
) -> list[Path]:
    """Write one report ZIP per DSP and day into `out_dir` as `{dsp}-{date}.zip`; return them.

    Same arguments give byte-identical files. Each file is written under a `.part` name and
    renamed when complete, so a folder watcher never sees half a file. Records are streamed
    into the ZIP, so a large report is never held in memory.
    """
    if days < 0:
        raise ValueError(f"days must be at least 0, got {days}")
    dsps = list(dsps)
    size = max(catalog_size_for(dsp, records_per_report, None) for dsp in dsps) if dsps else 0
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for i in range(days):
        day = start + timedelta(days=i)
        for dsp in dsps:
            path = out_dir / f"{dsp}-{day.isoformat()}.zip"
            partial = path.with_name(path.name + ".part")
            records = iter_records(dsp, day, records_per_report, seed, size)
            try:
                _write_streaming(
                    partial,
                    _member_name(day.isoformat()),
                    day,
                    report_meta(dsp, day, records_per_report),
                    records,
                )
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
            os.replace(partial, path)
            paths.append(path)
    return paths
