"""Model clients over the `openai` SDK: OpenAI, Azure OpenAI, and any OpenAI-compatible endpoint."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import openai

from ..errors import ConfigurationError, IncompleteReplyError, ModelCallError
from .agent import Agent
from .structured import (
    MODES,
    FormatRefusedError,
    StructuredOutputMode,
    learn,
    learned,
    refuses_json_schema,
    response_format_field,
    with_schema_instructions,
)

log = logging.getLogger(__name__)


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
    #: How structured output is asked for: "auto" tries json_schema and falls back to json_object (with the
    #: schema in the instructions) on a server that refuses it; "json_schema" or "json_object" force one.
    structured_output: StructuredOutputMode = "auto"
    #: How often a reply that broke off, ended incomplete or came back empty is asked for again.
    reply_retries: int = 3

    def __init__(self, *, structured_output: StructuredOutputMode = "auto", reply_retries: int = 3) -> None:
        if structured_output not in MODES:
            raise ValueError(f"structured_output={structured_output!r} is not one of {', '.join(MODES)}")
        if reply_retries < 0:
            raise ValueError("reply_retries must be 0 or more")
        self.structured_output = structured_output
        self.reply_retries = reply_retries
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
    ) -> ModelReply:
        """One chat completion. Transient errors (429, 5xx, timeouts, dropped connections) are retried
        by the SDK with backoff and jitter, honouring Retry-After; what still fails raises ModelCallError.

        With `on_text`, the reply is streamed and each piece of text is handed to it as it arrives. A
        reply that breaks off, ends without a finish_reason or with "length", or comes back empty is asked
        for again (up to `reply_retries` times), after `on_restart` has been told the text so far is void.
        """
        mode = None if response_format is None else self.structured_output
        if mode == "auto":
            taken = learned(self.endpoint, self.model)
            if taken is None:
                return self._probe(messages, tools, response_format, on_text, on_restart)
            mode = "json_schema" if taken else "json_object"
        try:
            return self._attempts(messages, tools, response_format, mode, on_text, on_restart, self.sdk())
        except FormatRefusedError:
            if self.structured_output != "auto":
                raise
            # A server that took json_schema before and refuses it now (it was replaced): fall back.
            learn(self.endpoint, self.model, takes_json_schema=False)
            return self._attempts(messages, tools, response_format, "json_object", on_text, on_restart, self.sdk())

    def _probe(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        response_format: dict[str, Any] | None,
        on_text: Callable[[str], None] | None,
        on_restart: Callable[[], None] | None,
    ) -> ModelReply:
        """The first structured call to an endpoint: json_schema without the SDK's retries, so a server that
        refuses it costs one request, not a minute of backoff; then json_object from now on."""
        try:
            reply = self._attempts(
                messages,
                tools,
                response_format,
                "json_schema",
                on_text,
                on_restart,
                self.sdk().with_options(max_retries=0),
            )
        except FormatRefusedError:
            learn(self.endpoint, self.model, takes_json_schema=False)
            log.warning(
                "the model endpoint %s refuses response_format json_schema; structured output asks it for "
                "json_object with the schema in the instructions from now on", self.endpoint,
            )  # fmt: skip
            return self._attempts(messages, tools, response_format, "json_object", on_text, on_restart, self.sdk())
        except (IncompleteReplyError, StreamBrokenError):
            raise  # retried already
        except ModelCallError:  # a transient failure says nothing about the format: ask again, with retries
            return self._attempts(messages, tools, response_format, "json_schema", on_text, on_restart, self.sdk())
        learn(self.endpoint, self.model, takes_json_schema=True)
        return reply

    def _attempts(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        response_format: dict[str, Any] | None,
        mode: str | None,
        on_text: Callable[[str], None] | None,
        on_restart: Callable[[], None] | None,
        sdk: openai.OpenAI,
    ) -> ModelReply:
        request: dict[str, Any] = {"model": self.model, "messages": messages}
        if tools:
            request["tools"] = tools
        if response_format is not None and mode is not None:
            request["response_format"] = response_format_field(response_format, mode)
            if mode == "json_object":
                request["messages"] = with_schema_instructions(messages, response_format)
        for attempt in range(self.reply_retries + 1):
            try:
                return self._stream(request, on_text, sdk) if on_text is not None else self._once(request, sdk)
            except (StreamBrokenError, _IncompleteError) as error:
                if attempt == self.reply_retries:
                    if isinstance(error, _IncompleteError):
                        raise IncompleteReplyError(
                            f"the model endpoint {self.endpoint} (model {self.model!r}) gave an incomplete reply "
                            f"{attempt + 1} times in a row (the last {error}); the server may be overloaded or "
                            "its max_tokens too small: check it, or raise reply_retries="
                        ) from None
                    raise
                if on_restart is not None and on_text is not None:
                    on_restart()
        raise AssertionError("unreachable")  # pragma: no cover

    def _status_error(self, request: dict[str, Any], error: openai.APIStatusError) -> ModelCallError:
        described = (
            f"the model endpoint {self.endpoint} (model {self.model!r}) answered HTTP {error.status_code}: "
            f"{error.message}"
        )
        asked_schema = request.get("response_format", {}).get("type") == "json_schema"
        if asked_schema and refuses_json_schema(error):
            return FormatRefusedError(
                f"{described}; the server may not take response_format json_schema: use "
                "structured_output='auto' or 'json_object' on the chat client"
            )
        return ModelCallError(described)

    def _once(self, request: dict[str, Any], sdk: openai.OpenAI) -> ModelReply:
        try:
            completion = sdk.chat.completions.create(**request)
        except openai.APIStatusError as error:
            raise self._status_error(request, error) from None
        except openai.APIConnectionError as error:
            raise ModelCallError(
                f"cannot reach the model endpoint {self.endpoint} (model {self.model!r}): {error}; "
                "check the URL and the network"
            ) from None
        choice = completion.choices[0]
        message: dict[str, Any] = {"role": "assistant", "content": choice.message.content}
        if choice.message.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.function.name, "arguments": call.function.arguments},
                }
                for call in choice.message.tool_calls
            ]
        _check_complete(message, choice.finish_reason)
        usage = completion.usage
        return ModelReply(
            message,
            {
                "prompt_tokens": usage.prompt_tokens if usage else 0,
                "completion_tokens": usage.completion_tokens if usage else 0,
                "total_tokens": usage.total_tokens if usage else 0,
            },
        )

    def _stream(self, request: dict[str, Any], on_text: Callable[[str], None], sdk: openai.OpenAI) -> ModelReply:
        content: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        usage: dict[str, int] = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        finish_reason: str | None = None
        try:
            stream = sdk.chat.completions.create(**request, stream=True, stream_options={"include_usage": True})
            for chunk in stream:
                if chunk.usage is not None:
                    usage = {
                        "prompt_tokens": chunk.usage.prompt_tokens,
                        "completion_tokens": chunk.usage.completion_tokens,
                        "total_tokens": chunk.usage.total_tokens,
                    }
                for choice in chunk.choices:
                    finish_reason = choice.finish_reason or finish_reason
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
            raise self._status_error(request, error) from None
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
        _check_complete(message, finish_reason)
        return ModelReply(message, usage)


class _IncompleteError(Exception):
    """A reply that ended without being finished; asking again is safe."""


def _check_complete(message: dict[str, Any], finish_reason: str | None) -> None:
    """Raise _IncompleteError for a reply that is not a whole answer: cut off, or with nothing in it."""
    if finish_reason is None:
        raise _IncompleteError("ended without a finish_reason")
    if finish_reason == "length":
        raise _IncompleteError("was cut off at the length limit (finish_reason 'length')")
    if not message.get("content") and not message.get("tool_calls"):
        raise _IncompleteError("was empty")


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
        structured_output: StructuredOutputMode = "auto",
        reply_retries: int = 3,
    ) -> None:
        super().__init__(structured_output=structured_output, reply_retries=reply_retries)
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
        structured_output: StructuredOutputMode = "auto",
        reply_retries: int = 3,
    ) -> None:
        super().__init__(structured_output=structured_output, reply_retries=reply_retries)
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
