"""Dagster's SQLite event log, made to write a run's asset events in bulk.

A marts run reports one materialization per mart per day it built (so the UI's partition
status shows every day): a year's backfill is thousands of events. Dagster's
`SqliteEventLogStorage` writes each event on its own: a new SQLAlchemy engine, two SQLite
shards (the run's and the index) and a synchronous commit each, about 24 ms an event here,
and it has no `store_event_batch` of its own (the base class loops over `store_event`).

`BatchingSqliteEventLogStorage` is the same storage, on the same files, with three changes:
- `store_event_batch` writes a batch of asset events (materializations, observations,
  planned materializations) in one transaction per shard; Dagster hands it batches when
  `DAGSTER_EVENT_BATCH_SIZE` is set (importing this module sets it) for the events
  it marks as batchable: each output's partitions, a run's planned events, and the per-day
  materializations of `defs/transform/day_events.py`;
- one engine per shard for the process's lifetime instead of one per statement;
- `synchronous = NORMAL` on its (WAL) connections: a commit survives the process being
  killed at any point (`kill -9`); only a power loss can drop the last commits.

Everything else, reads included, is Dagster's own code.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as db
import sqlalchemy.exc as db_exc
from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.schema import AssetKeyTable, SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

# Dagster batches the events it marks as batchable only when this is set; this storage is what
# makes a batch cheap, so loading it turns batching on (a user's own value is kept).
EVENT_BATCH_SIZE = "1000"
os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE)

# The events whose storage is the run shard plus the index shard's event, tags and asset entry
# (see SqlEventLogStorage.store_event); other batchable kinds (check-planned, failed-to-
# materialize) keep Dagster's own per-event path.
_BULK_EVENT_TYPES = frozenset(
    {
        DagsterEventType.ASSET_MATERIALIZATION,
        DagsterEventType.ASSET_OBSERVATION,
        DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
    }
)


def _bulk_writable(event: EventLogEntry) -> bool:
    dagster_event = event.dagster_event
    return (
        dagster_event is not None
        and dagster_event.event_type in _BULK_EVENT_TYPES
        and dagster_event.asset_key is not None
    )


def _set_pragmas(dbapi_connection, _record) -> None:
    dbapi_connection.execute("pragma synchronous = NORMAL")


class BatchingSqliteEventLogStorage(SqliteEventLogStorage):
    """SQLite event log storage that stores batches of asset events in one transaction.

    Configured in dagster.yaml as `event_log_storage` (module
    `music_analytics.instance.event_log`, class `BatchingSqliteEventLogStorage`, config
    `base_dir`): the files are Dagster's usual `history/runs/*.db`, readable by Dagster's own
    storage class.
    """

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self._engines: dict[str, Engine] = {}
        self._engines_lock = threading.Lock()
        self._tables: set[str] = set()
        super().__init__(base_dir, inst_data=inst_data)

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> BatchingSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        with self._engines_lock:
            engine = self._engines.get(shard)
            if engine is None:
                engine = db.create_engine(
                    self.conn_string_for_shard(shard),
                    poolclass=QueuePool,
                    pool_size=1,
                    max_overflow=4,
                    connect_args={
                        "timeout": SQLITE_BUSY_TIMEOUT_SECONDS,
                        "check_same_thread": False,
                    },
                )
                db.event.listen(engine, "connect", _set_pragmas)
                self._engines[shard] = engine
            return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # Dagster's _connect, with the shard's engine kept instead of created and disposed.
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def has_table(self, table_name: str) -> bool:
        # Asked on every asset event; a table, once there, stays (only migrations add them).
        if table_name not in self._tables and super().has_table(table_name):
            self._tables.add(table_name)
        return table_name in self._tables

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Store events in order: runs of asset events in one transaction per shard, any
        other event through `store_event`."""
        pending: list[EventLogEntry] = []
        for event in events:
            if _bulk_writable(event) and (not pending or pending[0].run_id == event.run_id):
                pending.append(event)
                continue
            self._store_bulk(pending)
            pending = []
            if _bulk_writable(event):
                pending.append(event)
            else:
                self.store_event(event)
        self._store_bulk(pending)

    def _store_bulk(self, events: list[EventLogEntry]) -> None:
        """What `store_event` does for each asset event, for all of them at once: the rows in
        the run's shard, then in the index shard the rows, their tags and the asset entries."""
        if not events:
            return
        rows = [self._event_to_row(event) for event in events]
        with self.run_connection(events[0].run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
        insert = SqlEventLogStorageTable.insert().returning(
            SqlEventLogStorageTable.c.id, sort_by_parameter_order=True
        )
        with self.index_transaction() as conn:
            event_ids = [row.id for row in conn.execute(insert, rows)]
            self._store_asset_event_tags(conn, events, event_ids)
            self._store_asset_entries(conn, events, event_ids)

    def _store_asset_entries(
        self, conn: Connection, events: list[EventLogEntry], event_ids: list[int]
    ) -> None:
        """The asset table's rows as `_store_asset_event` leaves them after these events, in
        one write per asset: each event sets some columns (the last materialization, last run,
        last event time), so the later event's value of a column wins, as it would one by one."""
        has_index_cols = self._has_asset_key_index_cols_on_connection(conn)
        # Only the last event of each kind of each asset can win a column.
        last: dict[tuple[str, DagsterEventType], tuple[int, EventLogEntry]] = {}
        for event, event_id in zip(events, event_ids, strict=True):
            dagster_event = event.get_dagster_event()
            last[dagster_event.asset_key.to_string(), dagster_event.event_type] = (event_id, event)
        entries: dict[str, dict] = {}
        for (key, _kind), (event_id, event) in sorted(last.items(), key=lambda item: item[1][0]):
            values = self._get_asset_entry_values(event, event_id, has_index_cols)
            if values:
                entries.setdefault(key, {}).update(values)
        for key, values in entries.items():
            try:
                conn.execute(AssetKeyTable.insert().values(asset_key=key, **values))
            except db_exc.IntegrityError:
                conn.execute(
                    AssetKeyTable.update().values(**values).where(AssetKeyTable.c.asset_key == key)
                )

    def dispose(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()
        super().dispose()
