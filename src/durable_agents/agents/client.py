"""Agents from outside an orchestration: `DurableAgentClient(client).get_agent(name).run(...)`, and sessions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from .. import ids
from ..async_waits import in_io_thread, wait_for_state
from ..connections import redis_client, redis_ssl_options
from ..errors import AgentNotRegisteredError, AgentRunError, FailureDetails
from ..serialization import encode
from ..state import TERMINAL, OrchestrationState, OrchestrationStatus
from ..store import instances, sessions, turns
from ..store.db import single_statement, transaction
from ..store.listener import async_instance_changes
from ..store.sessions import SessionInfo
from ..streaming.local_stream import LOCAL_URL, local_streams
from ..streaming.redis_stream import StreamChunk, read_stream, stream_key
from ..tasks import names
from ..tasks.dispatch import wake
from ..telemetry.tracing import current_traceparent
from . import observe
from .proxy import AGENT_TURN, DEFAULT_SESSION, session_entity, turn_input, turn_request
from .response import AgentResponse, AgentSession

if TYPE_CHECKING:
    from ..client import AsyncDurableClient, DurableClient


class DurableAgentClient:
    """Runs agents hosted by workers, and reads and manages their sessions."""

    def __init__(self, client: DurableClient | AsyncDurableClient) -> None:
        from ..client import AsyncDurableClient

        self.client: DurableClient = client.sync if isinstance(client, AsyncDurableClient) else client
        self.taskhub = self.client.taskhub

    def get_agent(self, name: str) -> AgentProxy:
        known = self.client.app.agents
        if known and name not in known:
            raise AgentNotRegisteredError(name, list(known))
        return AgentProxy(self, name)

    # -- sessions ----------------------------------------------------------------------------

    def get_session(self, agent: str, session: AgentSession | str = DEFAULT_SESSION) -> SessionInfo:
        """The session's counters and its whole conversation."""
        with transaction(self.client.settings.database_url) as db:
            return sessions.get(db, self.taskhub, agent, str(session))

    def list_sessions(self, agent: str | None = None, *, limit: int = 100, offset: int = 0) -> list[SessionInfo]:
        with transaction(self.client.settings.database_url) as db:
            return sessions.list_sessions(db, self.taskhub, agent, limit, offset)

    def reset_session(self, agent: str, session: AgentSession | str = DEFAULT_SESSION) -> None:
        """Forget the conversation; the next turn starts afresh."""
        with transaction(self.client.settings.database_url) as db:
            sessions.reset(db, self.taskhub, agent, str(session))

    def delete_session(self, agent: str, session: AgentSession | str = DEFAULT_SESSION) -> None:
        with transaction(self.client.settings.database_url) as db:
            sessions.delete_session(db, self.taskhub, agent, str(session))

    def idle_sessions(self, entity_ids: list[str]) -> set[str]:
        """Of these session entity instances (`@agent:...`), those waiting for their next turn with none
        under way or queued: RUNNING as instances, idle as conversations."""
        with single_statement(self.client.settings.database_url) as db:
            return set(entity_ids) - turns.busy_entities(db, self.taskhub, entity_ids)

    def usage_of_instance(self, instance_id: str) -> dict[str, int]:
        """Tokens spent by the agent turns an orchestration instance ran."""
        with transaction(self.client.settings.database_url) as db:
            return sessions.usage_of_instance(db, self.taskhub, instance_id)

    # -- streams -----------------------------------------------------------------------------

    def reply_exists(self, correlation_id: str) -> bool:
        """True if turn `correlation_id` was asked for (its reply may not have begun) or its reply's
        stream exists: a reader can then wait for it, where otherwise it would wait for nothing."""
        with single_statement(self.client.settings.database_url) as db:
            if turns.turn_known(db, self.taskhub, correlation_id):
                return True
        settings = self.client.settings
        key = stream_key(settings.queue_prefix, self.taskhub, correlation_id)
        if settings.redis_url == LOCAL_URL:  # embedded mode: the streams live in this process
            return bool(local_streams.exists(key))
        redis = redis_client(settings)
        try:
            return bool(redis.exists(key))
        finally:
            redis.close()

    def stream(
        self, correlation_id: str, *, cursor: str = "0", start_timeout: float = 30.0, idle_timeout: float = 300.0
    ) -> AsyncIterator[StreamChunk]:
        """The response of turn `correlation_id` as it streams: chunks (and restart markers) until it
        completes. Resume after a disconnect with `cursor=last_chunk.cursor`: no gap, no duplicate."""
        settings = self.client.settings
        key = stream_key(settings.queue_prefix, self.taskhub, correlation_id)
        return read_stream(
            settings.redis_url,
            key,
            cursor=cursor,
            start_timeout=start_timeout,
            idle_timeout=idle_timeout,
            connection_options=redis_ssl_options(settings, settings.redis_url),
        )


DurableAIAgentClient = DurableAgentClient


