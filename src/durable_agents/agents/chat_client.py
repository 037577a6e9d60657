"""Model clients over the `openai` SDK: OpenAI, Azure OpenAI, and any OpenAI-compatible endpoint."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import openai

from ..errors import ConfigurationError, ModelCallError
from .agent import Agent


class StreamBrokenError(ModelCallError):
    """A streamed reply broke off midway; asking again is safe."""


@dataclass(frozen=True)
class ModelReply:
    message: dict[str, Any]
    usage: dict[str, int]


class ChatClient:
    """Common ground of the model clients: calling the model, and making agents."""

    model: str
    endpoint: str
    max_concurrency: int | None

    def __init__(self) -> None:
        self._sdk: openai.OpenAI | None = None
        self._sdk_pid = 0
        self._lock = threading.Lock()

    def _make_sdk(self) -> openai.OpenAI:
        raise NotImplementedError

    def sdk(self) -> openai.OpenAI:
        """The SDK client of this process (made lazily, so a worker's forked children get their own)."""
        with self._lock:
            if self._sdk is None or self._sdk_pid != os.getpid():
                self._sdk = self._make_sdk()
                self._sdk_pid = os.getpid()
            return self._sdk

    def as_agent(self, *, name: str, instructions: str, tools: Sequence[Any] = (), **options: Any) -> Agent:
        """An agent answering with this model; register it with `app.add_agent(agent)`."""
        return Agent(name=name, instructions=instructions, chat_client=self, tools=tools, **options)

    def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        response_format: dict[str, Any] | None = None,
        on_text: Callable[[str], None] | None = None,
        on_restart: Callable[[], None] | None = None,
        stream_retries: int = 3,
    ) -> ModelReply:
        """One chat completion. Transient errors (429, 5xx, timeouts, dropped connections) are retried
        by the SDK with backoff and jitter, honouring Retry-After; what still fails raises ModelCallError.

        With `on_text`, the reply is streamed and each piece of text is handed to it as it arrives.
        A stream that breaks midway is requested again (up to `stream_retries` times), after
        `on_restart` has been told that the text so far is void.
        """
        request: dict[str, Any] = {"model": self.model, "messages": messages}
        if tools:
            request["tools"] = tools
        if response_format is not None:
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": response_format["name"], "schema": response_format["schema"]},
            }
        if on_text is not None:
            for attempt in range(stream_retries + 1):
                try:
                    return self._stream(request, on_text)
                except StreamBrokenError:
                    if attempt == stream_retries:
                        raise
                    if on_restart is not None:
                        on_restart()
        try:
            completion = self.sdk().chat.completions.create(**request)
        except openai.APIStatusError as error:
            raise ModelCallError(
                f"the model endpoint {self.endpoint} (model {self.model!r}) answered HTTP {error.status_code}: "
                f"{error.message}"
            ) from None
        except openai.APIConnectionError as error:
            raise ModelCallError(
                f"cannot reach the model endpoint {self.endpoint} (model {self.model!r}): {error}; "
                "check the URL and the network"
            ) from None
        choice = completion.choices[0].message
        message: dict[str, Any] = {"role": "assistant", "content": choice.content}
        if choice.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.function.name, "arguments": call.function.arguments},
                }
                for call in choice.tool_calls
            ]
        usage = completion.usage
        return ModelReply(
            message,
            {
                "prompt_tokens": usage.prompt_tokens if usage else 0,
                "completion_tokens": usage.completion_tokens if usage else 0,
                "total_tokens": usage.total_tokens if usage else 0,
            },
        )

    def _stream(self, request: dict[str, Any], on_text: Callable[[str], None]) -> ModelReply:
        content: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        usage: dict[str, int] = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        try:
            stream = self.sdk().chat.completions.create(**request, stream=True, stream_options={"include_usage": True})
            for chunk in stream:
                if chunk.usage is not None:
                    usage = {
                        "prompt_tokens": chunk.usage.prompt_tokens,
                        "completion_tokens": chunk.usage.completion_tokens,
                        "total_tokens": chunk.usage.total_tokens,
                    }
                for choice in chunk.choices:
                    delta = choice.delta
                    if delta.content:
                        content.append(delta.content)
                        on_text(delta.content)
                    for call in delta.tool_calls or []:
                        slot = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                        slot["id"] = call.id or slot["id"]
                        if call.function is not None:
                            slot["name"] += call.function.name or ""
                            slot["arguments"] += call.function.arguments or ""
        except openai.APIStatusError as error:
            raise ModelCallError(
                f"the model endpoint {self.endpoint} (model {self.model!r}) answered HTTP {error.status_code}: "
                f"{error.message}"
            ) from None
        except (openai.APIError, httpx.HTTPError) as error:  # the connection dropped mid-stream
            raise StreamBrokenError(
                f"the stream from {self.endpoint} (model {self.model!r}) broke off: {error}"
            ) from None
        message: dict[str, Any] = {"role": "assistant", "content": "".join(content) or None}
        if calls:
            message["tool_calls"] = [
                {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                for _, c in sorted(calls.items())
            ]
        return ModelReply(message, usage)


class OpenAIChatClient(ChatClient):
    """OpenAI, or any OpenAI-compatible server (vLLM, Ollama, LM Studio) through `base_url`.

    Defaults come from OPENAI_API_KEY, OPENAI_BASE_URL and OPENAI_MODEL.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 6,
        max_concurrency: int | None = None,
        organization: str | None = None,
    ) -> None:
        super().__init__()
        self.model = model or os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
        self._api_key = api_key
        self._base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        self.endpoint = self._base_url or "https://api.openai.com/v1"
        self._timeout = timeout
        self._max_retries = max_retries
        self._organization = organization
        self.max_concurrency = max_concurrency

    def _make_sdk(self) -> openai.OpenAI:
        api_key = self._api_key or os.environ.get("OPENAI_API_KEY")
        if not api_key:
            raise ConfigurationError(
                f"no API key for the model endpoint {self.endpoint}: set OPENAI_API_KEY or pass api_key= "
                "(any non-empty value for servers that need none)"
            )
        return openai.OpenAI(
            api_key=api_key,
            base_url=self._base_url,
            timeout=self._timeout,
            max_retries=self._max_retries,
            organization=self._organization,
        )


class AzureOpenAIChatClient(ChatClient):
    """Azure OpenAI through the SDK's Azure client, with an API key or an Entra ID credential.

    Defaults come from AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_DEPLOYMENT_NAME, AZURE_OPENAI_API_VERSION
    and AZURE_OPENAI_API_KEY. `credential` is an `azure-identity` credential (install
    `durable-agents[azure]`) or a callable returning a bearer token.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        deployment: str | None = None,
        api_version: str | None = None,
        credential: Any = None,
        api_key: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 6,
        max_concurrency: int | None = None,
    ) -> None:
        super().__init__()
        resolved = endpoint or os.environ.get("AZURE_OPENAI_ENDPOINT")
        if not resolved:
            raise ConfigurationError("AzureOpenAIChatClient needs endpoint= or AZURE_OPENAI_ENDPOINT")
        self.endpoint = resolved
        self.model = deployment or os.environ.get("AZURE_OPENAI_DEPLOYMENT_NAME", "gpt-4o-mini")
        self._api_version = api_version or os.environ.get("AZURE_OPENAI_API_VERSION", "2024-10-21")
        self._credential = credential
        self._api_key = api_key
        self._timeout = timeout
        self._max_retries = max_retries
        self.max_concurrency = max_concurrency

    def _token_provider(self) -> Callable[[], str] | None:
        if self._credential is None:
            return None
        if not hasattr(self._credential, "get_token"):
            provider: Callable[[], str] = self._credential
            return provider
        try:
            from azure.identity import get_bearer_token_provider
        except ImportError as error:
            raise ConfigurationError(
                "an Azure credential needs the azure-identity package: pip install 'durable-agents[azure]'"
            ) from error
        token_provider: Callable[[], str] = get_bearer_token_provider(
            self._credential, "https://cognitiveservices.azure.com/.default"
        )
        return token_provider

    def _make_sdk(self) -> openai.OpenAI:
        api_key = self._api_key or os.environ.get("AZURE_OPENAI_API_KEY")
        provider = self._token_provider()
        if provider is None and not api_key:
            raise ConfigurationError(
                f"no credential for {self.endpoint}: pass credential= (azure-identity) or api_key=, "
                "or set AZURE_OPENAI_API_KEY"
            )
        return openai.AzureOpenAI(
            azure_endpoint=self.endpoint,
            azure_deployment=self.model,
            api_version=self._api_version,
            api_key=api_key if provider is None else None,
            azure_ad_token_provider=provider,
            timeout=self._timeout,
            max_retries=self._max_retries,
        )
