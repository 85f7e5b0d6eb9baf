"""Webhook delivery against real loopback receivers: refusals send nothing, successes verify, retries and
timeouts behave, redirects are not followed, and the transport connects to the address it checked."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from claude_agent_api.webhooks.delivery import DeliveryResult, WebhookClient, deliver
from claude_agent_api.webhooks.signing import new_secret, verify
from claude_agent_api.webhooks.ssrf import GuardedTransport, UnsafeURL

from .test_ssrf import FORBIDDEN_HOSTS


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A tiny HTTP/1.1 server on 127.0.0.1 that records every connection and request and answers from a script."""

    def __init__(self, replies: Sequence[Reply], tls: ssl.SSLContext | None = None) -> None:
        self._replies = list(replies) or [Reply()]
        self._tls = tls
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.connections = 0
        self.requests: list[Seen] = []
        self.port = 0

    def url(self, host: str = "127.0.0.1", path: str = "/hook") -> str:
        return f"{'https' if self._tls else 'http'}://{host}:{self.port}{path}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self._tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            method, path, _ = (await reader.readline()).decode().split(" ", 2)
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(Seen(method, path, headers, body))
            reply = self._replies[min(len(self.requests), len(self._replies)) - 1]
            await asyncio.sleep(reply.delay)
            head = {"content-length": str(len(reply.body)), "connection": "close", **reply.headers}
            lines = "".join(f"{k}: {v}\r\n" for k, v in head.items())
            writer.write(f"HTTP/1.1 {reply.status} Scripted\r\n{lines}\r\n".encode() + reply.body)
            await writer.drain()
        except (ConnectionError, ValueError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._tasks.discard(task)


StartReceiver = Callable[..., Awaitable[Receiver]]
MakeClient = Callable[..., WebhookClient]


@pytest.fixture
async def receiver() -> AsyncIterator[StartReceiver]:
    started: list[Receiver] = []

    async def start(*replies: Reply, tls: ssl.SSLContext | None = None) -> Receiver:
        server = Receiver(replies, tls)
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


@pytest.fixture
async def client() -> AsyncIterator[MakeClient]:
    made: list[WebhookClient] = []

    def make(**kwargs: Any) -> WebhookClient:
        made.append(WebhookClient(**kwargs))
        return made[-1]

    yield make
    for one in made:
        await one.aclose()


SECRET = new_secret()
PAYLOAD = {"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": "ls"}}


async def send(webhooks: WebhookClient, url: str, **kwargs: Any) -> DeliveryResult:
    options: dict[str, Any] = {"timeout": 5.0, "retries": 0, "backoff": 0.01} | kwargs
    return await deliver(webhooks, url, SECRET, "PreToolUse", PAYLOAD, **options)


def static_resolver(table: dict[str, list[str]], calls: list[str] | None = None) -> Any:
    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        return table[host]

    return resolve


@pytest.mark.parametrize("host", ["localhost", *FORBIDDEN_HOSTS])
async def test_forbidden_targets_get_nothing(host: str, receiver: StartReceiver, client: MakeClient) -> None:
    server = await receiver()
    result = await send(client(), server.url(host))
    assert not result.ok and result.status is None and result.reply is None
    assert result.error is not None and "forbidden address" in result.error
    assert result.attempts == (1 if host == "localhost" else 0)  # a name is refused at connect, before a byte
    assert server.connections == 0 and server.requests == []


async def test_a_name_resolving_to_loopback_is_refused_on_the_resolved_address(
    receiver: StartReceiver, client: MakeClient
) -> None:
    server = await receiver()
    result = await send(client(), server.url("localhost"), retries=3)
    assert result.error is not None and "localhost resolved to" in result.error and "(loopback)" in result.error
    assert result.attempts == 1  # a refusal is not retried
    assert server.connections == 0


async def test_an_allowed_receiver_gets_a_signed_event(receiver: StartReceiver, client: MakeClient) -> None:
    server = await receiver(Reply(200, b'{"decision": "allow"}', {"content-type": "application/json"}))
    result = await send(client(allow=["127.0.0.1"]), server.url())
    assert result.ok and result.status == 200 and result.attempts == 1 and result.error is None
    assert result.reply == {"decision": "allow"}
    assert result.duration_ms > 0
    [seen] = server.requests
    assert (seen.method, seen.path) == ("POST", "/hook")
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["webhook-id"] == result.webhook_id and result.webhook_id.startswith("msg_")
    verify(SECRET, seen.headers, seen.body)
    event = json.loads(seen.body)
    assert event["type"] == "PreToolUse" and event["data"] == PAYLOAD
    sent_at = dt.datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
    assert abs((dt.datetime.now(dt.UTC) - sent_at).total_seconds()) < 5


