import ipaddress

import pytest

from claude_agent_api.kit.addresses import client_address

TRUSTED = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128")]


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("203.0.113.5", "1.2.3.4", [], "203.0.113.5"),
        ("203.0.113.5", "1.2.3.4", TRUSTED, "203.0.113.5"),
        ("10.0.0.1", "1.2.3.4", TRUSTED, "1.2.3.4"),
        ("10.0.0.1", "6.6.6.6, 1.2.3.4", TRUSTED, "1.2.3.4"),
        ("10.0.0.1", "1.2.3.4, 10.0.0.2", TRUSTED, "1.2.3.4"),
        ("10.0.0.1", "not-an-ip", TRUSTED, "10.0.0.1"),
        ("10.0.0.1", None, TRUSTED, "10.0.0.1"),
        ("::1", "2001:db8::1", TRUSTED, "2001:db8::1"),
        ("10.0.0.1", "10.0.0.3, 10.0.0.2", TRUSTED, "10.0.0.3"),
    ],
)
def test_client_address(peer: str, forwarded: str | None, trusted: list, expected: str) -> None:  # type: ignore[type-arg]
    assert client_address(peer, forwarded, trusted) == expected
