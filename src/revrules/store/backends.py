"""The two databases behind :class:`revrules.store.Store`: SQLite and PostgreSQL.

Both speak the same schema (:data:`MIGRATIONS`); a backend only knows how to connect,
how to begin a write transaction with the isolation the store needs, and which errors
mean "try the transaction again". SQL is written with ``?`` placeholders; the
PostgreSQL backend turns them into ``%s``.
"""

from __future__ import annotations

import logging
import sqlite3
import urllib.parse
import zlib
from collections.abc import Sequence
from typing import Any

__all__ = ["Backend", "MIGRATIONS", "StoreError", "connect"]


class StoreError(Exception):
    """A store that cannot be opened or used (a bad URL, a newer schema, a refused switch)."""


#: The schema, as numbered migrations; ``schema_version`` holds the last one applied.
#: Times are ISO 8601 text in UTC (``...Z``), days ISO dates: both sort as text.
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (1, (
        # key → value: the current ruleset digest, the last tick, the next sequence number
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        # every ruleset text the store was run under, by content digest
        "CREATE TABLE rulesets (digest TEXT PRIMARY KEY, name TEXT NOT NULL, version TEXT,"
        " file TEXT NOT NULL, source TEXT NOT NULL)",
        # each switch of the store to another ruleset, in order
        "CREATE TABLE ruleset_switches (seq BIGINT PRIMARY KEY, digest TEXT NOT NULL,"
        " previous TEXT, renamed INTEGER NOT NULL)",
        # the append-only event log: every event id the store remembers (applied or
        # refused), with its payload, its payload digest and the ruleset that decided it
        "CREATE TABLE events (seq BIGINT PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
        " at TEXT NOT NULL, type TEXT NOT NULL, subscription TEXT, digest TEXT NOT NULL,"
        " ok INTEGER NOT NULL, code TEXT, message TEXT, ruleset TEXT NOT NULL,"
        " payload TEXT)",
        "CREATE INDEX events_subscription ON events (subscription, seq)",
        # the outcome of each stored event (WIRE.md outcome line)
        "CREATE TABLE outcomes (event_id TEXT PRIMARY KEY, seq BIGINT NOT NULL,"
        " body TEXT NOT NULL)",
        # input the store does not remember by id: lines that are not events, events the
        # ruleset cannot serve, internal errors; (source, line) when it came from a file
        "CREATE TABLE rejections (seq BIGINT PRIMARY KEY, source TEXT, line BIGINT,"
        " event_id TEXT, code TEXT NOT NULL, message TEXT NOT NULL, ruleset TEXT,"
        " payload TEXT, body TEXT NOT NULL)",
        # revenue events, for the ledger
        "CREATE TABLE revenue_events (id TEXT PRIMARY KEY, event_seq BIGINT NOT NULL,"
        " n INTEGER NOT NULL, type TEXT NOT NULL, subscription TEXT NOT NULL,"
        " currency TEXT NOT NULL, month TEXT NOT NULL, storefront TEXT NOT NULL,"
        " channel TEXT NOT NULL, plan TEXT NOT NULL, body TEXT NOT NULL)",
        "CREATE INDEX revenue_events_order ON revenue_events (event_seq, n)",
        "CREATE INDEX revenue_events_subscription ON revenue_events (subscription)",
        "CREATE INDEX revenue_events_month ON revenue_events (currency, month)",
        # one row per subscription (the state dialect of WIRE.md, one object per row)
        "CREATE TABLE subscriptions (id TEXT PRIMARY KEY, customer_id TEXT NOT NULL,"
        " storefront TEXT NOT NULL, plan TEXT NOT NULL, status TEXT NOT NULL,"
        " last_event TEXT, body TEXT NOT NULL)",
        "CREATE INDEX subscriptions_customer ON subscriptions (customer_id)",
        # promotion → redemptions; promotion \\x1f customer → redemptions
        "CREATE TABLE redemptions (promotion TEXT PRIMARY KEY, count BIGINT NOT NULL)",
        "CREATE TABLE customer_redemptions (key TEXT PRIMARY KEY, count BIGINT NOT NULL)",
        # what `tick` reads: subscription → the earliest day something falls due
        "CREATE TABLE due (subscription TEXT PRIMARY KEY, day TEXT NOT NULL)",
        "CREATE INDEX due_day ON due (day, subscription)",
        # how far `revrules ingest` got in each log it read (resuming after a kill)
        "CREATE TABLE sources (name TEXT PRIMARY KEY, position BIGINT NOT NULL)",
    )),
)

SCHEMA_VERSION = MIGRATIONS[-1][0]


