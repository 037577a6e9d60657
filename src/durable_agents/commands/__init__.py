"""The command groups of the `durable-agents` command line; `durable_agents.cli` assembles them."""