async def test_a_redirect_is_a_failure_and_is_not_followed(receiver: StartReceiver, client: MakeClient) -> None:
    target = await receiver()
    redirecting = await receiver(Reply(302, headers={"location": target.url()}))
    result = await send(client(allow=["127.0.0.1"]), redirecting.url(), retries=3)
    assert not result.ok and result.status == 302 and result.attempts == 1
    assert result.error is not None and "redirect" in result.error
    assert len(redirecting.requests) == 1
    assert target.connections == 0


async def test_the_transport_connects_to_the_checked_address_with_the_original_host(
    receiver: StartReceiver, client: MakeClient
) -> None:
    server = await receiver()
    calls: list[str] = []
    webhooks = client(allow=["127.0.0.1"], resolver=static_resolver({"hooks.test": ["127.0.0.1"]}, calls))
    result = await send(webhooks, server.url("hooks.test"))
    assert result.ok
    assert server.requests[0].headers["host"] == f"hooks.test:{server.port}"
    assert calls == ["hooks.test"]  # resolved once: the address checked is the address connected to


async def test_every_resolved_address_is_checked(receiver: StartReceiver, client: MakeClient) -> None:
    server = await receiver()
    resolver = static_resolver({"mixed.test": ["127.0.0.1", "10.1.2.3"], "rebound.test": ["::ffff:127.0.0.1"]})
    webhooks = client(allow=["127.0.0.1/32"], resolver=resolver)
    mixed = await send(webhooks, server.url("mixed.test"))
    assert mixed.error is not None and "mixed.test resolved to 10.1.2.3" in mixed.error
    unguarded = await send(client(resolver=resolver), server.url("rebound.test"))
    assert unguarded.error is not None and "IPv4-mapped loopback" in unguarded.error
    assert server.connections == 0


