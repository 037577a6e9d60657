"""Activity timeouts: a watchdog that ends an attempt past its start-to-close or heartbeat timeout and
takes its worker slot back.

How a slot comes back depends on where the attempt runs:

- In a process's main thread (a prefork child, the solo pool), the watchdog signals that thread and the
  handler raises into the call: a blocking `sleep`, socket read or lock wait is interrupted, the attempt
  fails with ActivityTimeoutError, and the same child serves its next task. Celery's own time limits
  are not used: they bound a Celery message, and one of ours may carry many activities (a drainer) or
  a step that runs its activity in place.
- Elsewhere (the threads pool, embedded mode) a thread cannot be interrupted, so a timed activity runs
  on a thread of its own that the pool's thread waits for: on timeout the pool's thread fails the
  attempt and serves its next task, and the hung call is abandoned (a pure-Python loop is also stopped
  by an exception raised into it at its next instruction).

A call that outlives the interrupt by `grace` seconds (it swallowed it, or a C call never returned)
leaves its process hung: the process stops heart-beating its lease holder, so the sweeper frees its
leases and the worker's healthcheck fails until a supervisor restarts it.
"""

from __future__ import annotations

import contextvars
import ctypes
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import ActivityTimeoutError
from ..registry import ActivitySpec

T = TypeVar("T")
log = logging.getLogger(__name__)

#: Raised into a timed-out call's main thread. SIGUSR1 is Celery's soft time limit; this one is free.
INTERRUPT_SIGNAL = signal.SIGUSR2


class _Interrupted(BaseException):
    """Raised into a timed-out call; not an Exception, so `except Exception` in the activity cannot keep
    it running."""


class Attempt:
    """One timed attempt of an activity: its deadlines and heartbeats."""

    def __init__(self, spec: ActivitySpec) -> None:
        self.spec = spec
        self.started = time.monotonic()
        self.beat_at = self.started
        self.details: Any = None
        self.timed_out: str | None = None  # why, once it has
        self.timed_out_at = 0.0
        self.hung = False
        self.finished = threading.Event()
        #: The thread a call aside runs on (None in the main thread).
        self.thread: threading.Thread | None = None
        self.in_main_thread = False

    def heartbeat(self, details: Any = None) -> None:
        self.beat_at = time.monotonic()
        if details is not None:
            self.details = details

    def due(self) -> float:
        """When it times out unless it finishes or beats first (monotonic)."""
        spec, due = self.spec, float("inf")
        if spec.start_to_close_timeout is not None:
            due = self.started + spec.start_to_close_timeout
        if spec.heartbeat_timeout is not None:
            due = min(due, self.beat_at + spec.heartbeat_timeout)
        return due

    def expire(self, now: float) -> None:
        spec = self.spec
        if spec.heartbeat_timeout is not None and now >= self.beat_at + spec.heartbeat_timeout:
            self.timed_out = f"sent no heartbeat for {spec.heartbeat_timeout:g}s (its heartbeat_timeout)"
        else:
            self.timed_out = f"ran past its start_to_close_timeout of {spec.start_to_close_timeout:g}s"
        self.timed_out_at = now

    def error(self) -> ActivityTimeoutError:
        last = "" if self.details is None else f"; its last heartbeat said {self.details!r}"
        return ActivityTimeoutError(
            f"activity {self.spec.name!r} {self.timed_out}{last}. Raise the timeout, heartbeat more often "
            "with context.heartbeat(), or give the call a retry policy"
        )


