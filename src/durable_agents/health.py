"""The worker healthcheck: a live worker of the task hub on this host, and none of its processes hung."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from .config import Settings
from .store import holders, workers
from .store.db import single_statement


@dataclass(frozen=True)
class Health:
    healthy: bool
    #: One line: what was checked, or what is wrong and what to do.
    message: str


def worker_health(settings: Settings, host: str | None = None) -> Health:
    """Healthy while a worker of the task hub runs on `host` (this machine or container) and heartbeats,
    and none of its processes (the worker, its pool children) is hung: alive, yet silent past the lease
    holder timeout. A process goes silent when all its threads stop (a C call holding the interpreter, a
    deadlock, SIGSTOP) or when an activity ignores the interrupt of its timeout; the worker's own
    heartbeat, sent by its main process, cannot tell."""
    host = host or socket.gethostname()
    with single_statement(settings.database_url) as session:
        live = [w for w in workers.listing(session, settings.taskhub) if w.host == host and w.live]
        silent = holders.silent_processes(session, settings.taskhub, host, settings.lease_holder_timeout)
    if not live:
        return Health(
            False,
            f"no live worker of task hub {settings.taskhub!r} on host {host!r}: start one, or check that it "
            "reaches the database and uses the same TASKHUB",
        )
    pids = {w.pid for w in live}
    hung = sorted(
        pid
        for pid, parent, last_beat in silent
        if pid in pids or (parent in pids and _running_under(pid, parent, last_beat.timestamp()))
    )
    if hung:
        return Health(
            False,
            f"worker process{'es' if len(hung) > 1 else ''} {', '.join(map(str, hung))} on {host!r} "
            f"{'are' if len(hung) > 1 else 'is'} alive but silent for over {settings.lease_holder_timeout:g}s "
            "(hung); restart the worker",
        )
    return Health(True, f"{len(live)} live worker{'s' if len(live) > 1 else ''} on {host!r}, no hung process")


def _running_under(pid: int, parent: int, last_beat: float) -> bool:
    """Whether `pid` is alive, still the child of `parent`, and the process that sent `last_beat` (not a
    new one under a reused pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's: nothing more to learn
    try:
        with open(f"/proc/{pid}/stat") as stat:
            # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ')'.
            fields = stat.read().rsplit(")", 1)[1].split()
        with open("/proc/stat") as system:
            booted = next(float(line.split()[1]) for line in system if line.startswith("btime "))
    except (OSError, StopIteration):
        return True  # no /proc (macOS): alive is all we know
    started = booted + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return fields[0] != "Z" and int(fields[1]) == parent and started <= last_beat + 1