async def test_https_keeps_the_name_for_sni_and_certificate_checks(
    receiver: StartReceiver, client: MakeClient, tmp_path: Path
) -> None:
    server_tls, client_tls, sni = tls_pair("hooks.test", tmp_path)
    server = await receiver(tls=server_tls)
    resolver = static_resolver({"hooks.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    webhooks = client(allow=["127.0.0.1"], verify=client_tls, resolver=resolver)
    result = await send(webhooks, server.url("hooks.test"))
    assert result.ok, result.error
    assert sni == ["hooks.test"]
    verify(SECRET, server.requests[0].headers, server.requests[0].body)
    wrong_name = await send(webhooks, server.url("other.test"))
    assert not wrong_name.ok and wrong_name.error is not None and "connection failed" in wrong_name.error
    assert len(server.requests) == 1


async def test_5xx_is_retried_with_the_same_id(receiver: StartReceiver, client: MakeClient) -> None:
    server = await receiver(Reply(500), Reply(503), Reply(200))
    result = await send(client(allow=["127.0.0.1"]), server.url(), retries=2)
    assert result.ok and result.status == 200 and result.attempts == 3
    assert len({seen.headers["webhook-id"] for seen in server.requests}) == 1
    for seen in server.requests:
        verify(SECRET, seen.headers, seen.body)
    assert len({seen.body for seen in server.requests}) == 1


@pytest.mark.parametrize(
    ("replies", "retries", "status", "attempts"),
    [
        ([Reply(429), Reply(200)], 1, 200, 2),
        ([Reply(500)], 2, 500, 3),
        ([Reply(500)], 0, 500, 1),
        ([Reply(400)], 3, 400, 1),
        ([Reply(404)], 3, 404, 1),
        ([Reply(307, headers={"location": "http://127.0.0.1:1/"})], 3, 307, 1),
    ],
)
async def test_what_is_retried(
    replies: list[Reply], retries: int, status: int, attempts: int, receiver: StartReceiver, client: MakeClient
) -> None:
    server = await receiver(*replies)
    result = await send(client(allow=["127.0.0.1"]), server.url(), retries=retries)
    assert (result.ok, result.status, result.attempts) == (status == 200, status, attempts)
    assert len(server.requests) == attempts
    assert result.error is None or (f"HTTP {status}" in result.error and SECRET not in result.error)


async def test_connection_errors_are_retried(client: MakeClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = await send(client(allow=["127.0.0.1"]), f"http://127.0.0.1:{port}/hook", retries=2)
    assert not result.ok and result.attempts == 3 and result.status is None
    assert result.error is not None and result.error.startswith("connection failed")


async def test_the_timeout_is_honoured(receiver: StartReceiver, client: MakeClient) -> None:
    server = await receiver(Reply(200, delay=30))
    started = time.monotonic()
    result = await send(client(allow=["127.0.0.1"]), server.url(), timeout=0.3)
    assert time.monotonic() - started < 2
    assert not result.ok and result.attempts == 1 and result.error == "timed out after 0.3s"
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("reply", "ok", "parsed"),
    [
        (Reply(200, b"thanks"), True, None),
        (Reply(204), True, None),
        (Reply(200, b"[1, 2]", {"content-type": "application/json"}), True, None),
        (Reply(200, b"{not json", {"content-type": "application/json"}), True, None),
        (Reply(200, b" " * (64 * 1024 + 1)), False, None),
    ],
)
async def test_replies(reply: Reply, ok: bool, parsed: object, receiver: StartReceiver, client: MakeClient) -> None:
    server = await receiver(reply)
    result = await send(client(allow=["127.0.0.1"]), server.url())
    assert (result.ok, result.reply) == (ok, parsed)
    assert ok or (result.error is not None and "over 65536 bytes" in result.error)


@pytest.mark.parametrize(
    ("url", "secret", "payload", "error"),
    [
        ("ftp://127.0.0.1/hook", SECRET, PAYLOAD, "refused: scheme 'ftp'"),
        ("http://user:pw@127.0.0.1:{port}/", SECRET, PAYLOAD, "refused: credentials"),
        ("http://127.0.0.1:{port}/", "whsec_dG9vIHNob3J0", PAYLOAD, "invalid webhook secret"),
        ("http://127.0.0.1:{port}/", "not-a-secret at all", PAYLOAD, "invalid webhook secret"),
        ("http://127.0.0.1:{port}/", SECRET, {"when": dt.datetime.now()}, "payload is not JSON-serialisable"),
        ("http://127.0.0.1:{port}/", SECRET, {"x": float("nan")}, "payload is not JSON-serialisable"),
    ],
    ids=["scheme", "userinfo", "short-secret", "garbage-secret", "datetime", "nan"],
)
async def test_refused_before_sending(
    url: str, secret: str, payload: dict[str, Any], error: str, receiver: StartReceiver, client: MakeClient
) -> None:
    server = await receiver()
    webhooks = client(allow=["127.0.0.1"])
    result = await deliver(webhooks, url.format(port=server.port), secret, "Stop", payload, timeout=5, retries=2)
    assert not result.ok and result.attempts == 0
    assert result.error is not None and result.error.startswith(error)
    assert secret not in result.error and "dG9vIHNob3J0" not in result.error
    assert server.connections == 0


def tls_pair(hostname: str, directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext, list[str]]:
    """A server context with a certificate for ``hostname`` from a throwaway CA, a client context trusting that
    CA, and the list the server appends each TLS SNI name to."""
    now = dt.datetime.now(dt.UTC)

    def certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, signer: Any, ca: bool) -> Any:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca_cert = certificate("test CA", ca_key, ca_name, ca_key, ca=True)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = certificate(hostname, leaf_key, ca_name, ca_key, ca=False)

    pem = serialization.Encoding.PEM
    (directory / "cert.pem").write_bytes(leaf.public_bytes(pem))
    (directory / "key.pem").write_bytes(
        leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    seen: list[str] = []

    def remember_sni(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        seen.append(name or "")

    server.sni_callback = remember_sni
    client = ssl.create_default_context(cadata=ca_cert.public_bytes(pem).decode())
    return server, client, seen


@pytest.mark.parametrize("host", ["127.0.0.1", "0x7f.1", "2130706433", "[::ffff:127.0.0.1]", "localhost"])
async def test_the_transport_refuses_on_its_own(host: str, receiver: StartReceiver) -> None:
    server = await receiver()
    async with httpx.AsyncClient(transport=GuardedTransport()) as raw:
        with pytest.raises(UnsafeURL, match="forbidden address"):
            await raw.post(server.url(host), content=b"{}")
    assert server.connections == 0


async def test_environment_proxies_are_ignored(
    receiver: StartReceiver, client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy, target = await receiver(), await receiver()
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, proxy.url(path=""))
    webhooks = client(allow=["127.0.0.1"], resolver=static_resolver({"hooks.test": ["127.0.0.1"]}))
    result = await send(webhooks, target.url("hooks.test"))
    assert result.ok
    assert len(target.requests) == 1 and proxy.connections == 0
