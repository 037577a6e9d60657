"""ModelServerControl: drives a test model server's rules, faults, latency and request log over HTTP."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx

from .rules import Fault, Match, Reply, Rule


class ModelServerControlError(RuntimeError):
    """The test model server could not be reached, or refused a control request."""


def root_url(url: str) -> str:
    """The server's root from either its root or its SDK base URL (the one ending in /v1)."""
    root = url.rstrip("/")
    return root.removesuffix("/v1")


class ModelServerControl:
    """A client for the control API of a test model server running anywhere (this process or another)."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = root_url(url)
        self._http = httpx.Client(base_url=self.url, timeout=timeout)

    def set_rules(self, rules: Sequence[Rule | Mapping[str, Any]]) -> None:
        """Replace every rule (and forget how often the old ones answered)."""
        self._call("POST", "/_control/rules", [_rule_json(rule) for rule in rules])

    def add_rule(
        self,
        rule: Rule | Mapping[str, Any] | None = None,
        *,
        match: Match | Mapping[str, Any] | None = None,
        reply: Reply | Mapping[str, Any] | None = None,
        times: int | None = None,
    ) -> int:
        """Append a rule, given whole or as match/reply/times; returns its index (as logged in `rule`)."""
        if rule is None:
            rule = Rule.model_validate({"match": match or {}, "reply": reply or {}, "times": times})
        elif match is not None or reply is not None or times is not None:
            raise TypeError("add_rule takes either a whole rule or match=/reply=/times=, not both")
        result = self._call("POST", "/_control/rules/add", _rule_json(rule))
        return int(result["index"])

    def inject(self, *faults: Fault | Mapping[str, Any]) -> None:
        """Queue faults; each fails the next chat request whose model it matches (all of them with repeat)."""
        payload = [Fault.model_validate(fault).model_dump(mode="json") for fault in faults]
        self._call("POST", "/_control/faults", payload)

    def set_latency(self, ms: int) -> None:
        """Wait `ms` milliseconds before every response from now on."""
        self._call("POST", "/_control/latency", {"ms": ms})

    def set_options(self, *, json_schema: bool | None = None) -> None:
        """Change how the server behaves until the next reset: `json_schema=False` refuses `response_format`
        of type json_schema with HTTP 500, as llama.cpp and older vLLM do (json_object still works)."""
        self._call("POST", "/_control/options", {"json_schema": json_schema})

    def requests(self) -> list[dict[str, Any]]:
        """Every chat request received since the last reset: seq, received_at, body, fault, rule."""
        result = self._call("GET", "/_control/requests")
        return list(result)

    def reset(self) -> None:
        """Clear rules, faults and the request log, and restore the latency and options the server started with."""
        self._call("POST", "/_control/reset")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ModelServerControl:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        try:
            response = self._http.request(method, path, json=payload)
        except httpx.HTTPError as error:
            raise ModelServerControlError(
                f"could not reach the test model server at {self.url} ({error}); "
                "start it (python -m durable_agents.testing) or check the URL"
            ) from error
        if response.is_error:
            raise ModelServerControlError(
                f"the test model server refused {method} {path} with {response.status_code}: {response.text}"
            )
        return response.json()


def _rule_json(rule: Rule | Mapping[str, Any]) -> dict[str, Any]:
    # Validating here reports a bad rule at the call that made it, not as a 422 from the server.
    return Rule.model_validate(rule).model_dump(mode="json", by_alias=True)
