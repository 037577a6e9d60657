"""The HTTP API: `create_app()` serves it (`durable-agents api`), `router()` mounts it into your FastAPI app."""

from .app import create_app, router

__all__ = ["create_app", "router"]