class Watchdog:
    """Times the activities of one process. `on_hung(True)` is called when a timed-out call outlives its
    interrupt by `grace` seconds, `on_hung(False)` once no such call is left."""

    def __init__(self, grace: float, on_hung: Callable[[bool], None]) -> None:
        self._grace = grace
        self._on_hung = on_hung
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._attempts: set[Attempt] = set()
        self._main_attempt: Attempt | None = None
        self._thread: threading.Thread | None = None
        self._signal_ready = False
        self.abandoned = 0

    def call(self, attempt: Attempt, fn: Callable[[], T]) -> T:
        """Run `fn` (the activity) under `attempt`'s timeouts; ActivityTimeoutError once it has timed out."""
        if threading.current_thread() is threading.main_thread():
            return self._call_in_place(attempt, fn)
        return self._call_aside(attempt, fn)

    def _call_in_place(self, attempt: Attempt, fn: Callable[[], T]) -> T:
        if not self._signal_ready:
            signal.signal(INTERRUPT_SIGNAL, self._on_signal)
            self._signal_ready = True
        attempt.in_main_thread = True
        self._main_attempt = attempt
        self._watch(attempt)
        try:
            try:
                value = fn()
                if attempt.timed_out is not None:
                    raise _Interrupted()  # it swallowed the interrupt: a late result is not taken
                return value
            finally:
                self._main_attempt = None  # from here on the signal's handler raises nothing
        except _Interrupted:  # also one that landed between the call's end and the line above
            raise attempt.error() from None
        finally:
            self._unwatch(attempt)

    def _call_aside(self, attempt: Attempt, fn: Callable[[], T]) -> T:
        outcome: dict[str, Any] = {}
        context = contextvars.copy_context()

        def run() -> None:
            try:
                outcome["value"] = context.run(fn)
            except BaseException as error:  # handed to the waiting thread, which raises it
                outcome["error"] = error
            finally:
                attempt.finished.set()

        attempt.thread = threading.Thread(target=run, name=f"activity {attempt.spec.name}", daemon=True)
        attempt.thread.start()
        self._watch(attempt)
        try:
            attempt.finished.wait()  # set by the call's end, or by the watchdog when it times out
        finally:
            self._unwatch(attempt)
        error = outcome.get("error")
        if "value" not in outcome and (error is None or isinstance(error, _Interrupted)):
            if error is None:
                self.abandoned += 1
                log.warning("abandoned the hung call of activity %r; its slot serves the next task", attempt.spec.name)
            raise attempt.error()
        if error is not None:
            raise error
        return outcome["value"]  # type: ignore[no-any-return]

    def _on_signal(self, signum: int, frame: Any) -> None:
        attempt = self._main_attempt
        if attempt is not None and attempt.timed_out is not None:
            raise _Interrupted()

    def _watch(self, attempt: Attempt) -> None:
        with self._cond:
            self._attempts.add(attempt)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="durable-agents-watchdog", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _unwatch(self, attempt: Attempt) -> None:
        with self._cond:
            self._attempts.discard(attempt)
            if attempt.hung and not any(other.hung for other in self._attempts):
                log.warning("the hung call of activity %r returned at last", attempt.spec.name)
                self._on_hung(False)

    def _run(self) -> None:
        with self._cond:
            while True:
                self._cond.wait(self._check(time.monotonic()))

    def _check(self, now: float) -> float | None:
        """Interrupt what is due; how long until the next check (None: until an attempt starts)."""
        waits = []
        for attempt in list(self._attempts):
            if attempt.timed_out is None:
                if now < attempt.due():
                    waits.append(attempt.due() - now)
                    continue
                attempt.expire(now)
                log.warning("activity %r %s: interrupting it", attempt.spec.name, attempt.timed_out)
            self._interrupt(attempt, now)
            if attempt.in_main_thread:
                waits.append(1.0)  # again, until it stops or its grace runs out
        return min(waits, default=None)

    def _interrupt(self, attempt: Attempt, now: float) -> None:
        if not attempt.in_main_thread:
            attempt.finished.set()  # the pool's thread moves on; the call is abandoned
            self._attempts.discard(attempt)
            thread = attempt.thread
            if thread is not None and thread.is_alive() and thread.ident is not None:
                # Stops a pure-Python loop at its next instruction; a blocking call sees it when it returns.
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(_Interrupted))
            return
        signal.pthread_kill(threading.main_thread().ident or 0, INTERRUPT_SIGNAL)
        if not attempt.hung and now - attempt.timed_out_at >= self._grace:
            attempt.hung = True
            log.error(
                "activity %r ignored its interrupt for %gs: this process is hung; it stops heart-beating so its "
                "leases go to other workers and its healthcheck fails",
                attempt.spec.name,
                self._grace,
            )
            self._on_hung(True)
