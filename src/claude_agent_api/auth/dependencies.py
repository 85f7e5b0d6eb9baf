"""Authentication and abuse-limit dependencies for REST routes.

Order of checks: the client address's budget (so floods without a key are limited too), then the key
(``X-API-Key`` or ``Authorization: Bearer``; missing, unknown or revoked → 401), then the key's budget.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from claude_agent_api.auth.service import ApiKeyService, Principal
from claude_agent_api.dependencies import DbSession, State
from claude_agent_api.errors import AuthenticationError, PermissionDenied
from claude_agent_api.kit.addresses import client_address
from claude_agent_api.kit.ratelimit import Budget, LimitState


def credential_from_headers(x_api_key: str | None, authorization: str | None) -> str | None:
    if x_api_key:
        return x_api_key.strip()
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None


def request_address(request: Request, state: State) -> str:
    peer = request.client.host if request.client else None
    return client_address(peer, request.headers.get("x-forwarded-for"), state.settings.trusted_proxy_networks)


def _remember_limits(request: Request, limit: LimitState | None) -> None:
    if limit is not None:
        current: LimitState | None = getattr(request.state, "ratelimit_state", None)
        if current is None or limit.remaining < current.remaining:
            request.state.ratelimit_state = limit
            request.state.ratelimit_headers = limit.headers()


def authenticated(budget: Budget = "requests") -> Callable[..., Awaitable[Principal]]:
    async def dependency(request: Request, state: State, db: DbSession) -> Principal:
        limiter = state.rate_limiter
        _remember_limits(request, await limiter.hit("ip", request_address(request, state), budget))
        secret = credential_from_headers(request.headers.get("x-api-key"), request.headers.get("authorization"))
        if not secret:
            raise AuthenticationError()
        principal = await ApiKeyService(db).authenticate(secret)
        if principal is None:
            raise AuthenticationError("The API key is unknown or revoked.")
        _remember_limits(request, await limiter.hit("key", principal.key_id, budget))
        request.state.principal = principal
        return principal

    return dependency


CurrentKey = Annotated[Principal, Depends(authenticated("requests"))]
RunKey = Annotated[Principal, Depends(authenticated("runs"))]


async def _require_admin(principal: CurrentKey) -> Principal:
    if not principal.is_admin:
        raise PermissionDenied("This route needs an admin API key.")
    return principal


AdminKey = Annotated[Principal, Depends(_require_admin)]
