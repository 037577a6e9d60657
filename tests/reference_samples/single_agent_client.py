import asyncio

from durable_agents import DurableAIAgentClient, DurableClient

async def main():
    dts_client = DurableClient()

    agent_client = DurableAIAgentClient(dts_client)
    joker = agent_client.get_agent("Joker")

    # Multi-turn conversation with persistent state
    response1 = await joker.run("Tell me a joke about clouds")
    print(f"Joke 1: {response1.text}")

    response2 = await joker.run("Tell me another one")
    print(f"Joke 2: {response2.text}")

asyncio.run(main())
