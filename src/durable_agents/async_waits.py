"""What asyncio clients do without a thread per call in flight: short store calls on a small shared pool,
and waits for instances on the process's one notification listener.

`await agent.run(...)` used to hold a thread for its whole turn (`asyncio.to_thread`), so one client had
as many turns in flight as the default executor had threads. Here a turn holds a pool thread only while
it writes its request and while it reads a state it was told had changed; in between it is a coroutine
waiting on an asyncio.Event, which the listener thread sets.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import InstanceNotFoundError, WaitTimeoutError
from .failures import service_failure
from .state import OrchestrationState
from .store.listener import async_instance_changes

if TYPE_CHECKING:
    from .client import DurableClient

T = TypeVar("T")

#: Threads of the pool that runs asyncio clients' store calls (each lasts milliseconds).
IO_THREADS = 16
#: How long a wait pauses before it reads the state again after the database did not answer.
WAIT_RETRY_SECONDS = 0.5

_pool: ThreadPoolExecutor | None = None
_pool_pid = 0
_pool_lock = threading.Lock()


def io_pool() -> ThreadPoolExecutor:
    """The pool of this process (a forked child makes its own)."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(IO_THREADS, thread_name_prefix="durable-agents-io")
            _pool_pid = os.getpid()
        return _pool


async def in_io_thread(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a short blocking store or broker call on the shared pool."""
    return await asyncio.get_running_loop().run_in_executor(io_pool(), functools.partial(function, *args, **kwargs))


async def wait_for_state(
    client: DurableClient,
    instance_id: str,
    done: Callable[[OrchestrationState], bool],
    timeout: float,
    what: str,
    missing_ok: bool = False,
    *,
    changes: Callable[[float], Awaitable[str | None]] | None = None,
    done_status: Callable[[str], bool] | None = None,
) -> OrchestrationState:
    """`DurableClient._wait` as a coroutine: the state once `done` holds for it, read after each change.

    `changes` is a wait from `async_instance_changes` entered before the instance could change: the
    first read then waits for the first change, instead of reading a state known to be too early.
    `done_status`: whether `done` can hold in a status; a change whose notification tells a status it
    cannot hold in is not read (a turn's start and first step, for a wait for its end)."""
    deadline = asyncio.get_running_loop().time() + timeout
    if changes is not None:
        await _relevant_change(changes, deadline, done_status)
        return await _read_until(client, instance_id, done, deadline, timeout, what, missing_ok, changes, done_status)
    async with async_instance_changes(client.settings.database_url, client.taskhub, instance_id) as changed:
        return await _read_until(client, instance_id, done, deadline, timeout, what, missing_ok, changed, done_status)


async def _relevant_change(
    changed: Callable[[float], Awaitable[str | None]], deadline: float, done_status: Callable[[str], bool] | None
) -> None:
    """Wait for a change after which a read may find what the wait wants (or until the deadline)."""
    loop = asyncio.get_running_loop()
    while (remaining := deadline - loop.time()) > 0:
        status = await changed(remaining)
        if status is None or done_status is None or done_status(status):
            return


async def _read_until(
    client: DurableClient,
    instance_id: str,
    done: Callable[[OrchestrationState], bool],
    deadline: float,
    timeout: float,
    what: str,
    missing_ok: bool,
    changed: Callable[[float], Awaitable[str | None]],
    done_status: Callable[[str], bool] | None,
) -> OrchestrationState:
    loop = asyncio.get_running_loop()
    while True:
        try:
            state = await in_io_thread(client.get_orchestration_state, instance_id)
        except Exception as error:
            # A read is safe to repeat: a database blip costs the wait a retry, until the deadline.
            failure = service_failure(error)
            if failure is None or not failure.unreachable or loop.time() >= deadline:
                raise
            await asyncio.sleep(min(WAIT_RETRY_SECONDS, max(0.0, deadline - loop.time())))
            continue
        if state is None and not missing_ok:
            raise InstanceNotFoundError(instance_id, client.taskhub)
        if state is not None and done(state):
            return state
        remaining = deadline - loop.time()
        if remaining <= 0:
            status = state.runtime_status if state is not None else "not created yet"
            raise WaitTimeoutError(
                f"instance {instance_id!r} did not {what} within {timeout:g}s (it is {status}); "
                "the instance is unaffected, wait again or check that a worker serves this task hub"
            )
        await _relevant_change(changed, deadline, done_status)
