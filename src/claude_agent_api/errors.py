"""Typed errors and the one exception-to-HTTP map.

Every error the API returns has one envelope::

    {"error": {"code": "SESSION_NOT_FOUND", "message": "...", "details": {...}}}

Hierarchy (status in brackets)::

    AppError [500 INTERNAL_ERROR]
    ├── BadRequest [400 BAD_REQUEST]
    ├── AuthenticationError [401 AUTHENTICATION_ERROR]
    ├── PermissionDenied [403 PERMISSION_DENIED]
    ├── NotFound [404 NOT_FOUND]
    │   └── KeyNotFound [404 KEY_NOT_FOUND]
    ├── Conflict [409 CONFLICT]
    ├── PayloadTooLarge [413 PAYLOAD_TOO_LARGE]
    ├── RequestValidationFailed [422 VALIDATION_ERROR]
    ├── RateLimitExceeded [429 RATE_LIMIT_EXCEEDED]
    └── ServiceUnavailable [503 SERVICE_UNAVAILABLE]

Domain packages add their own subclasses next to these. Unexpected exceptions become 500 ``INTERNAL_ERROR``
with the request id and nothing else: no stack trace, no internal path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger("claude_agent_api.errors")


class AppError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "INTERNAL_ERROR"
    default_message: ClassVar[str] = "Internal server error."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = dict(details or {})
        self.headers = dict(headers or {})
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)


class BadRequest(AppError):
    status = 400
    code = "BAD_REQUEST"
    default_message = "The request is malformed."


class AuthenticationError(AppError):
    status = 401
    code = "AUTHENTICATION_ERROR"
    default_message = "A valid API key is required (X-API-Key header or Authorization: Bearer)."

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="claude-agent-api"'})
        super().__init__(message, **kwargs)


class PermissionDenied(AppError):
    status = 403
    code = "PERMISSION_DENIED"
    default_message = "This API key is not allowed to do that."


class NotFound(AppError):
    status = 404
    code = "NOT_FOUND"
    default_message = "Not found."


class KeyNotFound(NotFound):
    code = "KEY_NOT_FOUND"
    default_message = "API key not found."


class Conflict(AppError):
    status = 409
    code = "CONFLICT"
    default_message = "The request conflicts with the current state."


class PayloadTooLarge(AppError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"
    default_message = "The request body is too large."


class RequestValidationFailed(AppError):
    status = 422
    code = "VALIDATION_ERROR"
    default_message = "The request is invalid."

    @classmethod
    def for_field(cls, field: Sequence[str | int] | str, message: str) -> RequestValidationFailed:
        loc = [field] if isinstance(field, str) else list(field)
        return cls(
            f"{'.'.join(str(p) for p in loc)}: {message}",
            details={"errors": [{"field": ".".join(str(p) for p in loc), "loc": loc, "message": message}]},
        )


class RateLimitExceeded(AppError):
    status = 429
    code = "RATE_LIMIT_EXCEEDED"
    default_message = "Too many requests."


class ServiceUnavailable(AppError):
    status = 503
    code = "SERVICE_UNAVAILABLE"
    default_message = "The service is temporarily unavailable."


def error_body(code: str, message: str, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": dict(details or {})}}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status, headers=dict(headers or {}))


_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "AUTHENTICATION_ERROR",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


def _request_id(request: Request) -> str | None:
    value = getattr(request.state, "request_id", None)
    return value if isinstance(value, str) else None


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    details = dict(exc.details)
    if exc.status >= 500 and (rid := _request_id(request)):
        details.setdefault("request_id", rid)
    return error_response(exc.status, exc.code, exc.message, details, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for err in exc.errors():
        loc = [p for p in err.get("loc", ()) if p not in ("body",)] or list(err.get("loc", ()))
        errors.append({"field": ".".join(str(p) for p in loc), "loc": loc, "message": err.get("msg", "")})
    first = errors[0] if errors else {"field": "", "message": "invalid request"}
    message = f"{first['field']}: {first['message']}" if first["field"] else str(first["message"])
    return error_response(422, "VALIDATION_ERROR", message, {"errors": errors})


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
    message = exc.detail if isinstance(exc.detail, str) else "HTTP error."
    return error_response(exc.status_code, code, message, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    rid = _request_id(request)
    log.error("request.unhandled_error", error_type=type(exc).__name__, exc_info=exc)
    return error_response(
        500,
        "INTERNAL_ERROR",
        "Internal server error.",
        {"request_id": rid} if rid else None,
        {"X-Request-ID": rid} if rid else None,
    )


def add_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
