"""Postgres access: engines and sessions, the schema check, and every query the engine runs."""
