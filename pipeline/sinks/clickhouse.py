"""ClickHouse access: connection from one URL, versioned migrations, batched idempotent inserts.

The same code talks to a ClickHouse server over HTTP(S) in production and to the in-process
chdb engine in embedded mode: `clickhouse_connect` hides the difference behind one client API.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote, urlparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from pipeline.schemas import Alert, EnrichedPost
from pipeline.settings import PROJECT_ROOT, Settings
from pipeline.sinks import DataRejected

log = logging.getLogger(__name__)

MIGRATIONS_DIR = PROJECT_ROOT / "deploy" / "clickhouse"
_MIGRATION_FILE = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


_ERROR_NAME = re.compile(r"\(([A-Z][A-Z0-9_]+)\)")
_DATA_ERROR_PREFIXES = ("CANNOT_PARSE_", "CANNOT_READ_", "CANNOT_CONVERT_")
_DATA_ERRORS = frozenset({
    "INCORRECT_DATA", "TYPE_MISMATCH", "VIOLATED_CONSTRAINT", "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
    "CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN", "ARGUMENT_OUT_OF_BOUND", "TOO_LARGE_STRING_SIZE", "DECIMAL_OVERFLOW",
    "UNKNOWN_ELEMENT_OF_ENUM", "ATTEMPT_TO_READ_AFTER_EOF",
})  # fmt: skip
"""ClickHouse error names that blame the inserted data (parse, type, range, constraint), not the engine."""


def blames_the_data(error: DatabaseError) -> bool:
    """Whether ClickHouse refused an insert for what was in it; other failures (connection, too
    many parts, memory) must be retried, never turned into dead letters."""
    if isinstance(error, OperationalError):
        return False
    return any(
        name in _DATA_ERRORS or name.startswith(_DATA_ERROR_PREFIXES) for name in _ERROR_NAME.findall(str(error))
    )


class EngineBusy(RuntimeError):
    """The embedded chdb path is held by another process (one process may own it)."""


def _held_by_another_process(path: Path) -> bool:
    """ClickHouse keeps an exclusive flock on `<path>/status` while an engine has the path open."""
    status = path / "status"
    if not status.exists():
        return False
    with status.open("rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def connect(url: str, database: str | None = None) -> Client:
    """A client for ``chdb:///abs/path`` (embedded) or ``http(s)://user:pass@host:port`` (server)."""
    if url.startswith("chdb:"):
        path = Path(url.removeprefix("chdb://"))
        path.mkdir(parents=True, exist_ok=True)
        if _held_by_another_process(path):
            raise EngineBusy(f"{url} is in use by another process (a running worker?)")
        return clickhouse_connect.get_client(dsn=url)
    parsed = urlparse(url)
    return clickhouse_connect.get_client(
        host=parsed.hostname,
        port=parsed.port or (8443 if parsed.scheme == "https" else 8123),
        username=unquote(parsed.username or "default"),
        password=unquote(parsed.password or ""),
        secure=parsed.scheme == "https",
        database=database or "default",
    )


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self, database: str, ttl_days: int) -> list[str]:
        body = self.sql.replace("{db}", database).replace("{ttl_days}", str(ttl_days))
        body = "\n".join(line for line in body.splitlines() if not line.lstrip().startswith("--"))
        return [stmt.strip() for stmt in body.split(";") if stmt.strip()]


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.iterdir()):
        match = _MIGRATION_FILE.match(path.name)
        if match:
            migrations.append(Migration(int(match.group(1)), path.stem, path.read_text(encoding="utf-8")))
    versions = [m.version for m in migrations]
    if len(versions) != len(set(versions)):
        raise ValueError(f"duplicate migration versions in {directory}: {versions}")
    return migrations


MIGRATION_LOCK = "schema_migrations_lock"


class MigrationLocked(TimeoutError):
    """Another process held the migration lock for longer than we would wait."""


@contextmanager
def migration_lock(client: Client, database: str, wait_s: float = 300.0, stale_after_s: float = 900.0) -> Iterator[None]:
    """One migrator at a time per database. ClickHouse has no advisory lock, but creating a table
    is atomic and fails when the table exists, so the table ``{database}.schema_migrations_lock`` is
    the lock: held while it exists, released by dropping it. A lock older than `stale_after_s`
    was left by a migrator that died (migrations take seconds) and is broken."""
    holder = f"{socket.gethostname()}:{os.getpid()}"
    table = f"{database}.{MIGRATION_LOCK}"
    deadline = time.monotonic() + wait_s
    while True:
        try:
            client.command(f"CREATE TABLE {table} (holder String) ENGINE = Memory COMMENT '{holder}'")
            break
        except DatabaseError as exc:
            if "TABLE_ALREADY_EXISTS" not in str(exc):
                raise
        rows = client.query(
            "SELECT comment, dateDiff('second', metadata_modification_time, now()) FROM system.tables "
            "WHERE database = {db:String} AND name = {name:String}",
            parameters={"db": database, "name": MIGRATION_LOCK},
        ).result_rows
        if rows and rows[0][1] > stale_after_s:
            log.warning("breaking the migration lock %s held by %s for %d s", table, rows[0][0], rows[0][1])
            client.command(f"DROP TABLE IF EXISTS {table}")
        elif time.monotonic() > deadline:
            raise MigrationLocked(f"{table} held by {rows[0][0] if rows else '?'} for more than {wait_s:.0f} s")
        else:
            time.sleep(1.0)
    try:
        yield
    finally:
        client.command(f"DROP TABLE IF EXISTS {table}")


