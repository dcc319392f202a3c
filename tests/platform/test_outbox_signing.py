"""Webhook signatures: what the dispatcher sends is what a receiver can verify."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

from xynergy.platform.outbox import Destination
from xynergy.platform.outbox.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    sign,
    signature_header,
    verify_signature,
    webhook_headers,
)

SECRET = "whsec-" + "k" * 32
NEW_SECRET = "whsec-" + "n" * 32
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
            message_id="m1", event="submission.created", payload=PAYLOAD, secrets=[SECRET]
        )
        assert headers[DELIVERY_HEADER] == "m1"
        assert headers[EVENT_HEADER] == "submission.created"
        assert verify_signature(PAYLOAD, headers[SIGNATURE_HEADER], SECRET)

    def test_a_form_without_secret_sends_no_signature(self) -> None:
        headers = webhook_headers(message_id="m1", event="e", payload=PAYLOAD, secrets=())
        assert SIGNATURE_HEADER not in headers

    def test_a_rotated_out_secret_adds_a_second_v1_after_the_new_one(self) -> None:
        header = signature_header(NEW_SECRET, PAYLOAD, timestamp=NOW, also=[SECRET])
        assert header == (
            f"t={NOW},v1={sign(NEW_SECRET, NOW, PAYLOAD)},v1={sign(SECRET, NOW, PAYLOAD)}"
        )
        # Either secret alone verifies it: a receiver may hold the old or the new one.
        assert verify_signature(PAYLOAD, header, SECRET, now=NOW)
        assert verify_signature(PAYLOAD, header, NEW_SECRET, now=NOW)
        assert not verify_signature(PAYLOAD, header, "whsec-other", now=NOW)

    def test_headers_are_signed_by_every_secret_given(self) -> None:
        headers = webhook_headers(
            message_id="m1", event="e", payload=PAYLOAD, secrets=[NEW_SECRET, SECRET]
        )
        assert headers[SIGNATURE_HEADER].count("v1=") == 2
        assert verify_signature(PAYLOAD, headers[SIGNATURE_HEADER], SECRET)
        assert verify_signature(PAYLOAD, headers[SIGNATURE_HEADER], NEW_SECRET)


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


class TestSigningSecrets:
    """Which secrets sign a delivery: the previous one only until its grace period ends."""

    EXPIRES = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

    def message(self, **fields: Any) -> Destination:
        values: dict[str, Any] = {
            "url": "https://hooks.example/x",
            "secret": NEW_SECRET,
            "previous_secret": SECRET,
            "previous_secret_expires_at": self.EXPIRES,
        }
        return Destination(**(values | fields))

    def test_both_sign_until_the_previous_expires_then_only_the_new(self) -> None:
        message = self.message()
        before = self.EXPIRES - timedelta(microseconds=1)
        assert message.signing_secrets(before) == (NEW_SECRET, SECRET)
        assert message.signing_secrets(self.EXPIRES) == (NEW_SECRET,)

    def test_without_a_previous_secret_or_any_secret(self) -> None:
        assert self.message(previous_secret=None).signing_secrets(self.EXPIRES) == (NEW_SECRET,)
        assert self.message(secret=None).signing_secrets(self.EXPIRES) == ()

    def test_secrets_stay_out_of_repr(self) -> None:
        text = repr(self.message())
        assert SECRET not in text
        assert NEW_SECRET not in text
