"""The step driver: replays an instance with its new events and has the store write what it decided."""
