"""Engines, sessions and the write path of the indexer's store: SQLite or PostgreSQL.

SQLite runs in WAL mode so readers never wait for the writer. SQLAlchemy, not the
``sqlite3`` driver, emits BEGIN, so that write transactions can start with
``BEGIN IMMEDIATE``: they take the write lock up front and wait for it (busy_timeout)
instead of failing with "database is locked" when a read turns into a write.

Requests write through ``Database.run_write``: on SQLite on the event loop, in
batches that share a transaction (``_EventLoopWriter`` says why, and what it never
waits for); on PostgreSQL, which handles concurrent writers itself, in the thread
pool. ``DriverStatement`` runs hot-path statements without SQLAlchemy's per-call work.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import ClauseElement, Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.engine.interfaces import DBAPICursor
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.compiler import SQLCompiler
from starlette.concurrency import run_in_threadpool

from gpunet.errors import ConfigError

log = logging.getLogger("gpunet.indexer.database")

SQLITE_BUSY_TIMEOUT_MS = 10_000
_BEGIN_OPTION = "gpunet_sqlite_begin"

T = TypeVar("T")


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and explicit BEGIN."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigError(f"database URL {url!r} is not a SQLAlchemy URL: {exc}") from None
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True)
    return _sqlite_engine(parsed)


def _sqlite_engine(url: URL) -> Engine:
    in_memory = url.database in (None, "", ":memory:")
    if in_memory:
        # One shared connection, or every checkout would see a different empty database.
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        engine = create_engine(url, connect_args={"check_same_thread": False})
    event.listen(engine, "connect", _sqlite_on_connect(wal=not in_memory))
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_on_connect(wal: bool) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return on_connect


def _sqlite_begin(connection: Connection) -> None:
    mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


def ensure_sqlite_directory(url: str) -> None:
    """Create the directory of a SQLite database file if it is missing."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


