import os

from durable_agents import DurableAIAgentWorker, DurableApp, OpenAIChatClient

# Create agent
agent = OpenAIChatClient(model="test-model", api_key="not-needed", base_url=os.environ["MODEL_SERVER_URL"]).as_agent(
    name="Joker",
    instructions="You are good at telling jokes."
)

# Setup worker
dts_worker = DurableApp()

agent_worker = DurableAIAgentWorker(dts_worker)
agent_worker.add_agent(agent)

print("Worker ready. Waiting for requests...")
dts_worker.start()