class Backend:
    """A connection to one store database."""

    dialect = ""
    url = ""
    #: a query, to be a ``UNION ALL`` branch of a read, that draws ``{count}`` sequence
    #: numbers, if the database draws them (PostgreSQL)
    seq_branch = ""
    _prefetched: list[int]

    def prefetch_seqs(self, values: list[int]) -> None:
        """The next sequence numbers, drawn by :attr:`seq_branch` in a read query."""
        self._prefetched = values

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError

    def write(self, sql: str, params: Sequence[Any] = ()) -> None:
        """A statement whose result is not needed: a backend may send it later, with the
        next read or the commit, in one round trip (it runs in order all the same)."""
        self.execute(sql, params)

    def begin(self, *, exclusive: bool = False, subscription: str | None = None) -> None:
        """Begin a write transaction. ``exclusive``: no other writer runs at the same time
        (a tick, a ruleset switch); ``subscription``: serialise with other writers of it."""
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError

    def rollback(self) -> None:
        raise NotImplementedError

    def retryable(self, exc: BaseException) -> bool:
        """Whether ``exc`` means the transaction lost a race and can simply run again."""
        return False

    def next_seq(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def migrate(self) -> None:
        """Create the schema, or bring it up to :data:`SCHEMA_VERSION`. A store already
        at it is only read (opening one never waits for its writers)."""
        current = self._version()
        if current == SCHEMA_VERSION:
            return
        if current is not None and current > SCHEMA_VERSION:
            raise StoreError(f"{self.url}: the store has schema version {current}; this "
                             f"revrules knows versions up to {SCHEMA_VERSION}")
        self.begin(exclusive=True)
        try:
            self._create_version_table()
            rows = self.execute("SELECT version FROM schema_version")
            current = int(rows[0][0]) if rows else 0
            if current > SCHEMA_VERSION:
                raise StoreError(f"{self.url}: the store has schema version {current}; this "
                                 f"revrules knows versions up to {SCHEMA_VERSION}")
            for version, statements in MIGRATIONS:
                if version <= current:
                    continue
                for statement in statements:
                    self.execute(statement)
                self._after_migration(version)
            if not rows:
                self.execute("INSERT INTO schema_version (version) VALUES (?)",
                             (SCHEMA_VERSION,))
            elif current < SCHEMA_VERSION:
                self.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
            self.commit()
        except BaseException:
            self.rollback()
            raise

    def _version(self) -> int | None:
        """The schema version, or None when there is no schema yet."""
        try:
            rows = self.execute("SELECT version FROM schema_version")
        except Exception:  # noqa: BLE001 - no such table (either database's error)
            self.rollback()
            return None
        return int(rows[0][0]) if rows else None

    def _create_version_table(self) -> None:
        self.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")

    def _after_migration(self, version: int) -> None:
        if version == 1:
            self.execute("INSERT INTO meta (key, value) VALUES ('seq', '0')")


class SQLiteBackend(Backend):
    """SQLite in WAL mode; a write transaction takes the database's write lock at once
    (``BEGIN IMMEDIATE``), so writers are serialised and never deadlock."""

    dialect = "sqlite"

    def __init__(self, path: str, url: str, synchronous: str = "FULL"):
        self.url = url
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=60.0,
                                    check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(f"PRAGMA synchronous={synchronous}")  # one of a fixed few names
        self.conn.execute("PRAGMA busy_timeout=60000")
        self._seq: int | None = None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, tuple(params)).fetchall()

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)

    def begin(self, *, exclusive: bool = False, subscription: str | None = None) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        self._seq = None

    def commit(self) -> None:
        if self._seq is not None:
            self.conn.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (str(self._seq),))
        self.conn.execute("COMMIT")
        self._seq = None

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        self._seq = None

    def retryable(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)

    def next_seq(self) -> int:
        if self._seq is None:
            rows = self.execute("SELECT value FROM meta WHERE key = 'seq'")
            self._seq = int(rows[0][0]) if rows else 0
        self._seq += 1
        return self._seq

    def close(self) -> None:
        self.conn.close()


