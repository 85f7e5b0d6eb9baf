"""Deliver one event to a webhook: signed, SSRF-guarded, retried on transient failures, never raising.

:func:`deliver` POSTs ``{"type", "timestamp", "data"}`` as JSON with the Standard Webhooks headers
(:mod:`.signing`) through a :class:`WebhookClient` and returns a :class:`DeliveryResult`. It does not raise:
whatever goes wrong is ``ok=False`` with an ``error`` that says why and never contains the secret, which lets a
PreToolUse hook treat every non-ok result as a deny (fail closed).

- Refused before sending anything: a URL that fails :func:`~.ssrf.check_url`, a host that resolves to a
  forbidden address (checked on the address actually connected to), a malformed secret, a payload that is not
  JSON-serialisable.
- Retried, with exponential backoff and the same ``webhook-id`` (fresh timestamp and signature per attempt):
  connection errors, timeouts, 5xx and 429. ``retries=0`` means one attempt.
- Never retried: other 4xx, and 3xx — redirects are not followed, a redirect is a failure.
- ``ok`` is a 2xx answer of at most :data:`MAX_REPLY_BYTES`; ``reply`` is its body when that is a JSON object.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog

from claude_agent_api.webhooks import signing
from claude_agent_api.webhooks.ssrf import GuardedTransport, Resolver, UnsafeURL, check_url

log = structlog.get_logger("claude_agent_api.webhooks")

MAX_REPLY_BYTES = 64 * 1024
MAX_BACKOFF_SECONDS = 10.0
USER_AGENT = "claude-agent-api-webhooks"


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What became of one event. ``attempts`` is 0 when it was refused before any request."""

    ok: bool
    status: int | None
    attempts: int
    duration_ms: float
    error: str | None = None
    reply: dict[str, Any] | None = None
    webhook_id: str = ""


class WebhookClient:
    """One pooled HTTP client for every delivery: guarded transport, no redirects, no environment proxies.

    ``allow`` is the allow-list of hosts, IPs and CIDRs that may be private (the ``webhook_allow_private``
    setting). It belongs to the client because its transport checks it on every new connection.
    """

    def __init__(
        self,
        *,
        allow: Sequence[str] = (),
        verify: ssl.SSLContext | bool = True,
        resolver: Resolver | None = None,
    ) -> None:
        self.allow: tuple[str, ...] = tuple(allow)
        self._http = httpx.AsyncClient(
            transport=GuardedTransport(allow=self.allow, verify=verify, resolver=resolver),
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": USER_AGENT},
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> WebhookClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def post(self, url: str, body: bytes, headers: Mapping[str, str], limit: float) -> tuple[int, bytes]:
        """One POST, bounded by ``limit`` seconds end to end; the reply body is read up to the size limit."""
        async with (
            asyncio.timeout(limit),
            self._http.stream("POST", url, content=body, headers=dict(headers), timeout=limit) as response,
        ):
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > MAX_REPLY_BYTES:
                    break
            return response.status_code, bytes(data)


@dataclass(frozen=True, slots=True)
class _Attempt:
    status: int | None
    error: str | None = None
    retryable: bool = False
    reply: dict[str, Any] | None = None


def _encode(event_type: str, payload: Mapping[str, Any]) -> bytes:
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    document = {"type": event_type, "timestamp": stamp, "data": dict(payload)}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _judge(status: int, data: bytes) -> _Attempt:
    if 200 <= status < 300:
        if len(data) > MAX_REPLY_BYTES:
            return _Attempt(status, f"HTTP {status} with a reply over {MAX_REPLY_BYTES} bytes")
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = None
        return _Attempt(status, reply=parsed if isinstance(parsed, dict) else None)
    if 300 <= status < 400:
        return _Attempt(status, f"HTTP {status}: redirects are not followed")
    return _Attempt(status, f"HTTP {status}", retryable=status == 429 or status >= 500)


async def _attempt(client: WebhookClient, url: str, body: bytes, headers: dict[str, str], limit: float) -> _Attempt:
    try:
        status, data = await client.post(url, body, headers, limit)
    except UnsafeURL as exc:
        return _Attempt(None, f"refused: {exc}")
    except (TimeoutError, httpx.TimeoutException):
        return _Attempt(None, f"timed out after {limit:g}s", retryable=True)
    except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
        return _Attempt(None, f"connection failed: {type(exc).__name__}: {exc}", retryable=True)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return _Attempt(None, f"request failed: {type(exc).__name__}: {exc}")
    return _judge(status, data)


def _host(url: str) -> str:
    """The host, for logs (never the path or query, which may carry a receiver's token)."""
    try:
        return httpx.URL(url).host
    except (httpx.InvalidURL, TypeError):
        return "(invalid)"


def _backoff(attempt: int, base: float) -> float:
    """Exponential backoff with jitter: ~base, 2·base, 4·base… capped."""
    delay = min(MAX_BACKOFF_SECONDS, base * 2.0 ** (attempt - 1))
    return delay * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret


async def deliver(
    client: WebhookClient,
    url: str,
    secret: str,
    event_type: str,
    payload: Mapping[str, Any],
    *,
    timeout: float,  # noqa: ASYNC109 - a per-attempt limit, which a caller's asyncio.timeout cannot express
    retries: int,
    backoff: float = 0.5,
) -> DeliveryResult:
    """Deliver one event; never raises (except cancellation). See the module docstring for the rules.

    ``timeout`` bounds each attempt end to end (resolve, connect, send, read); ``retries`` is how many more
    attempts a transient failure may get; ``backoff`` is the first pause between attempts, in seconds.
    """
    started = time.perf_counter()
    webhook_id = signing.new_message_id()
    attempts = 0

    def result(outcome: _Attempt) -> DeliveryResult:
        ok = outcome.error is None
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        fields = {"webhook_id": webhook_id, "event_type": event_type, "host": _host(url)}
        if ok:
            log.info("webhook.delivered", status=outcome.status, attempts=attempts, duration_ms=elapsed, **fields)
        else:
            log.warning("webhook.failed", status=outcome.status, attempts=attempts, error=outcome.error, **fields)
        return DeliveryResult(ok, outcome.status, attempts, elapsed, outcome.error, outcome.reply, webhook_id)

    try:
        check_url(url, allow=client.allow)
        signing.check_secret(secret)
        body = _encode(event_type, payload)
    except UnsafeURL as exc:
        return result(_Attempt(None, f"refused: {exc}"))
    except signing.InvalidSecret as exc:
        return result(_Attempt(None, f"invalid webhook secret: {exc}"))
    except (TypeError, ValueError) as exc:
        return result(_Attempt(None, f"payload is not JSON-serialisable: {exc}"))

    while True:
        attempts += 1
        headers = {"content-type": "application/json", **signing.sign(secret, webhook_id, int(time.time()), body)}
        try:
            outcome = await _attempt(client, url, body, headers, timeout)
        except Exception as exc:  # fail closed on anything unforeseen, but say what it was
            outcome = _Attempt(None, f"delivery failed: {type(exc).__name__}")
        if not outcome.retryable or attempts > retries:
            return result(outcome)
        await asyncio.sleep(_backoff(attempts, backoff))
