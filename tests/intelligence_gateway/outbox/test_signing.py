"""Webhook signatures: what the dispatcher sends is what a receiver can verify."""

from __future__ import annotations

import hashlib
import hmac

from xynergy.intelligence_gateway.outbox.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    signature_header,
    verify_signature,
    webhook_headers,
)

SECRET = "whsec-" + "k" * 32
PAYLOAD = '{"event":"submission.created","id":"abc"}'
NOW = 1_764_115_200


class TestSignatureHeader:
    def test_is_hmac_sha256_of_timestamp_dot_payload(self) -> None:
        header = signature_header(SECRET, PAYLOAD, timestamp=NOW)
        expected = hmac.new(
            SECRET.encode(), f"{NOW}.{PAYLOAD}".encode(), hashlib.sha256
        ).hexdigest()
        assert header == f"t={NOW},v1={expected}"

    def test_headers_carry_delivery_id_event_and_signature(self) -> None:
        headers = webhook_headers(
            message_id="m1", event="submission.created", payload=PAYLOAD, secret=SECRET
        )
        assert headers[DELIVERY_HEADER] == "m1"
        assert headers[EVENT_HEADER] == "submission.created"
        assert verify_signature(PAYLOAD, headers[SIGNATURE_HEADER], SECRET)

    def test_a_form_without_secret_sends_no_signature(self) -> None:
        headers = webhook_headers(message_id="m1", event="e", payload=PAYLOAD, secret=None)
        assert SIGNATURE_HEADER not in headers


class TestVerifySignature:
    def test_accepts_a_fresh_valid_signature_as_bytes_or_text(self) -> None:
        header = signature_header(SECRET, PAYLOAD, timestamp=NOW)
        assert verify_signature(PAYLOAD, header, SECRET, now=NOW + 10)
        assert verify_signature(PAYLOAD.encode(), header, SECRET, now=NOW + 10)

    def test_refuses_a_tampered_payload_or_wrong_secret(self) -> None:
        header = signature_header(SECRET, PAYLOAD, timestamp=NOW)
        assert not verify_signature(PAYLOAD + " ", header, SECRET, now=NOW)
        assert not verify_signature(PAYLOAD, header, SECRET + "x", now=NOW)

    def test_refuses_a_signature_outside_the_tolerance(self) -> None:
        header = signature_header(SECRET, PAYLOAD, timestamp=NOW)
        assert not verify_signature(PAYLOAD, header, SECRET, now=NOW + 301)
        assert verify_signature(PAYLOAD, header, SECRET, now=NOW + 301, tolerance_seconds=600)

    def test_refuses_missing_or_malformed_headers(self) -> None:
        for header in (None, "", "garbage", f"t={NOW}", "v1=abc", f"t=x,v1={'0' * 64}"):
            assert not verify_signature(PAYLOAD, header, SECRET, now=NOW)

    def test_accepts_any_of_several_v1_values_during_secret_rotation(self) -> None:
        valid = signature_header(SECRET, PAYLOAD, timestamp=NOW).split(",")[1]
        header = f"t={NOW},v1={'0' * 64},{valid}"
        assert verify_signature(PAYLOAD, header, SECRET, now=NOW)
