"""The SSRF guard: webhooks never reach private, loopback, link-local or otherwise internal addresses.

Two checks, at two moments:

- :func:`check_url` when a URL is given: ``http``/``https`` only, a host, no userinfo, a valid port, and a host
  that is not an IP literal denoting a forbidden address, in any spelling a resolver or browser accepts
  (``2130706433``, ``0x7f.1``, ``017700000001``, ``[::ffff:127.0.0.1]``, NAT64 and 6to4 wrappers of a forbidden
  IPv4 address, Teredo…).
- :func:`check_address` on every address a host name resolves to, at connection time. :class:`GuardedTransport`
  resolves the host itself, checks every address and then connects to one of those checked addresses, so DNS
  rebinding between the check and the connection cannot slip through. The URL is left as it was, so the
  ``Host`` header, the connection pool key and the TLS SNI / certificate check all keep the original name.

The allow-list (the ``webhook_allow_private`` setting, empty by default) lets self-hosters admit internal
targets: each entry is a host name (matched exactly, case-insensitively), an IP address or a CIDR network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import httpcore
import httpx

from claude_agent_api.errors import RequestValidationFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""Resolves ``(host, port)`` to address strings; the default uses the event loop's ``getaddrinfo``."""


class UnsafeURL(ValueError):
    """A webhook URL, or an address it resolved to, that must not be contacted."""


def _networks(entries: Iterable[tuple[str, str]]) -> tuple[tuple[Network, str], ...]:
    return tuple((ipaddress.ip_network(net), label) for net, label in entries)


