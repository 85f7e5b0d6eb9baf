"""Standard Webhooks signing: the published test vector, an independent recomputation, and every refusal."""

from __future__ import annotations

import base64
import hashlib
import hmac

import httpx
import pytest

from claude_agent_api.webhooks.signing import InvalidSecret, InvalidSignature, new_secret, sign, verify

# The test vector published with the Standard Webhooks reference libraries.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def by_hand(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret[len("whsec_") :])
    digest = hmac.new(key, msg_id.encode() + b"." + str(timestamp).encode() + b"." + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def test_the_published_vector_signs_and_verifies() -> None:
    headers = sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    assert headers == {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": "1614265330",
        "webhook-signature": SPEC_SIGNATURE,
    }
    verify(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TIMESTAMP + 10)


def test_a_fresh_secret_signs_what_hmac_computes_by_hand() -> None:
    secret = new_secret()
    body = '{"type":"PreToolUse","data":{"tool":"Bash","é":1}}'.encode()
    headers = sign(secret, "msg_abc", 1700000000, body)
    assert headers["webhook-signature"] == by_hand(secret, "msg_abc", 1700000000, body)
    verify(secret, headers, body, now=1700000000)


def test_new_secret_is_prefixed_base64_of_32_random_bytes() -> None:
    a, b = new_secret(), new_secret()
    assert a.startswith("whsec_") and a != b
    assert len(base64.b64decode(a.removeprefix("whsec_"), validate=True)) == 32


def test_the_prefix_is_optional_and_header_names_are_case_insensitive() -> None:
    headers = httpx.Headers({k.upper(): v for k, v in sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY).items()})
    verify(SPEC_SECRET.removeprefix("whsec_"), headers, SPEC_BODY, now=SPEC_TIMESTAMP)


def test_any_of_several_signatures_may_match_and_other_versions_are_ignored() -> None:
    headers = sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    good = headers["webhook-signature"]
    headers["webhook-signature"] = f"v1,bm9wZQ== v1a,{good[3:]} {good}"
    verify(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TIMESTAMP)
    headers["webhook-signature"] = f"v1,bm9wZQ== v1a,{good[3:]} v2,{good[3:]}"
    with pytest.raises(InvalidSignature, match="no webhook-signature matches"):
        verify(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TIMESTAMP)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"body": b'{"test": 2432232315}'}, "no webhook-signature matches"),
        ({"secret": new_secret()}, "no webhook-signature matches"),
        ({"webhook-id": "msg_other"}, "no webhook-signature matches"),
        ({"webhook-timestamp": str(SPEC_TIMESTAMP + 1)}, "no webhook-signature matches"),
        ({"now": SPEC_TIMESTAMP + 301}, "outside the tolerance"),
        ({"now": SPEC_TIMESTAMP - 301}, "outside the tolerance"),
        ({"webhook-timestamp": "1614265330.5"}, "not unix seconds"),
        ({"webhook-signature": ""}, "missing"),
        ({"webhook-id": ""}, "missing"),
    ],
)
def test_verify_refuses(change: dict[str, object], message: str) -> None:
    headers = sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    headers.update({k: v for k, v in change.items() if k.startswith("webhook-") and isinstance(v, str)})
    body = change.get("body", SPEC_BODY)
    secret = change.get("secret", SPEC_SECRET)
    now = change.get("now", SPEC_TIMESTAMP)
    assert isinstance(body, bytes) and isinstance(secret, str) and isinstance(now, int)
    with pytest.raises(InvalidSignature, match=message):
        verify(secret, headers, body, now=now)


def test_verify_uses_the_clock_by_default() -> None:
    with pytest.raises(InvalidSignature, match="outside the tolerance"):
        verify(SPEC_SECRET, sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY), SPEC_BODY)


@pytest.mark.parametrize("secret", ["whsec_not base64!", "whsec_c2hvcnQ=", "whsec_" + "A" * 120, ""])
def test_a_malformed_secret_is_refused_without_being_repeated(secret: str) -> None:
    with pytest.raises(InvalidSecret) as caught:
        sign(secret, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    message = str(caught.value)
    assert "whsec_" in message  # it says what a secret looks like…
    assert all(part not in message for part in ("not base64!", "c2hvcnQ=", "AAAA"))  # …and never what it got