def migrate(
    client: Client, database: str, ttl_days: int, directory: Path = MIGRATIONS_DIR, lock_wait_s: float = 300.0
) -> list[int]:
    """Apply the migrations not yet recorded in ``{database}.schema_migrations``, under the
    migration lock (replicas starting together, the compose `migrate` job); returns the versions applied."""
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    with migration_lock(client, database, wait_s=lock_wait_s):
        client.command(
            f"CREATE TABLE IF NOT EXISTS {database}.schema_migrations "
            "(version UInt32, name String, applied_at DateTime DEFAULT now()) ENGINE = MergeTree ORDER BY version"
        )
        done = {row[0] for row in client.query(f"SELECT version FROM {database}.schema_migrations").result_rows}
        applied = []
        for migration in load_migrations(directory):
            if migration.version in done:
                continue
            for statement in migration.statements(database, ttl_days):
                client.command(statement)
            client.insert(
                f"{database}.schema_migrations", [(migration.version, migration.name)], column_names=["version", "name"]
            )
            applied.append(migration.version)
        return applied


ENRICHED_POST_INSERT_SETTINGS = {
    "date_time_input_format": "best_effort",  # ISO 8601 with zone, as the schemas write it
    "input_format_null_as_default": 0,  # null only where the landing table says Nullable
    "input_format_skip_unknown_fields": 0,
    "input_format_json_ignore_unknown_keys_in_named_tuple": 0,
    # a batch (1-20 MB) is parsed by several threads (the 10 MB default chunk left one busy) and
    # the views over `posts` are filled in parallel: measured +5-25 % rows/s per insert
    "min_chunk_bytes_for_parallel_parsing": 1 << 20,
    "parallel_view_processing": 1,
}
"""How the engine reads enriched_post v1 messages into `enriched_post_v1` (migration 005): strictly."""


ALERT_COLUMNS = (
    "id", "kind", "watch", "key", "scale", "severity", "state", "window_start", "window_end", "observed", "baseline",
    "negative_share", "baseline_negative_share", "score", "sample_post_ids", "sample_texts", "top_terms",
    "opened_at", "updated_at", "details",
)  # fmt: skip


def alert_row(alert: Alert) -> tuple:
    details = alert.story or alert.forecast
    return (
        alert.id, alert.kind, alert.watch, alert.key, alert.scale or "", alert.severity, alert.state.value,
        alert.window_start, alert.window_end, alert.observed, alert.baseline, alert.negative_share,
        alert.baseline_negative_share, alert.score,
        [p.id for p in alert.sample_posts], [p.text for p in alert.sample_posts], alert.top_terms,
        alert.opened_at, alert.updated_at, details.encode().decode() if details is not None else "",
    )  # fmt: skip


class ClickHouseSink:
    """Writes whole batches (never a row per insert); callers run it off the event loop.

    Inserts are serialised by a lock because one chdb session must not run two queries at once.
    Idempotence comes from the tables (ReplacingMergeTree), so a redelivered batch is harmless.
    """

    def __init__(self, client: Client, database: str):
        self.client = client
        self.database = database
        self._lock = threading.Lock()

    @classmethod
    def open(cls, settings: Settings) -> "ClickHouseSink":
        client = connect(settings.resolved_clickhouse_url, settings.clickhouse_database)
        migrate(client, settings.clickhouse_database, settings.clickhouse_ttl_days)
        return cls(client, settings.clickhouse_database)

    def insert_posts(self, posts: Sequence[EnrichedPost]) -> int:
        return self.insert_encoded_posts([post.encode() for post in posts])

    def insert_encoded_posts(self, messages: Sequence[bytes]) -> int:
        """enriched_post v1 messages as they are on `posts.enriched`, parsed by the engine.

        Rows reach `posts` through the landing table's materialized view (migration 005), so
        the worker spends no Python time per row; raises if the engine rejects any message.
        """
        if messages:
            with self._lock:
                try:
                    self.client.raw_insert(
                        f"{self.database}.enriched_post_v1",
                        insert_block=b"\n".join(messages),
                        settings=ENRICHED_POST_INSERT_SETTINGS,
                        fmt="JSONEachRow",
                    )
                except DatabaseError as exc:
                    if blames_the_data(exc):
                        raise DataRejected(str(exc)) from exc
                    raise
        return len(messages)

    def insert_alerts(self, alerts: Sequence[Alert]) -> int:
        return self._insert("alerts", ALERT_COLUMNS, (alert_row(a) for a in alerts))

    def insert_rows(self, table: str, columns: Sequence[str], rows: Iterable[tuple]) -> int:
        """One insert of `rows` into `table` of this database (forecasts, the account registry)."""
        return self._insert(table, columns, rows)

    def _insert(self, table: str, columns: Sequence[str], rows: Iterable[tuple]) -> int:
        data = list(rows)
        if data:
            with self._lock:
                self.client.insert(f"{self.database}.{table}", data, column_names=list(columns))
        return len(data)

    def save_alert_state(self, namespace: str, offset: int, state: bytes) -> None:
        with self._lock:
            self.client.insert(
                f"{self.database}.alert_engine_state",
                [(namespace, offset, state.decode(), datetime.now(timezone.utc))],
                column_names=["namespace", "offset", "state", "saved_at"],
            )

    def load_alert_state(self, namespace: str) -> tuple[int, bytes] | None:
        """The newest snapshot of the alert engine for this namespace, as (offset, state JSON)."""
        rows = self.query(
            f"SELECT argMax(offset, saved_at), argMax(state, saved_at) FROM {self.database}.alert_engine_state "
            "WHERE namespace = {namespace:String} HAVING count() > 0",
            {"namespace": namespace},
        )
        return (rows[0][0], rows[0][1].encode()) if rows else None

    def query(self, sql: str, parameters: dict | None = None) -> list[tuple]:
        with self._lock:
            return self.client.query(sql, parameters=parameters).result_rows

    def close(self) -> None:
        self.client.close()
