"""The app the streaming benchmark's worker serves: one agent on the bundled test model."""

from __future__ import annotations

import os

from durable_agents import DurableApp, OpenAIChatClient

chat = OpenAIChatClient(model="bench", api_key="bench", base_url=os.environ.get("MODEL_SERVER_URL"))
app = DurableApp(agents=[chat.as_agent(name="Streamer", instructions="You talk a lot.")])
