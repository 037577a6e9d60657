"""Reliable streaming: the Storyteller's reply streams chunk by chunk; the reader disconnects after a
few chunks, then resumes from its cursor and gets the rest exactly once, in order.

Run it in one process (embedded mode: a SQLite file in the working directory, the worker a thread of
this program, the stream in memory, no services):

    python examples/reliable_streaming.py

Or with Postgres and Redis (the stream is then a Redis Stream that any process can read), worker and
client as separate processes (in examples/, both terminals with the same DATABASE_URL and REDIS_URL,
after `durable-agents db upgrade`):

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        durable-agents worker reliable_streaming:app
    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        python reliable_streaming.py

With OPENAI_API_KEY (or AZURE_OPENAI_ENDPOINT) set the agent is a real model; without, the bundled
test model is told below to stream a short story.
"""

from __future__ import annotations

import asyncio
from contextlib import aclosing

from durable_agents import DurableAgentClient, DurableApp, DurableClient, chat_client_from_env
from durable_agents.agents.environment import is_offline, offline_model_server

#: Chunks the reader takes before it disconnects.
FIRST_CHUNKS = 8

# -- worker: the agent ----------------------------------------------------------------------------

chat = chat_client_from_env()
storyteller = chat.as_agent(name="Storyteller", instructions="You tell very short stories.")

app = DurableApp(agents=[storyteller])

if is_offline(chat):
    # A story, streamed word by word at a speaking pace, as a real model would.
    offline_model_server().control.add_rule(
        match={"system_contains": "short stories"},
        reply={
            "content": "The lighthouse keeper wrote every passing ship into a ledger. One stormy night a ship "
            "sailed past that was already in it, dated a hundred years before. He lit the lamp anyway.",
            "chunk_delay_ms": 20,
        },
    )


# -- client ---------------------------------------------------------------------------------------


async def main() -> None:
    agent_client = DurableAgentClient(DurableClient(app))
    teller = agent_client.get_agent("Storyteller")

    correlation_id = await teller.run("Tell me a story about a lighthouse", wait_for_response=False)
    print(f"Asked the Storyteller for a story: correlation id {correlation_id}")

    # Read the first chunks as they are generated, then disconnect.
    cursor = "0"
    first_part = ""
    async with aclosing(agent_client.stream(correlation_id, cursor=cursor)) as stream:
        count = 0
        async for chunk in stream:
            if chunk.kind == "restart":  # a crashed attempt was retried: what came before is void
                first_part = ""
            first_part += chunk.text
            cursor = chunk.cursor
            count += 1
            if count == FIRST_CHUNKS:
                break
    print(f"Read {FIRST_CHUNKS} chunks, then disconnected: {first_part!r}")

    # Resume from the cursor: every later chunk, none of the earlier ones.
    rest = ""
    async for chunk in agent_client.stream(correlation_id, cursor=cursor):
        if chunk.kind == "restart":
            print("[the turn restarted: the text so far is void]")
            first_part, rest = "", ""
        rest += chunk.text
    print(f"Resumed from cursor {cursor}: {rest!r}")

    response = await asyncio.to_thread(teller.wait, correlation_id)
    print(f"Story: {first_part + rest}")
    print(f"Streamed text equals the stored response: {first_part + rest == response.text}")


if __name__ == "__main__":
    asyncio.run(main())