class AgentProxy:
    """One agent, as seen by a client: `await agent.run(...)` or `agent.run_sync(...)`."""

    def __init__(self, owner: DurableAgentClient, name: str) -> None:
        self._owner = owner
        self.name = name

    def create_session(self) -> AgentSession:
        return AgentSession(self.name, ids.new_session_key())

    async def run(
        self,
        message: Any,
        *,
        session: AgentSession | str | None = None,
        response_format: Any = None,
        wait_for_response: bool = True,
        timeout: float = 300.0,
        stream: bool = False,
    ) -> Any:
        """One turn. Returns an AgentResponse; the correlation id with `wait_for_response=False`; or,
        with `stream=True`, an async iterator of the reply's chunks as they are generated.

        No thread waits for the turn: the request is written on a small shared pool, and the wait is a
        coroutine woken by the process's notification listener, so one client can have hundreds of turns
        in flight."""
        correlation_id = ids.new_correlation_id()
        if stream or not wait_for_response:
            await in_io_thread(self._submit, message, session, response_format, correlation_id)
            return self._owner.stream(correlation_id, idle_timeout=timeout) if stream else correlation_id
        client = self._owner.client
        turn = ids.agent_turn_instance_id(correlation_id)
        # Listening before the request is written, so no change can slip past: the wait need not read the
        # turn before the listener says it changed.
        async with async_instance_changes(client.settings.database_url, client.taskhub, turn) as changes:
            await in_io_thread(self._submit, message, session, response_format, correlation_id)
            state = await wait_for_state(
                client,
                turn,
                lambda s: s.runtime_status.is_terminal,
                timeout,
                "finish",
                True,
                changes=changes,
                done_status=_ended,
            )
        return self._response(correlation_id, state, response_format)

    def run_sync(
        self,
        message: Any,
        *,
        session: AgentSession | str | None = None,
        response_format: Any = None,
        wait_for_response: bool = True,
        timeout: float = 300.0,
    ) -> Any:
        correlation_id = self._submit(message, session, response_format, ids.new_correlation_id())
        if not wait_for_response:
            return correlation_id
        return self.wait(correlation_id, response_format=response_format, timeout=timeout)

    def _submit(
        self, message: Any, session: AgentSession | str | None, response_format: Any, correlation_id: str
    ) -> str:
        """Start the turn (an instance of its own, which takes its session's lock when it runs) and wake it."""
        client = self._owner.client
        session_key = str(session) if session is not None else DEFAULT_SESSION
        request = turn_request(
            agent=self.name,
            session_key=session_key,
            messages=message,
            correlation_id=correlation_id,
            response_format=response_format,
            reply_to=None,
        )
        session_entity(self.name, session_key)  # a clear error now for a key no entity id could carry
        hosted = client.app.agents.get(self.name)
        settings = client.settings
        turn = ids.agent_turn_instance_id(correlation_id)
        start: dict[str, Any] = {
            "taskhub": client.taskhub,
            "instance_id": turn,
            "name": AGENT_TURN,
            "input": encode(
                turn_input(request, hosted.queue_role if hosted is not None else None),
                what=f"request of agent {self.name!r}",
                limit=settings.max_payload_bytes,
            ),
        }
        # The span covers handing the turn over (the client holds no span open while it waits); the
        # turn's own spans, in the workers, join its trace.
        with observe.invoke_agent(self.name, session_key) as current:
            current.set_attribute("durable.correlation_id", correlation_id)
            start["trace_parent"] = current_traceparent()
            with single_statement(settings.database_url) as db:
                started = instances.start_new(db, **start)
            if not started:
                with transaction(settings.database_url) as db:
                    instances.create(db, **start, start_at=None, reuse_id=False)
            names.remember(turn, AGENT_TURN, agent=self.name)  # its message shows as `agent:NAME` in Celery's tools
            wake(client.app, turn)
        return correlation_id

    def wait(self, correlation_id: str, *, response_format: Any = None, timeout: float = 300.0) -> AgentResponse:
        """The response of a turn started earlier (for example with `wait_for_response=False`)."""
        state = self._owner.client.wait_for_orchestration_completion(
            ids.agent_turn_instance_id(correlation_id), timeout=timeout, missing_ok=True
        )
        return self._response(correlation_id, state, response_format)

    async def wait_async(
        self, correlation_id: str, *, response_format: Any = None, timeout: float = 300.0
    ) -> AgentResponse:
        """`wait` as a coroutine that holds no thread while the turn runs."""
        state = await wait_for_state(
            self._owner.client,
            ids.agent_turn_instance_id(correlation_id),
            lambda s: s.runtime_status.is_terminal,
            timeout,
            "finish",
            missing_ok=True,
            done_status=_ended,
        )
        return self._response(correlation_id, state, response_format)

    def _response(self, correlation_id: str, state: OrchestrationState, response_format: Any) -> AgentResponse:
        if state.runtime_status != OrchestrationStatus.COMPLETED:
            details = state.failure_details or FailureDetails("TerminatedError", "the turn was terminated")
            raise AgentRunError(f"agent {self.name!r} could not answer (turn {correlation_id}): {details}", details)
        return AgentResponse.from_turn(state.output, response_format)


def _ended(status: str) -> bool:
    """Whether a turn in `status` has ended (a notification told it): only then is its state worth a read."""
    return status in TERMINAL
