"""The store of created-but-not-downloaded report ids: round trip, atomic files, corrupt files."""

from __future__ import annotations

import json
import logging
from datetime import date

from music_analytics.lib.dsp.pending_reports import PendingReport, PendingReports

DAY = date(2026, 3, 28)


def test_remember_get_forget(tmp_path):
    store = PendingReports(tmp_path / "pending")
    assert store.get(1, DAY) is None and store.items() == []

    store.remember(1, DAY, 6)
    store.remember(4, DAY, 7)
    store.remember(1, DAY, 8)  # a newer report replaces the old one

    assert store.get(1, DAY) == 8 and store.get(4, DAY) == 7 and store.get(3, DAY) is None
    assert [(p.dsp_id, p.day, p.report_id) for p in store.items()] == [(1, DAY, 8), (4, DAY, 7)]
    assert sorted(p.name for p in (tmp_path / "pending").iterdir()) == [
        "dsp1-2026-03-28.json",
        "dsp4-2026-03-28.json",
    ]  # no temp files left behind
    saved = json.loads(store.path_for(1, DAY).read_text())
    assert saved["report_id"] == 8 and saved["created_at"]

    store.forget(1, DAY)
    store.forget(1, DAY)  # forgetting twice is fine
    assert store.get(1, DAY) is None
    assert isinstance(store.items()[0], PendingReport)


def test_a_second_store_on_the_same_folder_sees_the_ids(tmp_path):
    PendingReports(tmp_path).remember(3, DAY, 11)
    assert PendingReports(tmp_path).get(3, DAY) == 11


def test_corrupt_files_are_treated_as_absent_and_logged(tmp_path, caplog):
    store = PendingReports(tmp_path)
    store.path_for(1, DAY).write_text('{"report_id": ')
    store.path_for(3, DAY).write_text('{"report_id": "six"}')
    store.path_for(4, DAY).write_text("[]")
    (tmp_path / "notes.txt").write_text("not a pending report")

    with caplog.at_level(logging.WARNING):
        assert [store.get(d, DAY) for d in (1, 3, 4)] == [None, None, None]
        assert store.items() == []
    assert sum("corrupt pending-report file" in r.getMessage() for r in caplog.records) >= 3
    assert str(store.path_for(1, DAY)) in caplog.text

    store.remember(1, DAY, 5)  # a corrupt file is simply replaced
    assert store.get(1, DAY) == 5
