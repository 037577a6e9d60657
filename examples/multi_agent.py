"""Multiple agents: a Physicist and a Chemist hosted by one worker, each asked a question of its field.

Run it in one process (embedded mode: a SQLite file in the working directory, the worker a thread of
this program, no services):

    python examples/multi_agent.py

Or with Postgres and Redis, worker and client as separate processes (in examples/, both terminals
with the same DATABASE_URL and REDIS_URL, after `durable-agents db upgrade`):

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        durable-agents worker multi_agent:app
    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        python multi_agent.py

Each agent answers in its default session, which lives on: run it again and the agents remember the
first run. With OPENAI_API_KEY (or AZURE_OPENAI_ENDPOINT) set the agents are a real model; without,
the bundled test model answers with scripted echoes.
"""

from __future__ import annotations

import asyncio

from durable_agents import DurableAgentClient, DurableApp, DurableClient, chat_client_from_env

# -- worker: two specialised agents, hosted by one app --------------------------------------------

client = chat_client_from_env()

physicist = client.as_agent(name="Physicist", instructions="You are a physicist expert. Answer physics questions.")

chemist = client.as_agent(name="Chemist", instructions="You are a chemistry expert. Answer chemistry questions.")

app = DurableApp(agents=[physicist, chemist])


# -- client ---------------------------------------------------------------------------------------


async def main() -> None:
    agent_client = DurableAgentClient(DurableClient(app))
    print(f"Registered agents: {', '.join(app.agents)}")

    # Get specific agents
    physicist = agent_client.get_agent("Physicist")
    chemist = agent_client.get_agent("Chemist")

    # Query different agents
    physics_answer = await physicist.run("Explain quantum entanglement")
    chemistry_answer = await chemist.run("Explain chemical bonds")

    print(f"Physicist: {physics_answer.text}")
    print(f"Chemist: {chemistry_answer.text}")


if __name__ == "__main__":
    asyncio.run(main())
