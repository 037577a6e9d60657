"""The model the environment asks for: Azure OpenAI, OpenAI or a compatible server, else the bundled test model."""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from ..errors import ConfigurationError
from .chat_client import AzureOpenAIChatClient, ChatClient, OpenAIChatClient

_offline_server: Any = None
_offline_lock = threading.Lock()


def chat_client_from_env(*, max_concurrency: int | None = None, quiet: bool = False) -> ChatClient:
    """A chat client for whatever model the environment configures.

    - `AZURE_OPENAI_ENDPOINT` (with `AZURE_OPENAI_DEPLOYMENT_NAME`, and `AZURE_OPENAI_API_KEY` or an
      Entra ID login that `azure-identity` finds): Azure OpenAI.
    - `OPENAI_API_KEY` (with `OPENAI_BASE_URL` for a compatible server, `OPENAI_MODEL`): OpenAI.
    - Neither: the bundled OpenAI-compatible test model, started in this process, which answers with
      scripted echoes. It says so on stderr unless `quiet`.
    """
    if os.environ.get("AZURE_OPENAI_ENDPOINT"):
        credential = None if os.environ.get("AZURE_OPENAI_API_KEY") else _azure_credential()
        return AzureOpenAIChatClient(credential=credential, max_concurrency=max_concurrency)
    if os.environ.get("OPENAI_API_KEY"):
        return OpenAIChatClient(max_concurrency=max_concurrency)
    server = offline_model_server()
    if not quiet:
        print(
            f"durable-agents: no OPENAI_API_KEY or AZURE_OPENAI_ENDPOINT set, so agents answer with the bundled "
            f"test model at {server.url} (scripted replies, not a real AI).",
            file=sys.stderr,
            flush=True,
        )
    return OpenAIChatClient("test-model", api_key="offline", base_url=server.url, max_concurrency=max_concurrency)


def is_offline(client: ChatClient) -> bool:
    """Whether `client` talks to the bundled test model started by `chat_client_from_env`."""
    return _offline_server is not None and client.endpoint == _offline_server.url


def offline_model_server() -> Any:
    """The bundled test model of this process (a `TestModelServer`), started on first use."""
    global _offline_server
    with _offline_lock:
        if _offline_server is None:
            from ..testing import TestModelServer

            _offline_server = TestModelServer().start()
        return _offline_server


def _azure_credential() -> Any:
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError:
        raise ConfigurationError(
            "AZURE_OPENAI_ENDPOINT is set without AZURE_OPENAI_API_KEY: set the key, or install "
            "`durable-agents[azure]` to sign in with Entra ID (az login, a managed identity, ...)"
        ) from None
    return DefaultAzureCredential()
