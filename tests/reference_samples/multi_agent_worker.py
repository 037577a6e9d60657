import os

from durable_agents import DurableAIAgentWorker, DurableApp, OpenAIChatClient

client = OpenAIChatClient(model="test-model", api_key="not-needed", base_url=os.environ["MODEL_SERVER_URL"])

# Create specialized agents
physicist = client.as_agent(
    name="Physicist",
    instructions="You are a physicist expert. Answer physics questions."
)

chemist = client.as_agent(
    name="Chemist",
    instructions="You are a chemistry expert. Answer chemistry questions."
)

# Register all agents
dts_worker = DurableApp()

agent_worker = DurableAIAgentWorker(dts_worker)
agent_worker.add_agent(physicist)
agent_worker.add_agent(chemist)

print(f"Registered agents: {physicist.name}, {chemist.name}")
dts_worker.start()
