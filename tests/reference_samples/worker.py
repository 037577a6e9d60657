import os

from durable_agents import DurableAIAgentWorker, DurableApp, OpenAIChatClient

# Create agent
agent = OpenAIChatClient(model="test-model", api_key="not-needed", base_url=os.environ["MODEL_SERVER_URL"]).as_agent(
    name="Assistant",
    instructions="You are a helpful assistant."
)

# Create DurableTask worker
dts_worker = DurableApp()

# Wrap with agent worker
agent_worker = DurableAIAgentWorker(dts_worker)
agent_worker.add_agent(agent)

# Start worker
print("Worker started. Press Ctrl+C to stop.")
dts_worker.start()
