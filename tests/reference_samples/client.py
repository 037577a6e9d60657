import asyncio

from durable_agents import DurableAIAgentClient, DurableClient

async def main():
    # Create DurableTask client
    dts_client = DurableClient()

    # Wrap with agent client
    agent_client = DurableAIAgentClient(dts_client)
    agent = agent_client.get_agent("Assistant")

    # Run agent
    response = await agent.run("What is machine learning?")
    print(f"Response: {response.text}")

asyncio.run(main())
