"""The API's one error shape, `{"error": {"code", "message"}}`, and the one table mapping errors to status codes."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..errors import (
    AgentNotRegisteredError,
    AgentRunError,
    ApprovalDecidedError,
    ApprovalNotFoundError,
    ConfigurationError,
    EntityNotRegisteredError,
    EntityOperationNotFoundError,
    InstanceExistsError,
    InstanceNotFoundError,
    InvalidInstanceStateError,
    InvalidScheduleError,
    NotRegisteredError,
    OrchestrationNotRegisteredError,
    PayloadTooLargeError,
    ScheduleExistsError,
    ScheduleNotFoundError,
    SerializationError,
    SessionNotFoundError,
    StreamNotFoundError,
    WaitTimeoutError,
)
from ..failures import service_failure

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the API answers with `status` and a JSON body naming `code` and saying what to do."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = list(details) if details is not None else None
        self.headers = dict(headers or {})


#: Every error the engine raises that a request can cause, first match wins (specific before general).
ERROR_STATUS: tuple[tuple[type[BaseException], int, str], ...] = (
    (InstanceNotFoundError, 404, "instance_not_found"),
    (ScheduleNotFoundError, 404, "schedule_not_found"),
    (SessionNotFoundError, 404, "session_not_found"),
    (StreamNotFoundError, 404, "stream_not_found"),
    (ApprovalNotFoundError, 404, "approval_not_found"),
    (AgentNotRegisteredError, 404, "agent_not_found"),
    (OrchestrationNotRegisteredError, 404, "orchestration_not_found"),
    (EntityNotRegisteredError, 404, "entity_not_registered"),
    (EntityOperationNotFoundError, 404, "operation_not_found"),
    (NotRegisteredError, 404, "not_registered"),
    (InstanceExistsError, 409, "instance_exists"),
    (ScheduleExistsError, 409, "schedule_exists"),
    (InvalidInstanceStateError, 409, "invalid_instance_state"),
    (ApprovalDecidedError, 409, "approval_decided"),
    (PayloadTooLargeError, 413, "payload_too_large"),
    (InvalidScheduleError, 422, "invalid_schedule"),
    (SerializationError, 422, "invalid_payload"),
    (AgentRunError, 502, "agent_run_failed"),
    (WaitTimeoutError, 504, "timeout"),
    (ConfigurationError, 503, "service_unavailable"),
)

#: What to do when a service behind the API failed though the request was fine, by service.
RETRY_ADVICE = {
    "database": "try again shortly",
    "Redis": "try again shortly",
    "broker": "the change may be stored already, check before retrying",
}


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    details: Sequence[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = list(details)
    return JSONResponse({"error": body}, status_code=status, headers=dict(headers or {}))


def _message(item: Mapping[str, Any]) -> str:
    if item.get("type") == "json_invalid":
        reason = (item.get("ctx") or {}).get("error", "")
        return f"the body is not valid JSON ({reason} at position {item['loc'][-1]}); send a JSON value"
    return str(item.get("msg", ""))


def validation_details(error: RequestValidationError) -> list[dict[str, Any]]:
    """FastAPI's validation errors without their echoed input (which may be huge or not JSON)."""
    return [
        {"loc": [str(part) for part in item.get("loc", ())], "message": _message(item), "type": item["type"]}
        for item in error.errors()
    ]


def validation_response(error: RequestValidationError) -> JSONResponse:
    details = validation_details(error)
    summary = "; ".join(f"{'.'.join(d['loc'])}: {d['message']}" for d in details[:3])
    more = f" (and {len(details) - 3} more)" if len(details) > 3 else ""
    return error_response(422, "invalid_input", f"invalid request: {summary}{more}", details=details)


def problem_response(error: Exception) -> JSONResponse:
    """The response for any error raised while serving a request; unexpected ones are logged as 500s."""
    if isinstance(error, ApiError):
        return error_response(error.status, error.code, error.message, details=error.details, headers=error.headers)
    if isinstance(error, RequestValidationError):
        return validation_response(error)
    if isinstance(error, HTTPException):
        if error.status_code == 400:  # FastAPI's only 400: a body its JSON parser gave up on
            return error_response(
                422,
                "invalid_input",
                "the request body could not be parsed as JSON (it must be UTF-8, and not nested too deeply)",
            )
        return error_response(error.status_code, "http_error", str(error.detail), headers=error.headers)
    for kind, status, code in ERROR_STATUS:
        if isinstance(error, kind):
            return error_response(status, code, str(error))
    failure = service_failure(error)
    if failure is not None and failure.bad_value:  # the request carried a value the database cannot store
        return error_response(422, "invalid_input", f"the database refused a value of this request: {failure.reason}")
    if failure is not None and failure.unreachable:
        log.warning("service unavailable while serving a request: %s", error)
        return error_response(503, "service_unavailable", f"{failure.summary}; {RETRY_ADVICE[failure.service]}")
    log.exception("unexpected error while serving a request", exc_info=error)
    return error_response(500, "internal_error", "an unexpected error occurred; the server log has the details")
