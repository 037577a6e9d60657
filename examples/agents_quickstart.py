"""Agents, offline: a worker hosting two agents, the bundled test model, a multi-turn chat and an orchestration.

    durable-agents db upgrade
    python examples/agents_quickstart.py

With OPENAI_API_KEY set, the same agents talk to OpenAI instead of the bundled test model.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from durable_agents import DurableAgentClient, DurableApp, DurableClient, OpenAIChatClient
from durable_agents.testing import TestModelServer

chat = OpenAIChatClient(
    base_url=os.environ.get("MODEL_SERVER_URL"), api_key=os.environ.get("OPENAI_API_KEY", "offline")
)
joker = chat.as_agent(name="Joker", instructions="You are good at telling jokes.")
writer = chat.as_agent(name="WriterAgent", instructions="You refine text.")
app = DurableApp(agents=[joker, writer])


@app.orchestration
def writer_orchestration(context):  # type: ignore[no-untyped-def]
    writer = app.get_agent(context, "WriterAgent")
    session = writer.create_session()
    initial = yield writer.run(messages="Write a sentence about learning.", session=session)
    refined = yield writer.run(messages=f"Improve this: {initial.text}", session=session)
    return refined.text


async def chat_with_joker(client: DurableClient) -> None:
    joker = DurableAgentClient(client).get_agent("Joker")
    session = joker.create_session()
    print("Joke 1:", (await joker.run("Tell me a joke about clouds", session=session)).text)
    print("Joke 2:", (await joker.run("Tell me another one", session=session)).text)


def main() -> None:
    server = None
    if "OPENAI_API_KEY" not in os.environ and "MODEL_SERVER_URL" not in os.environ:
        server = TestModelServer().start()  # no API key: answer with the bundled test model
        os.environ["MODEL_SERVER_URL"] = server.url
        print(f"No OPENAI_API_KEY: using the bundled test model at {server.url}")
    worker = subprocess.Popen(
        [sys.executable, "-m", "durable_agents", "worker", "agents_quickstart:app", "--pool", "threads", "-c", "8"],
        cwd=Path(__file__).parent,
    )
    try:
        client = DurableClient(app)
        asyncio.run(chat_with_joker(client))
        instance_id = client.schedule_new_orchestration(writer_orchestration)
        print("Writer:", client.wait_for_orchestration_completion(instance_id, timeout=120).output)
    finally:
        worker.terminate()
        worker.wait()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
