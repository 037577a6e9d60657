"""Reliable streaming: agent replies in Redis Streams, read by cursor, surviving disconnects and crashes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis

from durable_agents import AgentRunError, DurableAgentClient
from durable_agents.errors import StreamNotFoundError
from durable_agents.streaming import StreamChunk, stream_key
from durable_agents.testing import TestModelServer

from conftest import Services, client_for, new_taskhub, run_cli, start_agents_worker, wait_until

WORDS = " ".join(f"word{i}" for i in range(12))


async def collect(stream: AsyncIterator[StreamChunk], limit: int | None = None) -> list[StreamChunk]:
    chunks: list[StreamChunk] = []
    async for chunk in stream:
        chunks.append(chunk)
        if limit is not None and len(chunks) == limit:
            break
    return chunks


pytestmark = pytest.mark.usefixtures("fresh_model")


def text_of(chunks: list[StreamChunk]) -> str:
    """The reply as a reader shows it: what follows the last restart marker."""
    starts = [i for i, c in enumerate(chunks) if c.kind == "restart"]
    return "".join(c.text for c in chunks[(starts[-1] + 1 if starts else 0) :] if c.kind == "chunk")


def test_a_reader_resumes_from_its_cursor_without_gap_or_duplicate(
    agents: DurableAgentClient, model_server: TestModelServer
) -> None:
    model_server.control.add_rule(reply={"content": WORDS, "chunk_delay_ms": 20})
    joker = agents.get_agent("Joker")
    correlation_id = joker.run_sync("Stream to me", session=joker.create_session(), wait_for_response=False)

    first = asyncio.run(collect(agents.stream(correlation_id), limit=4))
    rest = asyncio.run(collect(agents.stream(correlation_id, cursor=first[-1].cursor)))

    chunks = first + rest
    assert [c.seq for c in chunks] == list(range(len(chunks)))  # in order, none twice, none missing
    assert chunks[-1].kind == "complete" and all(c.kind == "chunk" for c in chunks[:-1])
    assert text_of(chunks) == WORDS == joker.wait(correlation_id).text
    assert len(chunks) == 13  # one chunk a word, then the completion


def test_readers_agree_and_a_late_reader_gets_the_whole_answer(
    agents: DurableAgentClient, model_server: TestModelServer
) -> None:
    model_server.control.add_rule(reply={"content": WORDS, "chunk_delay_ms": 10})
    joker = agents.get_agent("Joker")
    correlation_id = joker.run_sync("Two readers", session=joker.create_session(), wait_for_response=False)

    async def two_readers() -> tuple[list[StreamChunk], list[StreamChunk]]:
        one, two = await asyncio.gather(collect(agents.stream(correlation_id)), collect(agents.stream(correlation_id)))
        return one, two

    one, two = asyncio.run(two_readers())
    late = asyncio.run(collect(agents.stream(correlation_id)))
    assert [(c.cursor, c.text) for c in one] == [(c.cursor, c.text) for c in two] == [(c.cursor, c.text) for c in late]
    assert text_of(late) == WORDS


def test_run_with_stream_true_returns_the_iterator(agents: DurableAgentClient) -> None:
    async def streamed() -> list[StreamChunk]:
        joker = agents.get_agent("Joker")
        return await collect(await joker.run("Stream it", session=joker.create_session(), stream=True))

    assert text_of(asyncio.run(streamed())) == "Reply to: Stream it (turn 1)"


def test_stream_ttl_applies_after_completion_and_hubs_are_isolated(
    services: Services, agents: DurableAgentClient, model_server: TestModelServer
) -> None:
    model_server.control.add_rule(reply={"content": WORDS, "chunk_delay_ms": 30})
    joker = agents.get_agent("Joker")
    correlation_id = joker.run_sync("Expire me", session=joker.create_session(), wait_for_response=False)
    broker = redis.Redis.from_url(services.redis_url)
    key = stream_key("durable_agents", agents.taskhub, correlation_id)
    first = asyncio.run(collect(agents.stream(correlation_id), limit=1))
    assert first and broker.ttl(key) > 3600  # in progress: kept long enough to finish
    joker.wait(correlation_id)
    assert 0 < broker.ttl(key) <= 3600  # complete: the configured TTL

    other = DurableAgentClient(client_for(services, new_taskhub("elsewhere")))
    with pytest.raises(StreamNotFoundError, match="unknown in this task hub"):
        asyncio.run(collect(other.stream(correlation_id, start_timeout=0.5)))


def test_a_failed_turn_ends_the_stream_with_its_error(
    agents: DurableAgentClient, model_server: TestModelServer
) -> None:
    model_server.control.inject({"kind": "server_error", "status": 400, "repeat": True, "message": "no such model"})
    joker = agents.get_agent("Joker")
    correlation_id = joker.run_sync("Fail me", session=joker.create_session(), wait_for_response=False)
    with pytest.raises(AgentRunError, match="HTTP 400"):
        asyncio.run(collect(agents.stream(correlation_id)))


def test_a_dropped_model_stream_is_retried_behind_a_restart_marker(
    agents: DurableAgentClient, model_server: TestModelServer
) -> None:
    model_server.control.inject({"kind": "disconnect", "after_chunks": 3})
    joker = agents.get_agent("Joker")
    correlation_id = joker.run_sync("Interrupted", session=joker.create_session(), wait_for_response=False)
    chunks = asyncio.run(collect(agents.stream(correlation_id)))
    kinds = [c.kind for c in chunks]
    assert kinds[:4] == ["chunk", "chunk", "chunk", "restart"] and kinds[-1] == "complete"
    assert text_of(chunks) == "Reply to: Interrupted (turn 1)" == joker.wait(correlation_id).text


def test_sigkill_mid_stream_shows_a_restart_then_the_whole_answer(
    services: Services, effects_dir: Path, model_server: TestModelServer
) -> None:
    model_server.control.add_rule(reply={"content": WORDS, "chunk_delay_ms": 400}, times=1)
    model_server.control.add_rule(reply={"content": WORDS})
    hub = new_taskhub("streamcrash")
    doomed = start_agents_worker(services, effects_dir, model_server, hub).start()
    agents = DurableAgentClient(client_for(services, hub))
    joker = agents.get_agent("Joker")
    correlation_id = joker.run_sync("Survive this", wait_for_response=False)
    before = asyncio.run(collect(agents.stream(correlation_id), limit=2))
    doomed.kill()
    survivor = start_agents_worker(services, effects_dir, model_server, hub).start()
    try:
        after = asyncio.run(collect(agents.stream(correlation_id, cursor=before[-1].cursor)))
        final = joker.wait(correlation_id).text
    finally:
        survivor.stop()
    chunks = before + after
    assert "restart" in [c.kind for c in after]
    assert text_of(chunks) == WORDS == final
    assert [c.seq for c in chunks] == list(range(len(chunks)))


def test_callbacks_hear_chunks_and_responses_and_a_broken_one_is_harmless(
    agents: DurableAgentClient, effects_dir: Path
) -> None:
    joker = agents.get_agent("Joker")
    session = joker.create_session()
    correlation_id = joker.run_sync("Call me back", session=session, wait_for_response=False)
    response = joker.wait(correlation_id)  # the broken callback did not break the turn
    assert (effects_dir / f"chunks-{correlation_id}").read_text() == response.text
    assert (effects_dir / f"response-{correlation_id}").read_text() == f"Joker|{session.key}|{response.text}"
    wait_until(lambda: (effects_dir / f"iterated-{correlation_id}").exists(), message="the async-iterator callback")
    assert (effects_dir / f"iterated-{correlation_id}").read_text() == response.text
    # Async hooks, registered for the Joker only, heard every chunk in order and the response.
    assert (effects_dir / f"async-chunks-{correlation_id}").read_text() == response.text
    assert (effects_dir / f"async-response-{correlation_id}").read_text() == response.text


def test_cli_follows_a_stream(services: Services, agents: DurableAgentClient) -> None:
    joker = agents.get_agent("Joker")
    correlation_id = joker.run_sync("Print me", session=joker.create_session(), wait_for_response=False)
    env = {"DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url, "TASKHUB": agents.taskhub}
    result = run_cli("stream", correlation_id, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Reply to: Print me (turn 1)"


def test_the_writer_keeps_each_streams_order_and_numbers_on_from_what_the_stream_holds(services: Services) -> None:
    from durable_agents.agents.callbacks import AgentCallbackContext
    from durable_agents.streaming import RedisStreamCallback

    hub = new_taskhub("writer")
    writer = RedisStreamCallback(services.redis_url)
    first, second = (AgentCallbackContext(hub, "Joker", "s", name, None, 1) for name in ("first", "second"))
    raw = redis.Redis.from_url(services.redis_url, decode_responses=True)
    raw.xadd(stream_key("durable_agents", hub, "second"), {"type": "chunk", "text": "earlier", "seq": 0})
    for i in range(300):  # queued faster than Redis answers: written in pipelines, interleaved
        writer.on_chunk(first, f"a{i} ")
        writer.on_chunk(second, f"b{i} ")
    writer.on_response(first, {})
    writer.on_error(second, {"error_type": "ValueError", "message": "no"})

    for name, expected in (
        ("first", [f"a{i} " for i in range(300)]),
        ("second", ["earlier", *[f"b{i} " for i in range(300)]]),
    ):
        entries = [fields for _, fields in raw.xrange(stream_key("durable_agents", hub, name))]
        assert [e["text"] for e in entries if e["type"] == "chunk"] == expected
        assert [int(e["seq"]) for e in entries] == list(range(len(entries)))  # on from what another wrote
    assert raw.xrange(stream_key("durable_agents", hub, "first"))[-1][1]["type"] == "complete"
    assert raw.xrange(stream_key("durable_agents", hub, "second"))[-1][1]["type"] == "error"
