"""The stream writer: response stream entries written in order by a thread of their own, in pipelines.

A model streams its chunks faster than Redis answers one write per chunk, and the turn should not
wait for those round trips: `write` queues an entry and returns, and one thread per writer writes
whatever has queued, in order, as one pipeline. Each stream's entries are numbered (`seq`) as they
are written, continuing from the stream's length the first time this process writes to it (an
earlier attempt, in another process, may have written before). The entry that ends a stream is
written with `wait=True`: it returns once that entry, and so every entry queued before it, is in
Redis, or raises why it is not.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import weakref
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

#: A writer's thread exits after this long with nothing to write; the next write starts another.
IDLE_SECONDS = 2.0
#: Entries written in one pipeline at most.
MAX_BATCH = 500
#: How long `write(..., wait=True)` waits for Redis before it gives up.
WAIT_SECONDS = 30.0
#: Entries queued at most; a writer that falls this far behind makes its callers wait.
MAX_QUEUED = 10_000


@dataclass
class _Entry:
    key: str
    fields: dict[str, Any]
    expire: int | None  # seconds to set on the stream with this entry, if any
    final: bool
    done: threading.Event | None = None
    error: BaseException | None = None


class StreamWriter:
    """Writes response stream entries through `redis` (a redis-py client or the in-process streams)."""

    def __init__(self, redis: Any) -> None:
        self._redis = redis
        self._reset()
        _writers.add(self)

    def _reset(self) -> None:
        # Also in a forked child: the parent's thread, queue and lock are not the child's to use.
        self._lock = threading.Lock()
        self._queue: queue.Queue[_Entry] = queue.Queue(MAX_QUEUED)
        self._thread: threading.Thread | None = None
        self._next_seq: dict[str, int] = {}  # only the writer's thread touches it

    def write(
        self, key: str, fields: dict[str, Any], *, expire: int | None = None, final: bool = False, wait: bool = False
    ) -> None:
        """Queue an entry for stream `key`; with `wait`, return once it is written (or raise why not).
        `final` ends the stream: a later entry numbers itself from the stream's length again."""
        entry = _Entry(key, fields, expire, final, threading.Event() if wait else None)
        with self._lock:
            self._queue.put(entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="durable-agents-streams", daemon=True)
                self._thread.start()
        if entry.done is None:
            return
        if not entry.done.wait(WAIT_SECONDS):
            raise TimeoutError(f"Redis did not take the entry for stream {key!r} within {WAIT_SECONDS:g}s")
        if entry.error is not None:
            raise entry.error

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self._lock:  # a write queues under the lock: none can slip in unseen here
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._write(batch)

    def _write(self, batch: list[_Entry]) -> None:
        try:
            unnumbered = list(dict.fromkeys(e.key for e in batch if e.key not in self._next_seq))
            if unnumbered:
                lengths = self._redis.pipeline()
                for key in unnumbered:
                    lengths.xlen(key)
                self._next_seq.update(zip(unnumbered, lengths.execute(), strict=True))
            pipe = self._redis.pipeline()
            for entry in batch:
                pipe.xadd(entry.key, {**entry.fields, "seq": self._next_seq[entry.key]})
                self._next_seq[entry.key] += 1
                if entry.expire is not None:
                    pipe.expire(entry.key, entry.expire)
            pipe.execute()
            for entry in batch:
                if entry.final:
                    self._next_seq.pop(entry.key, None)
        except Exception as error:
            for entry in batch:
                self._next_seq.pop(entry.key, None)  # renumber from what Redis holds next time
                entry.error = error
            if not any(entry.done for entry in batch):
                log.warning("writing %d stream entries to Redis failed; they are lost", len(batch), exc_info=True)
        finally:
            for entry in batch:
                if entry.done is not None:
                    entry.done.set()


_writers: weakref.WeakSet[StreamWriter] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for writer in list(_writers):
        writer._reset()


os.register_at_fork(after_in_child=_after_fork_in_child)
