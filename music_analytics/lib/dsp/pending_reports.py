"""Report ids the API created but we have not downloaded yet, one small JSON file per DSP and day.

A run that dies between requesting a report and downloading it (crash, timeout, deploy) leaves
the id here, so the next run polls that report again instead of requesting a second one. Each
file is written to a temp file and renamed over the old one, so concurrent processes never see
half a file; a file that cannot be read is logged and treated as absent.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

_FILE_NAME = re.compile(r"^dsp(?P<dsp_id>\d+)-(?P<day>\d{4}-\d{2}-\d{2})\.json$")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PendingReport:
    """One remembered report: the API's id for a DSP and day, and when we requested it."""

    dsp_id: int
    day: date
    report_id: int
    created_at: str | None = None


class PendingReports:
    """The store of created-but-not-downloaded report ids under `folder`."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)

    def __repr__(self) -> str:
        return f"PendingReports({str(self.folder)!r})"

    def path_for(self, dsp_id: int, day: date) -> Path:
        """The file that remembers the report for one DSP and day."""
        return self.folder / f"dsp{int(dsp_id)}-{day.isoformat()}.json"

    def get(self, dsp_id: int, day: date) -> int | None:
        """The remembered report id for a DSP and day, or None (also for an unreadable file)."""
        entry = self._read(self.path_for(dsp_id, day))
        return entry.report_id if entry is not None else None

    def remember(self, dsp_id: int, day: date, report_id: int) -> None:
        """Remember the report id for a DSP and day, replacing any earlier one atomically."""
        self.folder.mkdir(parents=True, exist_ok=True)
        payload = {
            "report_id": int(report_id),
            "dsp_id": int(dsp_id),
            "date": day.isoformat(),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        path = self.path_for(dsp_id, day)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(payload, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def forget(self, dsp_id: int, day: date) -> None:
        """Forget the report for a DSP and day; forgetting what is not remembered is fine."""
        self.path_for(dsp_id, day).unlink(missing_ok=True)

    def items(self) -> list[PendingReport]:
        """Every readable remembered report, ordered by day then dsp_id."""
        if not self.folder.is_dir():
            return []
        entries = []
        for path in self.folder.iterdir():
            if _FILE_NAME.match(path.name) and (entry := self._read(path)) is not None:
                entries.append(entry)
        return sorted(entries, key=lambda e: (e.day, e.dsp_id))

    def _read(self, path: Path) -> PendingReport | None:
        match = _FILE_NAME.match(path.name)
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("ignoring pending-report file %s: cannot read it (%s)", path, exc)
            return None
        try:
            payload = json.loads(raw)
            report_id = payload["report_id"]
            if not isinstance(report_id, int) or isinstance(report_id, bool) or report_id < 1:
                raise ValueError(f"report_id {report_id!r} is not a positive whole number")
            dsp_id, day = int(match["dsp_id"]), date.fromisoformat(match["day"])
            created_at = payload.get("created_at")
        except (ValueError, KeyError, TypeError) as exc:
            log.warning(
                "ignoring corrupt pending-report file %s (%s); a new report will be requested",
                path,
                exc,
            )
            return None
        return PendingReport(dsp_id, day, report_id, created_at)
