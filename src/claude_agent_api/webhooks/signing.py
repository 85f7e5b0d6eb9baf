"""Standard Webhooks signatures (https://www.standardwebhooks.com), implemented here in full.

A secret is ``whsec_`` followed by the base64 of 24-64 random bytes (we make 32). Each delivery carries three
headers::

    webhook-id:        msg_…           unique per event, the same across retries (receivers dedupe on it)
    webhook-timestamp: 1614265330      unix seconds of this attempt
    webhook-signature: v1,<base64>     HMAC-SHA256 over "{id}.{timestamp}.{body}", keyed by the decoded secret

``webhook-signature`` may hold several space-separated signatures (e.g. during a secret rotation); a receiver
accepts the message when any ``v1`` one matches. Comparison is constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix, not a secret
DEFAULT_TOLERANCE = 300


class InvalidSecret(ValueError):
    """The secret is not ``whsec_`` + base64 of 24-64 bytes. The message never repeats the secret."""


class InvalidSignature(ValueError):
    """The message is not signed with the secret, or its timestamp is outside the tolerance."""


def new_secret(nbytes: int = 32) -> str:
    """A fresh signing secret, ``whsec_<base64>``."""
    if not 24 <= nbytes <= 64:
        raise ValueError("a webhook secret has 24 to 64 bytes")
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(nbytes)).decode("ascii")


def new_message_id() -> str:
    """A fresh ``webhook-id``."""
    return f"msg_{uuid.uuid4().hex}"


_SECRET_SHAPE = "a webhook secret must be 'whsec_' followed by the base64 of 24-64 bytes"  # noqa: S105


def _key(secret: str) -> bytes:
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecret(_SECRET_SHAPE) from None
    if not 24 <= len(key) <= 64:
        raise InvalidSecret(_SECRET_SHAPE)
    return key


def check_secret(secret: str) -> None:
    """Raise :class:`InvalidSecret` unless ``secret`` can sign."""
    _key(secret)


def _signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body`` (the exact bytes sent)."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{_signature(_key(secret), msg_id, timestamp, body)}",
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> None:
    """Raise :class:`InvalidSignature` unless ``body`` with ``headers`` was signed with ``secret`` recently.

    ``headers`` may be any mapping (names are matched case-insensitively); ``tolerance`` is how many seconds the
    timestamp may differ from ``now`` (default: the clock), in either direction.
    """
    key = _key(secret)
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get("webhook-id", "")
    stamp = lowered.get("webhook-timestamp", "")
    signatures = lowered.get("webhook-signature", "")
    if not msg_id or not stamp or not signatures:
        raise InvalidSignature("missing webhook-id, webhook-timestamp or webhook-signature header")
    if not (stamp.isascii() and stamp.isdigit()):
        raise InvalidSignature("webhook-timestamp is not unix seconds")
    timestamp = int(stamp)
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        raise InvalidSignature("webhook-timestamp is outside the tolerance")
    expected = _signature(key, msg_id, timestamp, body).encode("ascii")
    for token in signatures.split():
        version, _, value = token.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode("ascii", "replace"), expected):
            return
    raise InvalidSignature("no webhook-signature matches")