class PostgresBackend(Backend):
    """PostgreSQL through psycopg 3. Writers of one subscription are serialised by an
    advisory lock on its id; a tick (which may touch any subscription) takes the store's
    advisory lock exclusively, other writers share it. Transactions run READ COMMITTED:
    every read comes after the locks, so it sees all that the writers before committed,
    and a counter (a promotion's redemptions, a customer's) is only updated while it
    still holds what the transaction read; otherwise the update fails and the
    transaction runs again on the new count, so a promotion's total limit is never
    over-redeemed. Writes wait and go with the next read or the commit, in one round
    trip (psycopg's pipeline mode)."""

    dialect = "postgresql"

    def __init__(self, url: str, schema: str | None = None):
        try:
            import psycopg
        except ImportError:  # pragma: no cover - the extra is installed in tests
            raise StoreError("PostgreSQL stores need psycopg: pip install "
                             "'revrules[postgres]'") from None
        self.url = url
        self._psycopg = psycopg
        # a pipeline ended by a lost race is logged by psycopg; the store runs the
        # transaction again, so keep Python's last-resort handler from printing it
        logging.getLogger("psycopg").addHandler(logging.NullHandler())
        try:
            # no server-side prepared statements: a pipeline that failed would leave
            # psycopg believing in statements the server dropped
            self.conn = psycopg.connect(url, autocommit=True, prepare_threshold=None)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to {_safe_url(url)}: "
                             f"{str(exc).strip().splitlines()[0]}") from None
        if schema is not None:
            if not schema.replace("_", "").isalnum() or not schema.isascii():
                raise StoreError(f"not a schema name: {schema!r}")
            self.conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')  # checked above
            self.conn.execute(f'SET search_path TO "{schema}"')
        self._pending: list[tuple[str, tuple[Any, ...]]] = []
        self._prefetched = []

    def _send(self, sql: str | None = None, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The pending statements, then ``sql``, in one round trip; ``sql``'s rows."""
        pending, self._pending = self._pending, []
        if not pending:
            if sql is None:
                return []
            cur = self.conn.execute(sql.replace("?", "%s"), tuple(params))
            return cur.fetchall() if cur.description is not None else []
        with self.conn.pipeline():
            for text, args in pending:
                self.conn.execute(text.replace("?", "%s"), args)
            if sql is None:
                return []
            cur = self.conn.execute(sql.replace("?", "%s"), tuple(params))
        return cur.fetchall() if cur.description is not None else []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._send(sql, params)

    def write(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._pending.append((sql, tuple(params)))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        for row in rows:
            self.write(sql, row)

    def begin(self, *, exclusive: bool = False, subscription: str | None = None) -> None:
        # transaction-level locks, released by the commit; every read comes after them
        self._pending = [("BEGIN", ())]
        self._prefetched = []
        self.write("SELECT pg_advisory_xact_lock(1, 0)" if exclusive
                   else "SELECT pg_advisory_xact_lock_shared(1, 0)")
        if subscription is not None and not exclusive:
            self.write("SELECT pg_advisory_xact_lock(2, ?)", (_key(subscription),))

    def commit(self) -> None:
        self._send("COMMIT")

    def rollback(self) -> None:
        self._pending = []
        try:
            self.conn.execute("ROLLBACK")
        except self._psycopg.Error:
            pass

    def retryable(self, exc: BaseException) -> bool:
        errors = self._psycopg.errors
        return isinstance(exc, (errors.SerializationFailure, errors.DeadlockDetected,
                                errors.UniqueViolation, errors.DivisionByZero))

    seq_branch = ("SELECT 'q', CAST(nextval('revrules_seq') AS TEXT), NULL, NULL, NULL, NULL "
                  "FROM generate_series(1, {count})")

    def next_seq(self) -> int:
        if self._prefetched:
            return self._prefetched.pop(0)
        return int(self.execute("SELECT nextval('revrules_seq')")[0][0])

    def close(self) -> None:
        self.conn.close()

    def _after_migration(self, version: int) -> None:
        if version == 1:
            self.execute("CREATE SEQUENCE revrules_seq")
        super()._after_migration(version)


def _key(text: str) -> int:
    """A 32-bit signed lock key for a subscription id (collisions only serialise more)."""
    value = zlib.crc32(text.encode("utf-8", "surrogatepass"))
    return value - (1 << 32) if value >= 1 << 31 else value


def _safe_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return url


def connect(url: str) -> Backend:
    """A backend for ``url``: ``sqlite:///path.db`` (``sqlite:///:memory:``), or
    ``postgresql://…`` (a ``?schema=NAME`` query keeps the store in that schema)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "sqlite":
        if parts.netloc not in ("", "localhost"):
            raise StoreError(f"{url}: a SQLite URL is sqlite:///path (three slashes)")
        # as SQLAlchemy spells it: sqlite:///relative.db, sqlite:////absolute/path.db
        path = urllib.parse.unquote(parts.path).removeprefix("/")
        query = urllib.parse.parse_qs(parts.query)
        sync = (query.get("synchronous") or ["FULL"])[0].upper()
        if sync not in ("FULL", "NORMAL", "EXTRA", "OFF"):
            raise StoreError(f"{url}: synchronous is one of full, normal, extra, off")
        if not path:
            raise StoreError(f"{url}: no database file (sqlite:///path.db)")
        try:
            return SQLiteBackend(path, url, sync)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {url}: {exc}") from None
    if parts.scheme in ("postgresql", "postgres"):
        query = urllib.parse.parse_qs(parts.query)
        schemas = query.pop("schema", [])
        schema = schemas[0] if schemas else None
        rest = urllib.parse.urlencode({k: v[0] for k, v in sorted(query.items())})
        clean = urllib.parse.urlunsplit(parts._replace(query=rest))
        return PostgresBackend(clean, schema)
    raise StoreError(f"not a store URL: {_safe_url(url)!r} (sqlite:///path.db or "
                     "postgresql://host/db)")
