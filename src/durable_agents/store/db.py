"""Engines and sessions, one engine per database URL and process."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

_engines: dict[tuple[int, str], Engine] = {}
_lock = threading.Lock()


def get_engine(url: str) -> Engine:
    """The engine for `url` in this process; a forked child gets its own, never its parent's sockets."""
    key = (os.getpid(), url)
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
            _engines[key] = engine
        return engine


@contextmanager
def transaction(url: str) -> Iterator[Session]:
    """One transaction: committed on success, rolled back on any error."""
    factory = sessionmaker(get_engine(url), expire_on_commit=False)
    with factory.begin() as session:
        yield session