class Database:
    """An engine, its sessions for reads and writes, and where writes run."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._write_bind = engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        self._reader = sessionmaker(engine, expire_on_commit=False)
        self._writer = sessionmaker(self._write_bind, expire_on_commit=False)
        sqlite = engine.dialect.name == "sqlite"
        self._loop_writer = _EventLoopWriter(self._write_bind) if sqlite else None
        # Sessions open in other threads; close() waits for them (see there).
        self._busy = 0
        self._idle = threading.Condition()

    @classmethod
    def from_engine(cls, engine: Engine) -> Database:
        return cls(engine)

    @property
    def dialect(self) -> str:
        """The database's dialect name: ``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def _in_use(self) -> Iterator[None]:
        with self._idle:
            self._busy += 1
        try:
            yield
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for queries; it is rolled back and closed on exit."""
        with self._in_use(), self._reader() as session:
            yield session

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """A session whose work is committed on a clean exit and rolled back on error."""
        with self._writer() as session, session.begin():
            yield session

    async def run_write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in a write transaction; commit when it returns, roll back if not.

        ``work`` must be short, must not wait on anything but the database and must
        not end the transaction itself. On SQLite it runs on the event loop, possibly
        in one transaction with other writes but in a savepoint of its own, so that
        it commits or rolls back alone (``_EventLoopWriter``); on PostgreSQL in the
        thread pool, in a transaction of its own on a pooled connection.
        """
        if self._loop_writer is not None:
            return await self._loop_writer.run(work)
        return await run_in_threadpool(self.write_here, work)

    def write_here(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in a write transaction on the calling thread (not the event loop).

        For long writes (the sweeper) and callers outside the app (tests, scripts): on
        SQLite such a write waits for the lock like another process (busy_timeout).
        """
        with self._in_use(), self._write_bind.begin() as connection:
            return work(connection)

    def close(self, wait_s: float = 5.0) -> None:
        """Close the writer's connection and every pooled connection.

        Reads and writes still running in threads (a request or the matcher cancelled
        at shutdown leaves its thread running) get up to ``wait_s`` to finish first, so
        that no connection outlives the pool, open and unclosed.
        """
        with self._idle:
            self._idle.wait_for(lambda: self._busy == 0, timeout=wait_s)
        if self._loop_writer is not None:
            self._loop_writer.close()
        self.engine.dispose()


_Job = tuple[Callable[[Connection], Any], "asyncio.Future[Any]"]


class _EventLoopWriter:
    """Runs the SQLite writes of requests on the event loop, together.

    SQLite has one write lock per database. Writers in separate threads of one
    process meet at that lock, and a writer that finds it taken sleeps in SQLite's
    busy handler (1 to 100 ms a try) while the lock is free again within 0.1 ms. A
    single writer thread avoids the lock but not the GIL: at saturation the event
    loop holds the GIL, so the writer thread waits for it after every SQLite call
    (each call releases it) and the writes, not the CPU, set the pace. On the event
    loop a write needs no hand-off: a few statements on a local file, about 0.1 ms,
    the CPU time it would cost on any thread. Writes of this process cannot overlap,
    so they never meet at the lock. ``benchmarks/README.md`` has the measurements.

    Jobs submitted while the loop is busy queue in memory and run in the next pass
    in ONE transaction, each inside a savepoint of its own: a job that raises is
    rolled back alone and gets its error, the others commit together. Taking the
    lock and committing (WAL frames written, about 0.1 ms together) is then paid once
    per batch instead of once per request. Nobody is answered before the commit.

    What must not block the loop is waiting: for a lock held by another process (a
    second uvicorn worker, a script, ``Database.write_here`` in a thread), or for the
    disk. So this writer's connection has no busy timeout: a ``BEGIN IMMEDIATE``
    that finds the lock taken fails at once, and the batch is tried again after 1 ms,
    then 2, 4 ... up to 20 ms apart, for ``SQLITE_BUSY_TIMEOUT_MS`` in all, while the
    loop serves other requests and more jobs join the batch. And it never checkpoints
    the WAL (copying pages into the database file and syncing both, some 5 ms here,
    far more on a slow disk): every ``CHECKPOINT_EVERY`` commits a PASSIVE checkpoint
    runs in a thread instead.
    """

    FIRST_RETRY_S = 0.001
    MAX_RETRY_S = 0.02
    CHECKPOINT_EVERY = 200
    _SAVEPOINT = "gpunet_job"

    def __init__(self, bind: Engine) -> None:
        self._bind = bind
        self._connection: Connection | None = None
        self._queue: list[_Job] = []
        self._flush_pending = False
        self._commits = 0
        self._checkpointing = False

    async def run(self, work: Callable[[Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.append((work, future))
        if not self._flush_pending:
            self._flush_pending = True
            loop.call_soon(self._flush, loop, self.FIRST_RETRY_S, None)
        return await future

    def _flush(self, loop: asyncio.AbstractEventLoop, delay: float, deadline: float | None) -> None:
        batch = [job for job in self._queue if not job[1].done()]  # done: cancelled
        self._queue = []
        try:
            outcomes = self._write(batch) if batch else []
        except OperationalError as error:
            now = time.monotonic()
            deadline = deadline if deadline is not None else now + SQLITE_BUSY_TIMEOUT_MS / 1000
            if _is_busy(error) and now < deadline:
                self._queue[:0] = batch
                retry = min(2 * delay, self.MAX_RETRY_S)
                loop.call_later(delay, self._flush, loop, retry, deadline)
                return
            outcomes = [(future, None, error) for _, future in batch]
        except Exception as error:
            outcomes = [(future, None, error) for _, future in batch]
        except BaseException:
            self._flush_pending = False
            _settle([(future, None, RuntimeError("write interrupted")) for _, future in batch])
            raise
        else:
            self._commits += 1 if batch else 0
            if self._commits >= self.CHECKPOINT_EVERY and not self._checkpointing:
                self._commits, self._checkpointing = 0, True
                loop.run_in_executor(None, self._checkpoint).add_done_callback(self._checked)
        self._flush_pending = False
        _settle(outcomes)

    def _checkpoint(self) -> None:
        # On a pooled connection in a thread; PASSIVE neither takes nor waits for the
        # write lock, so writers go on meanwhile.
        connection = self._bind.raw_connection()
        try:
            connection.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
        finally:
            connection.close()

    def _checked(self, done: asyncio.Future[None]) -> None:
        self._checkpointing = False
        if not done.cancelled() and done.exception() is not None:
            log.warning("WAL checkpoint failed; retried later", exc_info=done.exception())

    def _write(self, batch: list[_Job]) -> list[tuple[asyncio.Future[Any], Any, Exception | None]]:
        connection = self._connection
        if connection is None or connection.invalidated:
            connection = self._connect()
        outcomes: list[tuple[asyncio.Future[Any], Any, Exception | None]] = []
        with connection.begin():
            cursor = connection.connection.cursor()
            for work, future in batch:
                cursor.execute(f"SAVEPOINT {self._SAVEPOINT}")
                try:
                    outcomes.append((future, work(connection), None))
                except Exception as error:
                    cursor.execute(f"ROLLBACK TO {self._SAVEPOINT}")
                    outcomes.append((future, None, error))
                cursor.execute(f"RELEASE {self._SAVEPOINT}")
            cursor.close()
        return outcomes

    def _connect(self) -> Connection:
        self._close_connection()
        connection = self._bind.connect()
        # On the DBAPI connection: through SQLAlchemy a PRAGMA would begin a transaction.
        driver = connection.connection.driver_connection
        driver.execute("PRAGMA busy_timeout=0")  # type: ignore[union-attr]
        driver.execute("PRAGMA wal_autocheckpoint=0")  # type: ignore[union-attr]
        self._connection = connection
        return connection

    def _close_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.invalidate()  # not back to the pool: its busy timeout is 0
            connection.close()

    def close(self) -> None:
        queued, self._queue = self._queue, []
        for _, future in queued:
            if not future.done():
                future.set_exception(RuntimeError("the database was closed"))
        self._close_connection()


def _settle(outcomes: list[tuple[asyncio.Future[Any], Any, Exception | None]]) -> None:
    for future, result, failure in outcomes:
        if future.done():
            continue
        if failure is None:
            future.set_result(result)
        else:
            future.set_exception(failure)


def _is_busy(error: OperationalError) -> bool:
    return getattr(error.orig, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY


class DriverStatement:
    """A Core statement compiled once per dialect and run on the driver's own cursor.

    SQLAlchemy's work around each execution (execution context, events, result
    object: some 30 us) exceeds what SQLite needs to run a small statement. The
    heartbeat's statements, the hot path, skip it: they run on the DBAPI cursor of
    the SQLAlchemy connection, inside the transaction that connection manages. Only
    for statements whose parameters need no conversion (strings, numbers, None) and
    expand nothing (no IN lists); the echo log does not show them.
    """

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[str, SQLCompiler] = {}

    def execute(self, connection: Connection, parameters: Mapping[str, Any]) -> DBAPICursor:
        """Run the statement; the caller reads the driver cursor it returns and closes it."""
        compiled = self._compiled.get(connection.dialect.name) or self._compile(connection)
        values = compiled.construct_params(parameters)
        cursor = connection.connection.cursor()
        if compiled.positiontup is None:
            cursor.execute(compiled.string, values)
        else:
            cursor.execute(compiled.string, [values[name] for name in compiled.positiontup])
        return cursor

    def _compile(self, connection: Connection) -> SQLCompiler:
        compiled = self.statement.compile(dialect=connection.dialect)
        assert isinstance(compiled, SQLCompiler)
        self._compiled[connection.dialect.name] = compiled
        return compiled


@contextmanager
def session_on(connection: Connection) -> Iterator[Session]:
    """An ORM session inside ``connection``'s transaction, written on a clean exit.

    The session works in a savepoint of its own: a failed flush rolls back only that,
    and a clean exit releases it. Whoever began the transaction commits it.
    """
    with Session(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    ) as session:
        yield session
        session.commit()
