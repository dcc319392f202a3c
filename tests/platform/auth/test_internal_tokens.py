"""Internal tokens: minted per call, verified as strictly as a key."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends

from tests.helpers import running
from xynergy.platform.app import create_service_app
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.platform.auth.internal_tokens import INTERNAL_TOKEN_HEADER, InternalTokens
from xynergy.platform.config import Settings
from xynergy.platform.exceptions import Forbidden, Unauthorized
from xynergy.platform.routing import api_router

MakeSettings = Callable[..., Settings]

NOW = 1_800_000_000.0
TTL = 60
LEEWAY = 5
CURRENT = b"current-secret-" + b"c" * 32
PREVIOUS = b"previous-secret-" + b"p" * 32
CALLER = AuthContext(
    tenant_id="tenant-1",
    key_id="key-1",
    key_tenant_id="tenant-1",
    scopes=frozenset({"content:read", "content:write"}),
)
READ = frozenset({"content:read"})


def tokens(*secrets: bytes, ttl: int = TTL) -> InternalTokens:
    return InternalTokens(secrets=secrets or (CURRENT,), ttl_seconds=ttl, leeway_seconds=LEEWAY)


def mint(issuer: InternalTokens, audience: str = "svc-b") -> str:
    return issuer.mint(CALLER, audience=audience, scopes=READ, request_id="req-1")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    frozen = Clock(NOW)
    monkeypatch.setattr(time, "time", frozen)
    return frozen


def reencode(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


class TestRoundTrip:
    def test_a_minted_token_verifies_to_the_caller_with_the_granted_scopes(
        self, clock: Clock
    ) -> None:
        issuer = tokens()

        context = issuer.verify(mint(issuer), audience="svc-b")

        assert context == AuthContext(
            tenant_id="tenant-1",
            key_id="key-1",
            key_tenant_id="tenant-1",
            scopes=READ,
            via="internal",
        )

    def test_an_admin_acting_for_a_tenant_keeps_both_tenants(self, clock: Clock) -> None:
        issuer = tokens()
        admin = AuthContext(
            tenant_id="ops", key_id="key-9", key_tenant_id="ops", scopes=frozenset({"admin"})
        ).acting_for("tenant-7")

        token = issuer.mint(admin, audience="svc-b", scopes=READ, request_id=None)
        context = issuer.verify(token, audience="svc-b")

        assert (context.tenant_id, context.key_tenant_id) == ("tenant-7", "ops")
        assert context.scopes == READ
        assert not context.is_admin

    def test_the_token_carries_the_request_id_and_audience(self, clock: Clock) -> None:
        claims = claims_of(mint(tokens()))

        assert claims["rid"] == "req-1"
        assert claims["aud"] == "svc-b"
        assert claims["exp"] - claims["iat"] == TTL


class TestMinting:
    def test_scopes_the_caller_lacks_are_refused(self) -> None:
        with pytest.raises(Forbidden):
            tokens().mint(
                CALLER,
                audience="svc-b",
                scopes=frozenset({"content:read", "keywords:write"}),
                request_id=None,
            )


class TestVerification:
    def test_another_audience_is_refused(self, clock: Clock) -> None:
        issuer = tokens()

        with pytest.raises(Unauthorized, match="another service"):
            issuer.verify(mint(issuer, audience="svc-b"), audience="svc-c")

    def test_a_token_is_accepted_until_expiry_plus_leeway(self, clock: Clock) -> None:
        issuer = tokens()
        token = mint(issuer)

        clock.now = NOW + TTL + LEEWAY - 1

        assert issuer.verify(token, audience="svc-b").key_id == "key-1"

    def test_an_expired_token_is_refused(self, clock: Clock) -> None:
        issuer = tokens()
        token = mint(issuer)

        clock.now = NOW + TTL + LEEWAY + 1

        with pytest.raises(Unauthorized, match="expired"):
            issuer.verify(token, audience="svc-b")

    def test_a_token_issued_in_the_future_is_refused(self, clock: Clock) -> None:
        issuer = tokens()
        clock.now = NOW + 10 * LEEWAY
        token = mint(issuer)

        clock.now = NOW

        with pytest.raises(Unauthorized, match="lifetime"):
            issuer.verify(token, audience="svc-b")

    def test_a_lifetime_longer_than_the_ttl_is_refused(self, clock: Clock) -> None:
        token = mint(tokens(ttl=10 * TTL))

        with pytest.raises(Unauthorized, match="lifetime"):
            tokens(ttl=TTL).verify(token, audience="svc-b")

    def test_a_tampered_payload_is_refused(self, clock: Clock) -> None:
        issuer = tokens()
        token = mint(issuer)
        version, _, signature = token.split(".")
        claims = claims_of(token)
        claims["scp"] = ["admin"]

        with pytest.raises(Unauthorized, match="signature"):
            issuer.verify(f"{version}.{reencode(claims)}.{signature}", audience="svc-b")

    def test_a_tampered_signature_is_refused(self, clock: Clock) -> None:
        issuer = tokens()
        version, payload, signature = mint(issuer).split(".")
        flipped = ("A" if signature[0] != "A" else "B") + signature[1:]

        with pytest.raises(Unauthorized, match="signature"):
            issuer.verify(f"{version}.{payload}.{flipped}", audience="svc-b")

    @pytest.mark.parametrize(
        "token",
        [
            pytest.param("", id="empty"),
            pytest.param("garbage", id="garbage"),
            pytest.param("v1.", id="no-payload"),
            pytest.param("v1.payload", id="no-signature"),
            pytest.param("v2.e30.c2ln", id="unknown-version"),
            pytest.param("v1..c2ln", id="empty-payload"),
            pytest.param("v1.e30.", id="empty-signature"),
            pytest.param("v1.e30.c2ln\xe9", id="non-ascii-signature"),
            pytest.param("v1.e30\xe9.c2ln", id="non-ascii-payload"),
        ],
    )
    def test_a_malformed_token_is_refused(self, token: str) -> None:
        with pytest.raises(Unauthorized):
            tokens().verify(token, audience="svc-b")

    def test_a_token_signed_by_another_secret_is_refused(self, clock: Clock) -> None:
        with pytest.raises(Unauthorized, match="signature"):
            tokens(CURRENT).verify(mint(tokens(b"x" * 48)), audience="svc-b")


class TestSecretRotation:
    def test_the_previous_secret_is_accepted_when_configured(
        self, clock: Clock, make_settings: MakeSettings
    ) -> None:
        rotated = InternalTokens.from_settings(
            make_settings(
                internal_token_secret=CURRENT.decode(),
                internal_token_previous_secret=PREVIOUS.decode(),
            )
        )

        context = rotated.verify(mint(tokens(PREVIOUS)), audience="svc-b")

        assert context.key_id == "key-1"

    def test_the_previous_secret_is_refused_once_dropped(
        self, clock: Clock, make_settings: MakeSettings
    ) -> None:
        current_only = InternalTokens.from_settings(
            make_settings(internal_token_secret=CURRENT.decode())
        )

        with pytest.raises(Unauthorized, match="signature"):
            current_only.verify(mint(tokens(PREVIOUS)), audience="svc-b")

    def test_tokens_are_signed_with_the_current_secret(
        self, clock: Clock, make_settings: MakeSettings
    ) -> None:
        rotated = InternalTokens.from_settings(
            make_settings(
                internal_token_secret=CURRENT.decode(),
                internal_token_previous_secret=PREVIOUS.decode(),
            )
        )

        token = mint(rotated)

        assert tokens(CURRENT).verify(token, audience="svc-b").key_id == "key-1"
        with pytest.raises(Unauthorized):
            tokens(PREVIOUS).verify(token, audience="svc-b")


ReadAuth = Annotated[AuthContext, Depends(require_scopes("content:read"))]


def whoami_router() -> APIRouter:
    router = api_router()

    @router.get("/whoami")
    async def whoami(caller: ReadAuth) -> dict[str, str]:
        """The caller's key id and how it authenticated."""
        return {"key_id": caller.key_id, "via": caller.via}

    return router


