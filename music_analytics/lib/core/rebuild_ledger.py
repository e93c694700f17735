"""The rebuild ledger: raw.pending_rebuilds, the days whose marts are out of date, per source.

Raw writes add rows here in the transaction of their data (lib/core/raw_writer.py). A mart
build reads what is pending, builds it, writes the exports, and only then clears exactly the
entries it read (`up_to`): entries added meanwhile stay for the next build. Whatever dies
wherever, what is pending is still here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

import duckdb

LEDGER_TABLE = "raw.pending_rebuilds"
SOURCES = ("events", "dsp", "spotify")  # the raw sources whose days the ledger tracks
# The raw tables each source's loads write, each with the day of a row as SQL: the day those
# loads mark here (and the raw Parquet layer's partition day, lib/core/raw_layer.py).
SOURCE_TABLE_DAYS: dict[str, dict[str, str]] = {
    "events": {"stream_events": "stream_date"},
    "dsp": {
        "dsp_report_records": "report_date",
        "dsp_report_countries": "report_date",
        "dsp_report_breakdowns": "report_date",
        "dsp_report_quarantine": "report_date",
    },
    "spotify": {
        "spotify_plays": "cast(played_at as date)",
        # the play's start day (lib/spotify/history_load.py)
        "spotify_history": "cast(ended_at - to_milliseconds(ms_played) as date)",
    },
}

LEDGER_DDL = (
    "create sequence if not exists raw.pending_rebuilds_seq",
    f"""
    create table if not exists {LEDGER_TABLE} (
        entry_id bigint not null default nextval('raw.pending_rebuilds_seq'),
        day date not null,                      -- a UTC day whose marts must be rebuilt
        source varchar not null,                -- events | dsp | spotify
        load_id varchar not null,               -- the raw load that touched the day
        recorded_at timestamp not null
    )
    """,
)


@dataclass(frozen=True)
class PendingRebuilds:
    """What the ledger holds: the pending days of each source, as of entry `up_to`."""

    days_by_source: dict[str, frozenset[date]] = field(default_factory=dict)
    up_to: int = 0
    # The latest day any source has rows for (None: no rows, or not read): a day after it has
    # no streams, so no mart rows, whatever a trailing measure would say (plans.plan_build).
    data_through: date | None = None

    @property
    def days(self) -> frozenset[date]:
        """Every pending day, whatever its source."""
        return frozenset().union(*self.days_by_source.values())

    @property
    def sources(self) -> frozenset[str]:
        return frozenset(self.days_by_source)

    def __bool__(self) -> bool:
        return bool(self.days_by_source)

    def restricted_to(self, days: Iterable[date]) -> PendingRebuilds:
        """Only the pending days among `days` (e.g. a partition range being built)."""
        keep = frozenset(days)
        kept = {s: d & keep for s, d in self.days_by_source.items() if d & keep}
        return PendingRebuilds(kept, self.up_to, self.data_through)


def record_pending(
    conn: duckdb.DuckDBPyConnection,
    source: str,
    days: Iterable[date],
    load_id: str,
    recorded_at: datetime,
) -> None:
    """Add `days` of `source` to the ledger (call inside the load's transaction)."""
    if source not in SOURCES:
        raise ValueError(f"unknown ledger source {source!r}; expected one of {SOURCES}")
    days = sorted(set(days))
    if not days:
        return
    conn.execute(
        f"insert into {LEDGER_TABLE} (day, source, load_id, recorded_at) "
        "select unnest(?::date[]), ?, ?, ?",
        [days, source, load_id, recorded_at],
    )


def read_pending(conn: duckdb.DuckDBPyConnection) -> PendingRebuilds:
    """The pending days of every source, and the newest entry read."""
    rows = conn.execute(
        f"select source, list(distinct day), max(entry_id) from {LEDGER_TABLE} group by source"
    ).fetchall()
    if not rows:
        return PendingRebuilds()
    return PendingRebuilds(
        {source: frozenset(days) for source, days, _ in rows},
        max(row[2] for row in rows),
        latest_data_day(conn),
    )


def latest_data_day(conn: duckdb.DuckDBPyConnection) -> date | None:
    """The latest day with rows in any source's raw tables (`SOURCE_TABLE_DAYS`); a few ms on
    a year."""
    present = {
        name
        for (name,) in conn.execute(
            "select table_name from duckdb_tables() where schema_name = 'raw'"
        ).fetchall()
    }
    latest = [
        f"select max({column}) as day from raw.{table}"
        for tables in SOURCE_TABLE_DAYS.values()
        for table, column in tables.items()
        if table in present
    ]
    if not latest:
        return None
    return conn.execute(f"select max(day) from ({' union all '.join(latest)})").fetchone()[0]


def clear_pending(
    conn: duckdb.DuckDBPyConnection,
    sources: Iterable[str],
    days: Iterable[date],
    up_to: int,
) -> int:
    """Remove the entries of `sources` x `days` up to entry `up_to` (those a build read and
    has now built and exported); the number of entries removed."""
    sources, days = sorted(set(sources)), sorted(set(days))
    if not sources or not days:
        return 0
    return conn.execute(
        f"delete from {LEDGER_TABLE} where entry_id <= ? and source in (select unnest(?)) "
        "and day in (select unnest(?::date[]))",
        [up_to, sources, days],
    ).fetchone()[0]
