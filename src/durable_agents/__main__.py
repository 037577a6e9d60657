"""`python -m durable_agents` runs the command line."""

from .cli import main

main()
