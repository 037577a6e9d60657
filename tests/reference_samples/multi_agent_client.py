import asyncio

from durable_agents import DurableAIAgentClient, DurableClient

async def main():
    dts_client = DurableClient()

    agent_client = DurableAIAgentClient(dts_client)

    # Get specific agents
    physicist = agent_client.get_agent("Physicist")
    chemist = agent_client.get_agent("Chemist")

    # Query different agents
    physics_answer = await physicist.run("Explain quantum entanglement")
    chemistry_answer = await chemist.run("Explain chemical bonds")

    print(f"Physicist: {physics_answer.text}")
    print(f"Chemist: {chemistry_answer.text}")

asyncio.run(main())