# Order matters only for the label in the message (broadcast before the reserved block that contains it).
_FORBIDDEN: tuple[tuple[Network, str], ...] = _networks(
    [
        ("0.0.0.0/8", "unspecified"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "carrier-grade NAT"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol assignment"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "6to4 relay"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "broadcast"),
        ("240.0.0.0/4", "reserved"),
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::/96", "IPv4-compatible"),
        ("::ffff:0:0:0/96", "IPv4-translated"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("100::/64", "discard-only"),
        ("2001::/32", "Teredo"),
        ("2001:db8::/32", "documentation"),
        ("2001::/23", "IETF protocol assignment"),
        ("fc00::/7", "unique-local"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
    ]
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_v4(ip: IPAddress) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4), with the wrapper's name."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped", ip.ipv4_mapped
    if ip in _NAT64:
        return "NAT64-embedded", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return "6to4-embedded", ip.sixtofour
    return None


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` must not be contacted (``"loopback"``, ``"NAT64-embedded private"``…), or ``None`` if it may."""
    if (embedded := _embedded_v4(ip)) is not None:
        wrapper, v4 = embedded
        inner = forbidden_reason(v4)
        return f"{wrapper} {inner}" if inner else None
    for network, label in _FORBIDDEN:
        if ip.version == network.version and ip in network:
            return label
    if ip.is_multicast or ip.is_reserved or ip.is_unspecified or ip.is_loopback or ip.is_link_local:
        return "reserved"
    if not ip.is_global:
        return "non-global"
    return None


@dataclass(frozen=True, slots=True)
class _AllowList:
    hosts: frozenset[str]
    networks: tuple[Network, ...]

    def admits_host(self, host: str | None) -> bool:
        return host is not None and _normal_host(host) in self.hosts

    def admits(self, ip: IPAddress) -> bool:
        candidates = [ip] + ([embedded[1]] if (embedded := _embedded_v4(ip)) else [])
        return any(c.version == n.version and c in n for c in candidates for n in self.networks)


def _normal_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


@lru_cache(maxsize=32)
def _compile(entries: tuple[str, ...]) -> _AllowList:
    hosts: set[str] = set()
    networks: list[Network] = []
    for entry in entries:
        name = _normal_host(entry)
        if not name:
            continue
        try:
            networks.append(ipaddress.ip_network(name, strict=False))
        except ValueError:
            hosts.add(name)
    return _AllowList(frozenset(hosts), tuple(networks))


_DIGITS = {8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}


def _ipv4_number(part: str) -> int | None:
    """One dotted part as ``inet_aton`` and browsers read it: decimal, ``0x`` hex or leading-zero octal."""
    if part[:2].lower() == "0x":
        digits, base = part[2:] or "0", 16
    elif len(part) > 1 and part.startswith("0"):
        digits, base = part[1:], 8
    else:
        digits, base = part, 10
    if not digits or any(ch not in _DIGITS[base] for ch in digits):
        return None
    return int(digits, base)


def parse_ip_host(host: str) -> IPAddress | None:
    """The address a host denotes when it is an IP literal in any accepted spelling, else ``None`` (a name).

    IPv4 follows the WHATWG URL standard (what browsers and ``inet_aton`` accept): one to four parts, each
    decimal, octal or hex, the last filling the remaining bytes. A host whose last label is numeric but does not
    parse is not treated as a name: it raises :class:`UnsafeURL`.
    """
    name = host.strip().strip("[]")
    if ":" in name:
        try:
            return ipaddress.IPv6Address(name)
        except ValueError:
            raise UnsafeURL(f"{host!r} is not a valid IPv6 address") from None
    labels = name.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels.pop()
    if not labels or (not (labels[-1].isascii() and labels[-1].isdigit()) and _ipv4_number(labels[-1]) is None):
        return None
    numbers = [_ipv4_number(label) for label in labels]
    if len(labels) > 4 or any(n is None for n in numbers):
        raise UnsafeURL(f"{host!r} is not a valid IPv4 address")
    values = [n for n in numbers if n is not None]
    if any(n > 255 for n in values[:-1]) or values[-1] >= 256 ** (5 - len(values)):
        raise UnsafeURL(f"{host!r} is out of range for an IPv4 address")
    value = values[-1] + sum(n << (8 * (3 - i)) for i, n in enumerate(values[:-1]))
    return ipaddress.IPv4Address(value)


def _refused(ip: IPAddress, rules: _AllowList) -> str | None:
    return None if rules.admits(ip) else forbidden_reason(ip)


def check_address(ip: IPAddress | str, *, allow: Sequence[str], host: str | None = None) -> None:
    """Raise :class:`UnsafeURL` unless ``ip`` (the address actually connected to) may be contacted.

    ``host`` is the name it was resolved from: a host name on the allow-list admits any address it resolves to.
    """
    address = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    rules = _compile(tuple(allow))
    if rules.admits_host(host) or (reason := _refused(address, rules)) is None:
        return
    via = f"{host} resolved to " if host and parse_ip_host(host) is None else ""
    raise UnsafeURL(f"{via}{address}, a forbidden address ({reason}); webhooks may not target it")


def check_url(url: str, *, allow: Sequence[str]) -> None:
    """Raise :class:`UnsafeURL` with the reason unless ``url`` may be given as a webhook target.

    A host name passes here (its addresses are checked when connecting); an IP literal is judged now.
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise UnsafeURL(f"not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise UnsafeURL(f"scheme {parsed.scheme or '(none)'!r} is not allowed; use http or https")
    host = parsed.raw_host.decode("ascii")
    if not host:
        raise UnsafeURL("the URL has no host")
    if parsed.userinfo:
        raise UnsafeURL("credentials in the URL (user:password@) are not allowed")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise UnsafeURL(f"port {parsed.port} is out of range")
    if "%" in host:
        raise UnsafeURL("percent-encoding and zone ids are not allowed in the host")
    rules = _compile(tuple(allow))
    if rules.admits_host(host) or (ip := parse_ip_host(host)) is None:
        return
    if (reason := _refused(ip, rules)) is not None:
        shown = host if ":" in host or host == str(ip) else f"{host} denotes {ip}"
        raise UnsafeURL(f"{shown}, a forbidden address ({reason}); webhooks may not target it")


async def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks every address, then connects to a checked address (never by name)."""

    def __init__(self, allow: Sequence[str], resolver: Resolver) -> None:
        self._allow = tuple(allow)
        self._resolver = resolver
        self._inner = httpcore.AnyIOBackend()

    async def _addresses(self, host: str, port: int, limit: float | None) -> list[IPAddress]:
        literal = parse_ip_host(host)
        if literal is not None:
            return [literal]
        try:
            async with asyncio.timeout(limit):
                found = await self._resolver(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(a) for a in found))
        if not addresses:
            raise httpcore.ConnectError(f"{host} resolved to no address")
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._addresses(host, port, timeout)
        for address in addresses:  # every address, so a mixed public/private answer is refused outright
            check_address(address, allow=self._allow, host=host)
        error: Exception = httpcore.ConnectError(f"cannot connect to {host}")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(str(address), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise UnsafeURL("webhooks never use Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=30.0)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """An httpx transport whose every connection goes to a resolved address that passed :func:`check_address`.

    Environment proxies are ignored (``trust_env=False``): a proxy would make the checked address the proxy's.
    A refused address raises :class:`UnsafeURL` out of the request, before any byte is sent.
    """

    def __init__(
        self,
        *,
        allow: Sequence[str] = (),
        verify: ssl.SSLContext | bool = True,
        limits: httpx.Limits = DEFAULT_LIMITS,
        resolver: Resolver | None = None,
    ) -> None:
        super().__init__(verify=verify, trust_env=False, limits=limits)
        # The parent builds a pool with the default network backend; replace it (before any use) with one whose
        # backend is guarded. httpx exposes no parameter for the backend, httpcore's pool does.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(allow, resolver or _getaddrinfo),
        )


def require_safe_url(url: str, *, allow: Sequence[str], field: Sequence[str | int]) -> None:
    """:func:`check_url` for a URL a client gave: a refusal is a 422 naming ``field``."""
    try:
        check_url(url, allow=allow)
    except UnsafeURL as exc:
        raise RequestValidationFailed.for_field(list(field), str(exc)) from exc
