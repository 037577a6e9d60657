"""Single agent, multi-turn: the Joker tells two jokes in one durable session, and remembers the first.

Run it in one process (embedded mode: a SQLite file in the working directory, the worker a thread of
this program, no services):

    python examples/single_agent.py

Or with Postgres and Redis, worker and client as separate processes (in examples/, both terminals
with the same DATABASE_URL and REDIS_URL, after `durable-agents db upgrade`):

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        durable-agents worker single_agent:app
    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        python single_agent.py

With OPENAI_API_KEY (or AZURE_OPENAI_ENDPOINT) set the agent is a real model; without, the bundled
test model answers with scripted echoes.
"""

from __future__ import annotations

import asyncio

from durable_agents import DurableAgentClient, DurableApp, DurableClient, chat_client_from_env

# -- worker: the agent, hosted by the app ---------------------------------------------------------

agent = chat_client_from_env().as_agent(name="Joker", instructions="You are good at telling jokes.")

app = DurableApp(agents=[agent])


# -- client ---------------------------------------------------------------------------------------


async def main() -> None:
    agent_client = DurableAgentClient(DurableClient(app))
    joker = agent_client.get_agent("Joker")
    session = joker.create_session()  # a new conversation each run; omit session= for the default one

    # Multi-turn conversation with persistent state
    response1 = await joker.run("Tell me a joke about clouds", session=session)
    print(f"Joke 1: {response1.text}")

    response2 = await joker.run("Tell me another one", session=session)
    print(f"Joke 2: {response2.text}")

    info = agent_client.get_session("Joker", session)
    print(f"Session {session}: {info.turn_count} turns, {info.message_count} messages stored")


if __name__ == "__main__":
    asyncio.run(main())
