"""The SSRF guard's URL and address rules (delivery through the guarded transport is in test_delivery.py)."""

from __future__ import annotations

import ipaddress
import re

import pytest

from claude_agent_api.webhooks.ssrf import UnsafeURL, check_address, check_url, forbidden_reason, parse_ip_host

# host spelling -> the reason the guard gives
FORBIDDEN_HOSTS = {
    "127.0.0.1": "loopback",
    "127.255.0.9": "loopback",
    "[::1]": "loopback",
    "2130706433": "loopback",
    "0x7f000001": "loopback",
    "0X7F000001": "loopback",
    "017700000001": "loopback",
    "127.1": "loopback",
    "0x7f.1": "loopback",
    "0177.1": "loopback",
    "127.0.0.1.": "loopback",
    "0": "unspecified",
    "0.0.0.0": "unspecified",
    "[::]": "unspecified",
    "10.0.0.1": "private",
    "172.16.0.1": "private",
    "172.31.255.254": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "link-local",
    "[fe80::1]": "link-local",
    "100.64.0.1": "carrier-grade NAT",
    "100.127.255.254": "carrier-grade NAT",
    "[fc00::1]": "unique-local",
    "[fd12:3456::1]": "unique-local",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "[ff02::1]": "multicast",
    "255.255.255.255": "broadcast",
    "240.0.0.1": "reserved",
    "192.0.2.1": "documentation",
    "[::ffff:127.0.0.1]": "IPv4-mapped loopback",
    "[::ffff:7f00:1]": "IPv4-mapped loopback",
    "[::ffff:10.1.2.3]": "IPv4-mapped private",
    "[::127.0.0.1]": "IPv4-compatible",
    "[64:ff9b::127.0.0.1]": "NAT64-embedded loopback",
    "[64:ff9b::a9fe:a9fe]": "NAT64-embedded link-local",
    "[64:ff9b:1::1]": "local-use NAT64",
    "[2002:7f00:1::]": "6to4-embedded loopback",
    "[2002:c0a8:101::1]": "6to4-embedded private",
    "[2001:0:4136:e378:8000:63bf:3fff:fdd2]": "Teredo",
    "[2001:db8::1]": "documentation",
}

PUBLIC_URLS = [
    "https://hooks.example.com/agent?token=abc",
    "http://example.com:8080/",
    "http://8.8.8.8/hook",
    "http://0x08080808/",  # 8.8.8.8 spelled in hex is just as public
    "http://[2606:4700:4700::1111]/",
    "http://[::ffff:8.8.8.8]/",
    "http://[64:ff9b::8.8.8.8]/",
    "http://[2002:808:808::1]/",
    "https://bücher.example/",
]


@pytest.mark.parametrize(("host", "reason"), FORBIDDEN_HOSTS.items())
def test_every_spelling_of_a_forbidden_address_is_refused(host: str, reason: str) -> None:
    with pytest.raises(UnsafeURL, match=rf"forbidden address \({reason}\)"):
        check_url(f"http://{host}:8080/hook", allow=[])


@pytest.mark.parametrize("url", PUBLIC_URLS)
def test_public_targets_pass(url: str) -> None:
    check_url(url, allow=[])


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/", "scheme 'ftp'"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("gopher://example.com/", "scheme 'gopher'"),
        ("//example.com/", "scheme '(none)'"),
        ("http:///hook", "no host"),
        ("http://user:pass@example.com/", "credentials"),
        ("http://example.com@127.0.0.1/", "credentials"),
        ("http://example.com:99999/", "port 99999"),
        ("http://%31%32%37.0.0.1/", "percent-encoding"),
        ("http://[fe80::1%25eth0]/", "percent-encoding"),
        ("http://1.2.3.4.5/", "not a valid IPv4"),
        ("http://08/", "not a valid IPv4"),
        ("http://4294967296/", "out of range"),
        ("http://1.16777216/", "out of range"),
        ("http://[::1/", "not a valid URL"),
        ("http://0177.0.0.1/", "not a valid URL"),  # httpx refuses dotted-quad octal: it could never be sent
    ],
)
def test_malformed_or_disallowed_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(UnsafeURL, match=re.escape(message)):
        check_url(url, allow=[])


@pytest.mark.parametrize(
    "spelling",
    [
        "127.0.0.1",
        "2130706433",
        "0x7f000001",
        "017700000001",
        "127.1",
        "0x7f.1",
        "0x7f.0.0x0.01",
        "127.0.1",
        "127.0.0.1.",
    ],
)
def test_ipv4_is_parsed_the_way_inet_aton_and_browsers_do(spelling: str) -> None:
    assert parse_ip_host(spelling) == ipaddress.IPv4Address("127.0.0.1")


@pytest.mark.parametrize("name", ["example.com", "localhost", "127.0.0.1.nip.io", "0x7f.example", "a1"])
def test_names_are_not_addresses(name: str) -> None:
    assert parse_ip_host(name) is None


def test_the_allow_list_admits_hosts_ips_and_networks() -> None:
    check_url("http://127.0.0.1:9/hook", allow=["127.0.0.1"])
    check_url("http://127.1:9/hook", allow=["127.0.0.1"])  # the same address, spelled differently
    check_url("http://10.20.30.40/", allow=["10.0.0.0/8"])
    check_url("http://[fd00::5]/", allow=["fd00::/8"])
    check_url("http://[::1]/", allow=["[::1]"])
    check_url("http://[::ffff:192.168.0.9]/", allow=["192.168.0.0/24"])
    check_url("http://Hooks.Internal./", allow=["hooks.internal"])
    check_address("192.168.7.7", allow=["hooks.internal"], host="HOOKS.internal")
    with pytest.raises(UnsafeURL, match="private"):
        check_url("http://10.0.0.1/", allow=["127.0.0.1", "192.168.0.0/16", "hooks.internal"])
    with pytest.raises(UnsafeURL, match=r"resolved to 10\.0\.0\.1"):
        check_address("10.0.0.1", allow=["hooks.internal"], host="other.internal")


def test_a_resolved_address_names_the_host_it_came_from() -> None:
    with pytest.raises(UnsafeURL, match=r"localhost resolved to ::1, a forbidden address \(loopback\)"):
        check_address("::1", allow=[], host="localhost")
    with pytest.raises(UnsafeURL, match=r"^169\.254\.169\.254, a forbidden address \(link-local\)"):
        check_address(ipaddress.ip_address("169.254.169.254"), allow=[])
    check_address("93.184.216.34", allow=[], host="example.com")


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"])
def test_global_addresses_have_no_reason_to_be_refused(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is None
