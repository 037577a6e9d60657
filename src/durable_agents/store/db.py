"""Engines and sessions, one engine per database URL and process; SQLite is set up to behave like a server."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from .timestamps import read_any_timestamp

_engines: dict[tuple[int, str], Engine] = {}
_lock = threading.Lock()

#: How long a SQLite writer waits for another one to finish before it gives up.
SQLITE_BUSY_TIMEOUT_SECONDS = 60


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def get_engine(url: str) -> Engine:
    """The engine for `url` in this process; a forked child gets its own, never its parent's sockets."""
    key = (os.getpid(), url)
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _create_sqlite_engine(url) if is_sqlite(url) else _create_server_engine(url)
            _engines[key] = engine
        return engine


def _create_server_engine(url: str) -> Engine:
    # No pre-ping: it costs a round trip per transaction. A connection the server dropped fails its
    # transaction, SQLAlchemy then discards the pool's connections, and the work is retried (every
    # step and activity is redelivered until its result is committed).
    engine = create_engine(url, pool_size=10, max_overflow=20, pool_recycle=1800)

    @event.listens_for(engine, "connect")
    def saturate_timestamps(dbapi_connection: Any, _record: Any) -> None:
        read_any_timestamp(dbapi_connection)

    return engine


def _create_sqlite_engine(url: str) -> Engine:
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_SECONDS}, pool_size=10
    )

    @event.listens_for(engine, "connect")
    def configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin (below) open transactions rather than the driver's own guesswork.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def begin_immediate(connection: Any) -> None:
        # Take the write lock up front: every transaction then runs alone, which gives the
        # row-lock guarantees the PostgreSQL path gets from FOR UPDATE, and a transaction that
        # reads before it writes can never fail halfway with SQLITE_BUSY.
        if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            # `single_statement`: SQLite commits the one statement by itself. A BEGIN here would open a
            # transaction that nothing commits, and the write would be lost with it.
            return
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


_session_factories: dict[tuple[Engine, bool], sessionmaker[Session]] = {}


def _factory(url: str, autocommit: bool) -> sessionmaker[Session]:
    # One factory per engine: building a sessionmaker creates a Session subclass, whose event
    # dispatch SQLAlchemy would otherwise set up again for every transaction.
    engine = get_engine(url)
    factory = _session_factories.get((engine, autocommit))
    if factory is None:
        bind = engine.execution_options(isolation_level="AUTOCOMMIT") if autocommit else engine
        factory = _session_factories.setdefault((engine, autocommit), sessionmaker(bind, expire_on_commit=False))
    return factory


@contextmanager
def transaction(url: str) -> Iterator[Session]:
    """One transaction: committed on success, rolled back on any error."""
    with _factory(url, autocommit=False).begin() as session:
        yield session


@contextmanager
def single_statement(url: str) -> Iterator[Session]:
    """A session for one statement that is atomic on its own, run without BEGIN and COMMIT: two
    round trips fewer than `transaction`, for the claims and lease renewals every activity makes."""
    with _factory(url, autocommit=True)() as session:
        yield session