class TestPresentedToAnApp:
    async def test_the_right_audience_is_served_and_the_wrong_one_is_401(
        self, make_settings: MakeSettings
    ) -> None:
        app = create_service_app(
            slug="svc-b", title="svc-b", settings=make_settings(), routers=[whoami_router()]
        )
        async with running(app) as client:
            issuer = app.state.platform.internal_tokens
            right = await client.get(
                "/whoami", headers={INTERNAL_TOKEN_HEADER: mint(issuer, audience="svc-b")}
            )
            wrong = await client.get(
                "/whoami", headers={INTERNAL_TOKEN_HEADER: mint(issuer, audience="svc-c")}
            )

        assert right.status_code == 200, right.text
        assert right.json() == {"key_id": "key-1", "via": "internal"}
        assert wrong.status_code == 401, wrong.text
        assert wrong.json()["error"] == "unauthorized"
        assert wrong.json()["request_id"] == wrong.headers["x-request-id"]

    async def test_a_non_ascii_token_is_401(self, make_settings: MakeSettings) -> None:
        app = create_service_app(
            slug="svc-b", title="svc-b", settings=make_settings(), routers=[whoami_router()]
        )
        async with running(app) as client:
            # Header bytes outside ASCII arrive in the app as latin-1 text.
            response = await client.get(
                "/whoami", headers={INTERNAL_TOKEN_HEADER.encode(): b"v1.e30.c2ln\xe9"}
            )

        assert response.status_code == 401, response.text
        assert response.json()["error"] == "unauthorized"

    async def test_a_token_without_the_route_scope_is_403(
        self, make_settings: MakeSettings
    ) -> None:
        app = create_service_app(
            slug="svc-b", title="svc-b", settings=make_settings(), routers=[whoami_router()]
        )
        async with running(app) as client:
            token = app.state.platform.internal_tokens.mint(
                CALLER, audience="svc-b", scopes=frozenset({"content:write"}), request_id=None
            )
            response = await client.get("/whoami", headers={INTERNAL_TOKEN_HEADER: token})

        assert response.status_code == 403, response.text
        assert response.json()["error"] == "forbidden"
